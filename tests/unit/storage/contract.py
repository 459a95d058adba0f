"""The contract every BlobStore keeps, run against each driver.

A driver's test module subclasses ``BlobStoreContract`` and provides a ``harness`` fixture: the
store under test plus the few things only the backend can do (corrupt a stored blob behind the
store's back, list the debris of a put, leave the debris of a put that died).
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest

from storage import (
    BlobInfo,
    BlobNotFound,
    BlobStore,
    IntegrityError,
    InvalidDigest,
    InvalidRange,
    InvalidRequest,
    Source,
    StorageError,
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def in_chunks(data: bytes, sizes: tuple[int, ...] = (1, 7, 4096, 65_537)) -> Iterator[bytes]:
    """``data`` cut into uneven chunks, with an empty one thrown in."""
    offset, turn = 0, 0
    while offset < len(data):
        step = sizes[turn % len(sizes)]
        yield data[offset : offset + step]
        if turn == 1:
            yield b""
        offset += step
        turn += 1


class Harness(Protocol):
    store: BlobStore

    @property
    def large(self) -> int:
        """A size that takes the driver's multi-piece path (multipart; many chunks)."""
        ...

    def reopen(self) -> BlobStore:
        """Another store on the same backend, as a second process would open it."""
        ...

    def corrupt(self, digest: str, *, truncate: bool = False) -> None:
        """Change one stored byte of ``digest`` (or drop the last) behind the store's back."""
        ...

    def debris(self) -> list[str]:
        """Anything stored that is not a complete blob (temporary files, open uploads)."""
        ...

    def leave_debris(self, digest: str) -> None:
        """What a put killed half-way would leave behind."""
        ...


@dataclass
class Exploding:
    """A source that gives ``good`` bytes, then raises: it must never be read past that."""

    good: bytes = b""
    reads: list[int] = field(default_factory=list)

    def __iter__(self) -> Iterator[bytes]:
        self.reads.append(1)
        if self.good:
            yield self.good
        raise RuntimeError("the source broke")


BAD_DIGESTS = [
    "",
    "ab",
    "A" * 64,
    "g" * 64,
    "a" * 63,
    "a" * 65,
    "sha256:" + "a" * 64,
    " " + "a" * 63,
    "a" * 63 + "\n",
    "\uff41" * 64,  # fullwidth a
    None,
    b"a" * 64,
]


class BlobStoreContract:
    """Tests every BlobStore must pass. Subclasses provide the ``harness`` fixture."""

    # --- round trips ---------------------------------------------------------------------

    @pytest.mark.parametrize("kind", ["empty", "one byte", "small", "large", "large + 1"])
    def test_round_trip(self, harness: Harness, kind: str) -> None:
        size = {
            "empty": 0,
            "one byte": 1,
            "small": 1000,
            "large": harness.large,
            "large + 1": harness.large + 1,
        }[kind]
        data = blob(size, seed=size)
        digest = sha256(data)
        assert harness.store.put(digest, in_chunks(data), size=size) == BlobInfo(digest, size)
        with harness.store.open(digest) as reader:
            assert reader.info == BlobInfo(digest, size)
            assert reader.length == size
            assert reader.read_all() == data
        assert harness.store.stat(digest) == BlobInfo(digest, size)
        assert harness.store.exists(digest)
        assert list(harness.store.iter_digests()) == [digest]
        assert harness.debris() == []

    @pytest.mark.parametrize("source", ["bytes", "file", "chunks", "generator"])
    def test_every_kind_of_source(self, harness: Harness, source: str) -> None:
        data = blob(harness.large + 333, seed=7)
        digest = sha256(data)
        sources: dict[str, Source] = {
            "bytes": data,
            "file": io.BytesIO(data),
            "chunks": list(in_chunks(data)),
            "generator": in_chunks(data),
        }
        given = sources[source]
        assert harness.store.put(digest, given).size == len(data)
        assert harness.store.open(digest).read_all() == data

    def test_a_text_source_is_refused(self, harness: Harness) -> None:
        with pytest.raises(InvalidRequest):
            harness.store.put(sha256(b"text"), ["text"])  # type: ignore[list-item]
        assert harness.debris() == []

    # --- refusing bytes that do not match --------------------------------------------------

    @pytest.mark.parametrize("large", [False, True], ids=["small", "large"])
    def test_wrong_digest_is_refused_leaving_nothing(self, harness: Harness, large: bool) -> None:
        data = blob(harness.large * 2 + 5 if large else 100, seed=1)
        claimed = sha256(data + b"!")
        with pytest.raises(IntegrityError) as caught:
            harness.store.put(claimed, in_chunks(data))
        assert caught.value.expected_digest == claimed
        assert caught.value.actual_digest == sha256(data)
        assert caught.value.actual_size == len(data)
        self.assert_empty(harness, claimed)

    @pytest.mark.parametrize("delta", [-1, 1])
    @pytest.mark.parametrize("large", [False, True], ids=["small", "large"])
    def test_wrong_size_is_refused_leaving_nothing(
        self, harness: Harness, large: bool, delta: int
    ) -> None:
        data = blob(harness.large * 2 + 5 if large else 100, seed=2)
        digest = sha256(data)
        with pytest.raises(IntegrityError) as caught:
            harness.store.put(digest, in_chunks(data), size=len(data) + delta)
        assert caught.value.expected_size == len(data) + delta
        self.assert_empty(harness, digest)

    @pytest.mark.parametrize("size", [-1, 1.5, True, "3"])
    def test_a_bad_size_is_refused(self, harness: Harness, size: object) -> None:
        with pytest.raises(InvalidRequest):
            harness.store.put(sha256(b"x"), b"x", size=size)  # type: ignore[arg-type]
        self.assert_empty(harness, sha256(b"x"))

    @pytest.mark.parametrize("large", [False, True], ids=["small", "large"])
    def test_a_failing_source_leaves_nothing(self, harness: Harness, large: bool) -> None:
        data = blob(harness.large * 2 + 5 if large else 100, seed=3)
        source = Exploding(good=data)
        with pytest.raises(RuntimeError, match="the source broke"):
            harness.store.put(sha256(data), source)
        self.assert_empty(harness, sha256(data))

    def assert_empty(self, harness: Harness, digest: str) -> None:
        assert not harness.store.exists(digest)
        with pytest.raises(BlobNotFound):
            harness.store.open(digest)
        assert list(harness.store.iter_digests()) == []
        assert harness.debris() == []

    # --- idempotence -----------------------------------------------------------------------

    @pytest.mark.parametrize("large", [False, True], ids=["small", "large"])
    def test_put_is_idempotent_and_does_not_read_again(self, harness: Harness, large: bool) -> None:
        data = blob(harness.large + 9 if large else 10, seed=4)
        digest = sha256(data)
        first = harness.store.put(digest, data)
        source = Exploding()
        assert harness.store.put(digest, source) == first
        assert harness.store.put(digest, source, size=len(data)) == first
        assert source.reads == []
        assert harness.store.open(digest).read_all() == data
        assert list(harness.store.iter_digests()) == [digest]

    def test_put_again_with_another_size_is_refused(self, harness: Harness) -> None:
        data = blob(10, seed=5)
        digest = sha256(data)
        harness.store.put(digest, data)
        with pytest.raises(IntegrityError):
            harness.store.put(digest, data, size=11)
        assert harness.store.open(digest).read_all() == data

    # --- digests ---------------------------------------------------------------------------

    @pytest.mark.parametrize("digest", BAD_DIGESTS, ids=repr)
    def test_bad_digests_are_refused_everywhere(self, harness: Harness, digest: object) -> None:
        store = harness.store
        calls: list[Callable[[Any], object]] = [
            lambda d: store.put(d, b""),
            store.open,
            lambda d: store.read_range(d, 0, 0),
            store.stat,
            store.exists,
            store.delete,
            lambda d: store.presigned_url(d, expires_in=60),
        ]
        for call in calls:
            with pytest.raises(InvalidDigest) as caught:
                call(digest)
            assert not isinstance(caught.value, ValueError)
            assert isinstance(caught.value, StorageError)
        assert harness.debris() == []

    # --- ranges ----------------------------------------------------------------------------

    def test_ranges(self, harness: Harness) -> None:
        size = harness.large * 2 + 3
        data = blob(size, seed=6)
        digest = sha256(data)
        harness.store.put(digest, data)
        ranges = [
            (0, 0),
            (0, 1),
            (0, size),
            (1, size - 1),
            (size - 1, size),
            (size, size),
            (harness.large - 1, harness.large + 1),
            (size // 3, size // 2),
        ]
        for start, end in ranges:
            with harness.store.read_range(digest, start, end) as reader:
                assert (reader.start, reader.end, reader.length) == (start, end, end - start)
                assert reader.info == BlobInfo(digest, size)
                assert reader.read_all() == data[start:end], (start, end)

    def test_ranges_of_a_blob_stored_before_this_store_opened(self, harness: Harness) -> None:
        data = blob(harness.large + 100, seed=8)
        digest = sha256(data)
        harness.store.put(digest, data)
        fresh = harness.reopen()
        assert fresh.read_range(digest, 5, 50).read_all() == data[5:50]
        assert fresh.read_range(digest, 50, 500).read_all() == data[50:500]

    @pytest.mark.parametrize(
        ("start", "end"), [(-1, 1), (5, 4), (0, 101), (101, 101), (100, 99), (-5, -1)]
    )
    def test_bad_ranges_are_refused(self, harness: Harness, start: int, end: int) -> None:
        data = blob(100, seed=9)
        digest = sha256(data)
        harness.store.put(digest, data)
        with pytest.raises(InvalidRange) as caught:
            harness.store.read_range(digest, start, end)
        assert (caught.value.start, caught.value.end, caught.value.size) == (start, end, 100)
        assert not isinstance(caught.value, ValueError)

    def test_range_bounds_must_be_integers(self, harness: Harness) -> None:
        digest = sha256(b"abc")
        harness.store.put(digest, b"abc")
        for start, end in [(0.0, 1), (0, "2"), (None, 1), (False, 1)]:
            with pytest.raises(InvalidRequest):
                harness.store.read_range(digest, start, end)  # type: ignore[arg-type]

    def test_ranges_of_a_missing_blob(self, harness: Harness) -> None:
        for start, end in [(0, 0), (0, 1), (5, 3)]:
            with pytest.raises(BlobNotFound):
                harness.store.read_range(sha256(b"missing"), start, end)

    # --- stat, exists, delete, listing -------------------------------------------------------

    def test_missing_blobs(self, harness: Harness) -> None:
        digest = sha256(b"never stored")
        assert not harness.store.exists(digest)
        calls: list[Callable[[str], object]] = [
            harness.store.stat,
            harness.store.open,
            lambda d: harness.store.presigned_url(d, expires_in=60),
        ]
        for call in calls:
            with pytest.raises(BlobNotFound) as caught:
                call(digest)
            assert caught.value.digest == digest
            assert caught.value.__cause__ is None

    def test_listing_and_deleting(self, harness: Harness) -> None:
        blobs = [blob(n, seed=n) for n in (0, 3, 30, 300)]
        digests = [sha256(data) for data in blobs]
        for digest, data in zip(digests, blobs, strict=True):
            harness.store.put(digest, data)
        assert list(harness.store.iter_digests()) == sorted(digests)
        harness.store.delete(digests[1])
        harness.store.delete(digests[1])  # gone already: not an error
        assert not harness.store.exists(digests[1])
        with pytest.raises(BlobNotFound):
            harness.store.stat(digests[1])
        with pytest.raises(BlobNotFound):
            harness.store.read_range(digests[1], 0, 1)
        assert list(harness.store.iter_digests()) == sorted(digests[:1] + digests[2:])
        harness.store.put(digests[1], blobs[1])
        assert harness.store.open(digests[1]).read_all() == blobs[1]

    def test_removing_the_debris_of_dead_puts(self, harness: Harness) -> None:
        kept = blob(10)
        harness.store.put(sha256(kept), kept)
        harness.leave_debris(sha256(b"half written"))
        assert len(harness.debris()) == 1
        assert harness.store.remove_incomplete(older_than=-60) == 1
        assert harness.debris() == []
        assert list(harness.store.iter_digests()) == [sha256(kept)]

    # --- corruption ------------------------------------------------------------------------

    @pytest.mark.parametrize("truncate", [False, True], ids=["flipped", "truncated"])
    def test_corruption_is_found_when_read(self, harness: Harness, truncate: bool) -> None:
        data = blob(harness.large * 2 + 1, seed=10)
        digest = sha256(data)
        harness.store.put(digest, data)
        assert harness.store.read_range(digest, 0, 10).read_all() == data[:10]
        harness.corrupt(digest, truncate=truncate)
        reader = harness.store.open(digest)
        received = bytearray()
        with pytest.raises(IntegrityError) as caught:
            for chunk in reader:
                received += chunk
        assert caught.value.expected_digest == digest
        assert caught.value.actual_digest not in (None, digest)
        assert received != data  # the bytes came, but the error came after them
        for start, end in [(0, 10), (len(data) // 2, len(data) // 2 + 10)]:
            with pytest.raises(IntegrityError):
                harness.store.read_range(digest, start, end).read_all()

    def test_corruption_after_a_full_verified_read_is_still_found(self, harness: Harness) -> None:
        data = blob(harness.large + 1, seed=11)
        digest = sha256(data)
        harness.store.put(digest, data)
        fresh = harness.reopen()
        assert fresh.open(digest).read_all() == data  # marks it verified
        harness.corrupt(digest)
        with pytest.raises(IntegrityError):
            fresh.read_range(digest, 0, 5).read_all()

    def test_the_fingerprint_changes_when_the_object_is_rewritten(self, harness: Harness) -> None:
        data = blob(1000, seed=3)
        digest = sha256(data)
        harness.store.put(digest, data)
        before = harness.store.fingerprint(digest)
        assert harness.store.fingerprint(digest) == before == harness.reopen().fingerprint(digest)
        with harness.store.open(digest) as reader:
            reader.read_all()
        assert harness.store.fingerprint(digest) == before  # reading changes nothing
        time.sleep(0.05)  # beyond the file system's timestamp granularity
        harness.corrupt(digest)
        assert harness.store.fingerprint(digest) != before
        with pytest.raises(BlobNotFound):
            harness.store.fingerprint(sha256(b"never stored"))

    # --- readers ---------------------------------------------------------------------------

    def test_a_reader_closed_early(self, harness: Harness) -> None:
        data = blob(harness.large * 2, seed=12)
        digest = sha256(data)
        harness.store.put(digest, data)
        reader = harness.store.open(digest)
        first = next(reader)
        assert data.startswith(first)
        reader.close()
        reader.close()
        assert list(reader) == []
        with harness.store.open(digest):
            pass
        assert harness.store.open(digest).read_all() == data

    # --- concurrency -----------------------------------------------------------------------

    def test_concurrent_puts_of_one_blob(self, harness: Harness) -> None:
        data = blob(harness.large * 3 + 11, seed=13)
        digest = sha256(data)
        threads = 8
        barrier = threading.Barrier(threads)
        results: list[BlobInfo | BaseException] = []

        def put() -> None:
            barrier.wait()
            try:
                results.append(harness.store.put(digest, in_chunks(data), size=len(data)))
            except BaseException as exc:
                results.append(exc)

        workers = [threading.Thread(target=put) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert results == [BlobInfo(digest, len(data))] * threads
        assert harness.store.open(digest).read_all() == data
        assert list(harness.store.iter_digests()) == [digest]
        assert harness.debris() == []

    def test_concurrent_puts_and_reads_of_different_blobs(self, harness: Harness) -> None:
        blobs = [blob(harness.large + n, seed=n) for n in range(6)]
        errors: list[BaseException] = []

        def put_then_read(data: bytes) -> None:
            try:
                digest = sha256(data)
                harness.store.put(digest, io.BytesIO(data))
                assert harness.store.open(digest).read_all() == data
                assert harness.store.read_range(digest, 1, 9).read_all() == data[1:9]
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=put_then_read, args=(data,)) for data in blobs]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert errors == []
        assert list(harness.store.iter_digests()) == sorted(sha256(data) for data in blobs)
