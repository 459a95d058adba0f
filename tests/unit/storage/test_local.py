"""The local store: the shared contract, plus files, processes and the verified marks."""

from __future__ import annotations

import errno
import fcntl
import io
import multiprocessing
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import storage.local
from storage import (
    BlobInfo,
    IntegrityError,
    InvalidDigest,
    LocalStore,
    StorageUnavailable,
    blob_key,
)
from tests.unit.storage.contract import BlobStoreContract, blob, in_chunks, sha256

CHUNK = 4096


@dataclass
class LocalHarness:
    store: LocalStore
    large: int = 3 * CHUNK + 5

    def reopen(self) -> LocalStore:
        return LocalStore(self.store.root, chunk_size=CHUNK)

    def corrupt(self, digest: str, *, truncate: bool = False) -> None:
        path = self.store.path_of(digest)
        os.chmod(path, 0o644)
        size = path.stat().st_size
        with path.open("r+b") as file:
            if truncate:
                file.truncate(size - 1)
                return
            file.seek(size // 2)
            byte = file.read(1)
            file.seek(size // 2)
            file.write(bytes([byte[0] ^ 0x01]))

    def debris(self) -> list[str]:
        return [
            str(path.relative_to(self.store.root))
            for path in sorted(self.store.root.rglob("*"))
            if path.is_file() and not self.is_blob(path)
        ]

    def is_blob(self, path: Path) -> bool:
        try:
            return path == self.store.path_of(path.name)
        except InvalidDigest:
            return False

    def leave_debris(self, digest: str) -> None:
        path = self.store.path_of(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / f".{digest[:16]}.k1ll3d.tmp").write_bytes(b"half")


class TestLocalStore(BlobStoreContract):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> LocalHarness:
        return LocalHarness(LocalStore(tmp_path / "blobs", chunk_size=CHUNK))


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "blobs", chunk_size=CHUNK)


def test_layout_and_modes(store: LocalStore) -> None:
    data = b"corpus"
    digest = sha256(data)
    store.put(digest, data)
    path = store.root / "sha256" / digest[:2] / digest[2:4] / digest
    assert path == store.path_of(digest) == store.root / blob_key(digest)
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert sorted(p.name for p in path.parent.iterdir()) == [digest]


def test_the_root_is_created(tmp_path: Path) -> None:
    LocalStore(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()


def test_a_root_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageUnavailable):
        LocalStore(tmp_path / "file" / "blobs")


def test_listing_ignores_what_is_not_a_blob(store: LocalStore) -> None:
    data = b"kept"
    digest = sha256(data)
    store.put(digest, data)
    other = sha256(b"elsewhere")
    strays = [
        store.root / "sha256" / digest[:2] / digest[2:4] / f".{digest[:16]}.abc.tmp",
        store.root / "sha256" / digest[:2] / digest[2:4] / other,  # in the wrong directory
        store.root / "sha256" / digest[:2] / digest[2:4] / digest.upper(),
        store.root / "sha256" / "zz" / "README",
        store.root / "sha256" / "README",
        store.root / "notes.txt",
    ]
    for stray in strays:
        stray.parent.mkdir(parents=True, exist_ok=True)
        stray.write_bytes(b"x")
    assert list(store.iter_digests()) == [digest]
    assert not store.exists(other)


def test_a_failing_disk_leaves_nothing(store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[int] = []

    def full_disk(fd: int, chunk: bytes) -> None:
        written.append(len(chunk))
        if len(written) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        os.write(fd, chunk)

    monkeypatch.setattr(storage.local, "_write_all", full_disk)
    data = blob(10 * CHUNK)
    with pytest.raises(StorageUnavailable, match="No space left") as caught:
        store.put(sha256(data), in_chunks(data, (CHUNK,)))
    assert isinstance(caught.value.__cause__, OSError)
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_fsync_failure_leaves_nothing(store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(StorageUnavailable):
        store.put(sha256(b"data"), b"data")
    monkeypatch.undo()
    assert [p for p in store.root.rglob("*") if p.is_file()] == []
    assert not store.exists(sha256(b"data"))


def test_recent_debris_is_kept(store: LocalStore) -> None:
    LocalHarness(store).leave_debris(sha256(b"still being written"))
    assert store.remove_incomplete(older_than=3600) == 0
    assert len(LocalHarness(store).debris()) == 1


def test_readers_see_the_old_file_until_they_finish(store: LocalStore) -> None:
    data = blob(5 * CHUNK)
    digest = sha256(data)
    store.put(digest, data)
    reader = store.open(digest)
    first = next(reader)
    store.delete(digest)
    store.put(digest, data)  # a new inode under the same name
    assert first + reader.read_all() == data


def test_a_racing_second_put_keeps_the_stored_file(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two uploads of one blob at once: the second checked for the blob before the first had
    stored it. Its put must not replace the first's file: a reader of that file (the exchange
    deriving the first upload) would see it unlinked under it, its ctime changed."""
    data = blob(3 * CHUNK)
    digest = sha256(data)
    store.put(digest, data)
    path = store.path_of(digest)
    with path.open("rb") as reader:
        before = os.fstat(reader.fileno())
        monkeypatch.setattr(store, "_stat_or_none", lambda path: None)  # "not there yet"
        assert store.put(digest, data) == BlobInfo(digest, len(data))
        after = os.fstat(reader.fileno())
    assert (after.st_ino, after.st_nlink, after.st_ctime_ns) == (
        before.st_ino,
        before.st_nlink,
        before.st_ctime_ns,
    )
    assert path.stat().st_ino == before.st_ino
    assert [p for p in store.root.rglob("*") if p.is_file()] == [path]  # no temporary left


def test_without_hard_links_a_put_renames(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: str, target: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    data = blob(2 * CHUNK)
    assert store.put(sha256(data), data) == BlobInfo(sha256(data), len(data))
    monkeypatch.undo()
    assert store.open(sha256(data)).read_all() == data
    assert [p for p in store.root.rglob("*") if p.is_file()] == [store.path_of(sha256(data))]


def later(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Make the store's clock read three seconds after ``path`` last changed."""
    changed = path.stat().st_ctime_ns
    monkeypatch.setattr(storage.local, "_clock_ns", lambda: changed + 3_000_000_000)


class Counting:
    """Counts the whole-file passes the store makes over blob files."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.whole = 0
        original = LocalStore._chunks

        def counting(
            store: LocalStore, file: io.FileIO, start: int, end: int | None
        ) -> Iterator[bytes]:
            if end is None:
                self.whole += 1
            return original(store, file, start, end)

        monkeypatch.setattr(LocalStore, "_chunks", counting)


def test_a_verified_mark_spares_whole_reads(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = blob(4 * CHUNK)
    digest = sha256(data)
    store.put(digest, data)
    counting = Counting(monkeypatch)
    assert store.read_range(digest, 0, 3).read_all() == data[:3]
    assert store.read_range(digest, 3, 9).read_all() == data[3:9]
    assert counting.whole == 2  # the file is too fresh to mark: verified each time
    later(monkeypatch, store.path_of(digest))
    assert store.read_range(digest, 0, 3).read_all() == data[:3]
    assert store.read_range(digest, 3, 9).read_all() == data[3:9]
    assert store.read_range(digest, 9, 99).read_all() == data[9:99]
    assert counting.whole == 3  # verified once, then trusted
    store.delete(digest)
    store.put(digest, data)
    assert store.read_range(digest, 0, 3).read_all() == data[:3]
    assert counting.whole == 4  # another file: verified again


def test_a_full_read_leaves_a_mark(store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    data = blob(4 * CHUNK)
    digest = sha256(data)
    store.put(digest, data)
    later(monkeypatch, store.path_of(digest))
    assert store.open(digest).read_all() == data
    counting = Counting(monkeypatch)
    assert store.read_range(digest, 0, 3).read_all() == data[:3]
    assert counting.whole == 0


def _put_in_process(root: str, data: bytes, barrier: object, results: object) -> None:
    local = LocalStore(root, chunk_size=CHUNK)
    barrier.wait()  # type: ignore[attr-defined]
    try:
        info = local.put(sha256(data), in_chunks(data, (CHUNK,)), size=len(data))
        results.put(info)  # type: ignore[attr-defined]
    except BaseException as exc:
        results.put(repr(exc))  # type: ignore[attr-defined]


def test_concurrent_puts_from_several_processes(store: LocalStore) -> None:
    data = blob(256 * CHUNK + 7, seed=99)
    digest = sha256(data)
    context = multiprocessing.get_context("spawn")
    count = 4
    barrier = context.Barrier(count)
    results = context.Queue()
    processes = [
        context.Process(target=_put_in_process, args=(str(store.root), data, barrier, results))
        for _ in range(count)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert outcomes == [BlobInfo(digest, len(data))] * count
    assert store.open(digest).read_all() == data
    assert [p for p in store.root.rglob("*") if p.is_file()] == [store.path_of(digest)]


# --- direct writes ------------------------------------------------------------------------


def _direct_io_works(directory: Path) -> bool:
    """Whether this file system takes O_DIRECT (ext4, xfs: yes; tmpfs: no)."""
    try:
        fd = os.open(directory / "probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    os.unlink(directory / "probe")
    return True


@pytest.fixture
def direct_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, bool]]:
    """Every ``_set_direct`` call of the store: (asked for, got)."""
    calls: list[tuple[bool, bool]] = []
    real = storage.local._set_direct

    def spy(fd: int, on: bool) -> bool:
        calls.append((on, got := real(fd, on)))
        return got

    monkeypatch.setattr(storage.local, "_set_direct", spy)
    return calls


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 4095, 7 * CHUNK + 513]
)
@pytest.mark.parametrize("direct", [True, False])
def test_blocks_write_the_bytes_given(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    direct_calls: list[tuple[bool, bool]],
    size: int,
    direct: bool,
) -> None:
    if not direct:
        monkeypatch.setattr(storage.local, "_O_DIRECT", 0)  # as on a system without it
    store = LocalStore(tmp_path / "blobs", chunk_size=CHUNK)
    data = blob(size, seed=size)
    store.put(sha256(data), in_chunks(data, (1, CHUNK + 3, 5000, 2 * CHUNK)), size=size)
    assert store.path_of(sha256(data)).read_bytes() == data
    assert [p.name for p in store.path_of(sha256(data)).parent.iterdir()] == [sha256(data)]
    opened = direct_calls[0]
    assert opened == (True, direct and _direct_io_works(tmp_path))
    if size % CHUNK:  # the last partial block goes through the cache
        assert direct_calls[-1] == (False, False)


def test_direct_writes_refused_per_block_fall_back_to_the_cache(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch, direct_calls: list[tuple[bool, bool]]
) -> None:
    """A file system that takes O_DIRECT at open but refuses the writes (EINVAL) still stores
    the blob, through the page cache from the refused block on."""
    refused: list[int] = []
    real = storage.local._write_all

    def picky(fd: int, chunk: bytes | memoryview) -> None:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            refused.append(len(chunk))
            raise OSError(errno.EINVAL, "Invalid argument")
        real(fd, chunk)

    monkeypatch.setattr(storage.local, "_write_all", picky)
    data = blob(5 * CHUNK + 17)
    store.put(sha256(data), in_chunks(data, (CHUNK,)))
    assert store.path_of(sha256(data)).read_bytes() == data
    if direct_calls[0][1]:  # O_DIRECT was on: the first block was refused, then buffered
        assert refused == [CHUNK]
        assert direct_calls[1] == (False, False)


def test_a_write_error_other_than_einval_fails_the_put(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fd: int, chunk: bytes | memoryview) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(storage.local, "_write_all", broken)
    data = blob(2 * CHUNK)
    with pytest.raises(StorageUnavailable, match="Input/output error"):
        store.put(sha256(data), data)
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


# --- put_read: the caller reads the new file once, and hashes it for the store -------------


def test_put_read_hands_over_the_whole_file_before_it_is_named(store: LocalStore) -> None:
    data = blob(3 * CHUNK + 11)
    digest = sha256(data)
    seen: list[tuple[bytes, bool]] = []

    def read(temp: Path) -> str:
        seen.append((temp.read_bytes(), store.exists(digest)))
        return sha256(temp.read_bytes())

    assert store.put_read(digest, in_chunks(data), size=len(data), read=read) == BlobInfo(
        digest, len(data)
    )
    assert seen == [(data, False)]
    assert store.path_of(digest).read_bytes() == data


def test_put_read_trusts_the_digest_it_is_given(store: LocalStore) -> None:
    """The store does not hash the bytes itself: a reader that finds another digest refuses
    them, whatever they are."""
    data = blob(2 * CHUNK)
    with pytest.raises(IntegrityError, match="found sha256:" + "0" * 64):
        store.put_read(sha256(data), data, read=lambda temp: "0" * 64)
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("honest", [True, False])
def test_a_reader_that_could_not_read_leaves_the_hashing_to_the_store(
    store: LocalStore, honest: bool
) -> None:
    data = blob(CHUNK + 1)
    digest = sha256(data if honest else data + b"!")
    calls: list[Path] = []

    def reader(temp: Path) -> None:  # could not read the file through
        calls.append(temp)

    if honest:
        store.put_read(digest, data, read=reader)
        assert store.path_of(digest).read_bytes() == data
    else:
        with pytest.raises(IntegrityError, match="refused"):
            store.put_read(digest, data, read=reader)
        assert not store.exists(digest)
    assert len(calls) == 1


def test_put_read_does_not_read_what_it_refuses_or_already_holds(store: LocalStore) -> None:
    data = blob(CHUNK)
    calls: list[Path] = []

    def read(temp: Path) -> str:
        calls.append(temp)
        return sha256(temp.read_bytes())

    with pytest.raises(IntegrityError):  # fewer bytes than named
        store.put_read(sha256(data), data[:-1], size=len(data), read=read)
    store.put(sha256(data), data)
    store.put_read(sha256(data), data, size=len(data), read=read)
    assert calls == []


def test_a_failing_reader_leaves_nothing(store: LocalStore) -> None:
    def read(temp: Path) -> str:
        raise RuntimeError("the deriving process died")

    with pytest.raises(RuntimeError, match="died"):
        store.put_read(sha256(b"data" * 100), b"data" * 100, read=read)
    assert [p for p in store.root.rglob("*") if p.is_file()] == []
