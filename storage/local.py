"""A content-addressed blob store in a local directory (the embedded default).

A blob lives at ``<root>/sha256/ab/cd/<digest>``, read-only. A put writes a temporary file
(``.<digest prefix>.<random>.tmp``) in the blob's own directory, fsyncs it, links it to the
final name and fsyncs the directory: readers see the whole blob or none, and any number of
threads or processes may put the same blob at once. The first link wins and the others keep
it: a stored blob's file is never replaced, so a reader that has it open (the exchange deriving
an upload) never sees it unlinked under it, even when the same blob is uploaded twice at once.

The temporary file is written with ``O_DIRECT`` where the file system takes it, from one
page-aligned block of memory reused for the whole put: the bytes go to the disk without passing
through the page cache. A blob is written once and read soon after at most once (the exchange
deriving an upload, which drops what it read, see ``catalog.streams``), so caching it only
pushes out what is worth keeping; and on a virtual machine whose free memory goes back to the
host, every page the cache takes is a fault into the host (a buffered write of 1 GiB cost
1.7-2.7 s of CPU on the 2-core VM of docs/catalog.md 11.2, a direct one 0.4 s). The last partial
block, and every block on a file system without ``O_DIRECT`` (tmpfs), is written buffered.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import mmap
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from storage._streams import (
    CHUNK_SIZE,
    RunningDigest,
    Source,
    VerifiedMarks,
    check_range,
    check_size,
    chunks_of,
    exact_length,
    require_stored_size,
    verifying,
)
from storage.digests import ALGORITHM, blob_key, validate_digest
from storage.errors import BlobNotFound, InvalidRequest, StorageUnavailable
from storage.interfaces import BlobInfo, BlobReader

_TEMP_SUFFIX = ".tmp"
_BLOB_MODE = 0o444
_RACY_NS = 2_000_000_000

Fingerprint = tuple[int, int, int, int, int]


@contextlib.contextmanager
def _os_errors(action: str) -> Iterator[None]:
    """Our own filesystem calls fail as ``StorageUnavailable`` (disk full, I/O error, ...)."""
    try:
        yield
    except OSError as exc:
        raise StorageUnavailable(f"local blob store: {action} failed: {exc}") from exc


def _fingerprint(status: os.stat_result) -> Fingerprint | None:
    """What a verified mark remembers of a file, or ``None`` if the file is too fresh to mark.

    ctime changes on any write, chmod, rename or link, and no caller can set it back. But
    timestamps are coarse (a clock tick, or a second on some filesystems): a file changed again
    within that granularity keeps its ctime. Like git's "racily clean" index entries, a file
    whose ctime is that close to now gets no mark and is verified whole again next time.
    """
    if _clock_ns() - status.st_ctime_ns <= _RACY_NS:
        return None
    return _identity(status)


def _identity(status: os.stat_result) -> Fingerprint:
    return (
        status.st_dev,
        status.st_ino,
        status.st_size,
        status.st_mtime_ns,
        status.st_ctime_ns,
    )


def _clock_ns() -> int:
    return time.time_ns()


def _write_all(fd: int, chunk: bytes | memoryview) -> None:
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view) :]


_O_DIRECT: int = getattr(os, "O_DIRECT", 0)
_DIRECT_ALIGNMENT = 4096
"""Offsets, lengths and addresses of direct writes are multiples of this (the largest logical
block size in common use; the staging block is page-aligned by mmap)."""


def _set_direct(fd: int, on: bool) -> bool:
    """Turn ``O_DIRECT`` on or off for ``fd``; whether it is now on."""
    if not _O_DIRECT:
        return False
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, (flags | _O_DIRECT) if on else (flags & ~_O_DIRECT))
    except OSError:
        return False  # a file system without direct I/O: the page cache it is
    return on


class BlockWriter:
    """Writes a new file in whole aligned blocks from one staging buffer, directly where it can.

    Direct writes need aligned memory, offsets and lengths; every block but the last is whole,
    so only the last one, and any block the file system refuses to write directly (EINVAL),
    goes through the page cache. ``fd`` must be a new, empty file open for writing; the caller
    closes it after :meth:`finish` (or :meth:`close`, to give up).
    """

    def __init__(self, fd: int, block: int) -> None:
        self._fd = fd
        self._block = -(-block // _DIRECT_ALIGNMENT) * _DIRECT_ALIGNMENT
        self._buffer = mmap.mmap(-1, self._block)
        self._view = memoryview(self._buffer)
        self._filled = 0
        self.direct = _set_direct(fd, True)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            room = self._block - self._filled
            take = min(room, len(view))
            self._view[self._filled : self._filled + take] = view[:take]
            self._filled += take
            view = view[take:]
            if self._filled == self._block:
                self._flush()

    def flush(self) -> None:
        """Write what is staged; a partial block goes through the cache, as do all after it
        (the file offset is no longer aligned)."""
        if self._filled:
            self.direct = _set_direct(self._fd, False)
            self._flush()

    def finish(self) -> None:
        """Write what is left and release the buffer."""
        self.flush()
        self.close()

    def close(self) -> None:
        self._view.release()
        self._buffer.close()

    def _flush(self) -> None:
        block = self._view[: self._filled]
        try:
            _write_all(self._fd, block)
        except OSError as exc:
            if not (self.direct and exc.errno == errno.EINVAL):
                raise
            # Direct I/O accepted at open but not for this file's blocks: write through the
            # cache from here on (nothing of this block was written: EINVAL comes first).
            self.direct = _set_direct(self._fd, False)
            _write_all(self._fd, block)
        finally:
            block.release()
        self._filled = 0


_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK}


def _keep_first(temp: str, path: Path) -> None:
    """Give the finished temporary file the blob's name, unless another writer already did (its
    bytes have the same digest, so they are the same). On a file system without hard links,
    rename over it instead."""
    try:
        os.link(temp, path)
    except FileExistsError:
        pass
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        os.replace(temp, path)


def _sha256_of(chunks: Iterator[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class LocalStore:
    """Blobs in a directory tree under ``root`` (created if missing)."""

    def __init__(
        self, root: str | os.PathLike[str], *, chunk_size: int = CHUNK_SIZE, marks: int = 4096
    ) -> None:
        if chunk_size < 1:
            raise InvalidRequest(f"chunk_size must be positive, not {chunk_size}")
        self.root = Path(root)
        self._chunk_size = chunk_size
        self._verified = VerifiedMarks(marks)
        with _os_errors(f"creating {self.root}"):
            self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def path_of(self, digest: str) -> Path:
        """Where the blob named ``digest`` is (or would be) stored."""
        return self.root / blob_key(digest)

    # --- writing -------------------------------------------------------------------------

    def put(self, digest: str, source: Source, *, size: int | None = None) -> BlobInfo:
        return self.put_read(digest, source, size=size)

    def put_read(
        self,
        digest: str,
        source: Source,
        *,
        size: int | None = None,
        read: Callable[[Path], str | None] | None = None,
    ) -> BlobInfo:
        """``put``, with ``read`` given the complete temporary file before it takes the blob's
        name, to read it once for its own purpose (the exchange deriving an upload) and return
        the SHA-256 it found on the way: then the store does not hash the bytes itself. A
        ``read`` that returns None (it could not read the file through) leaves the hashing to
        the store. ``read`` is not called for a blob already stored."""
        check_size(size)
        path = self.path_of(digest)
        existing = self._stat_or_none(path)
        if existing is not None:
            require_stored_size(digest, expected=size, stored=existing.st_size)
            return BlobInfo(digest, existing.st_size)
        with _os_errors(f"creating a temporary file for sha256:{digest}"):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(
                dir=path.parent, prefix=f".{digest[:16]}.", suffix=_TEMP_SUFFIX
            )
        try:
            try:
                running = self._fill(fd, source, RunningDigest(digest, size, hashing=read is None))
                with _os_errors(f"storing sha256:{digest}"):
                    os.fchmod(fd, _BLOB_MODE)
                    os.fsync(fd)
                found = None
                if read is not None:
                    if size is None or running.size == size:  # else refused below anyway
                        found = read(Path(temp))
                    if found is None:
                        found = _sha256_of(self._chunks(fd, 0, None))
                running.require_match(f"refused sha256:{digest}", found=found)
                with _os_errors(f"storing sha256:{digest}"):
                    _keep_first(temp, path)
            finally:
                os.close(fd)
        finally:
            _remove_quietly(temp)  # linked (or beaten): the temporary name is no longer needed
        # No verified mark: the file is brand new, so too fresh to mark (see _fingerprint).
        self._sync_directory(path.parent)
        return BlobInfo(digest, running.size)

    def _fill(self, fd: int, source: Source, running: RunningDigest) -> RunningDigest:
        # Only our writes are translated: an error raised by the caller's source passes as is.
        writing = f"writing sha256:{running.expected_digest}"
        writer = BlockWriter(fd, self._chunk_size)
        try:
            for chunk in chunks_of(source, self._chunk_size):
                running.update(chunk)
                with _os_errors(writing):
                    writer.write(chunk)
            with _os_errors(writing):
                writer.finish()
        finally:
            writer.close()
        return running

    def _sync_directory(self, directory: Path) -> None:
        with _os_errors(f"syncing {directory}"):
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # --- reading -------------------------------------------------------------------------

    def open(self, digest: str) -> BlobReader:
        file, status = self._open(digest)
        fingerprint = _fingerprint(status)
        chunks = verifying(
            self._chunks(file.fileno(), 0, None),
            digest=digest,
            on_verified=lambda: self._mark(digest, fingerprint),
        )
        return BlobReader(BlobInfo(digest, status.st_size), chunks, close=file.close)

    def read_range(self, digest: str, start: int, end: int) -> BlobReader:
        file, status = self._open(digest)
        try:
            check_range(start, end, status.st_size)
            fingerprint = _fingerprint(status)
            if start < end and (fingerprint is None or self._verified.get(digest) != fingerprint):
                for _ in verifying(self._chunks(file.fileno(), 0, None), digest=digest):
                    pass
                self._mark(digest, fingerprint)
        except BaseException:
            file.close()
            raise
        pieces = self._chunks(file.fileno(), start, end)
        chunks = exact_length(pieces, length=end - start, digest=digest)
        info = BlobInfo(digest, status.st_size)
        return BlobReader(info, chunks, start=start, end=end, close=file.close)

    def _mark(self, digest: str, fingerprint: Fingerprint | None) -> None:
        if fingerprint is not None:
            self._verified.mark(digest, fingerprint)

    def _open(self, digest: str) -> tuple[io.FileIO, os.stat_result]:
        path = self.path_of(digest)
        try:
            file = io.FileIO(path, "r")
        except FileNotFoundError:
            raise BlobNotFound(digest) from None
        except OSError as exc:
            raise StorageUnavailable(f"local blob store: opening {path} failed: {exc}") from exc
        try:
            with _os_errors(f"reading sha256:{digest}"):
                status = os.fstat(file.fileno())
        except BaseException:
            file.close()
            raise
        return file, status

    def _chunks(self, fd: int, start: int, end: int | None) -> Iterator[bytes]:
        # pread: the verifying pass and the serving pass share one descriptor, no seeking.
        offset = start
        while end is None or offset < end:
            want = self._chunk_size if end is None else min(self._chunk_size, end - offset)
            with _os_errors("reading a blob"):
                chunk = os.pread(fd, want, offset)
            if not chunk:
                return
            offset += len(chunk)
            yield chunk

    def stat(self, digest: str) -> BlobInfo:
        status = self._stat_or_none(self.path_of(digest))
        if status is None:
            raise BlobNotFound(digest)
        return BlobInfo(digest, status.st_size)

    def exists(self, digest: str) -> bool:
        return self._stat_or_none(self.path_of(digest)) is not None

    def fingerprint(self, digest: str) -> str:
        """Device, inode, size, modification and change times (any write, chmod, rename or
        replacement changes the change time, which no caller can set back)."""
        status = self._stat_or_none(self.path_of(digest))
        if status is None:
            raise BlobNotFound(digest)
        return "local:" + ":".join(map(str, _identity(status)))

    def presigned_url(self, digest: str, *, expires_in: int) -> str | None:
        """Always ``None`` (after checking the blob is there): serve it with ``open``."""
        self.stat(digest)
        return None

    def _stat_or_none(self, path: Path) -> os.stat_result | None:
        try:
            status = os.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageUnavailable(f"local blob store: stat {path} failed: {exc}") from exc
        return status if stat.S_ISREG(status.st_mode) else None

    # --- sweeping ------------------------------------------------------------------------

    def delete(self, digest: str) -> None:
        # Directories stay: a concurrent put may be about to create its temporary file there.
        path = self.path_of(digest)
        self._verified.forget(digest)
        with _os_errors(f"deleting sha256:{digest}"), contextlib.suppress(FileNotFoundError):
            path.unlink()

    def iter_digests(self) -> Iterator[str]:
        for directory, names in self._leaf_directories():
            for name in names:
                if self._path_for_name(name) == directory / name:
                    yield name

    def remove_incomplete(self, *, older_than: float) -> int:
        cutoff = time.time() - older_than
        removed = 0
        for directory, names in self._leaf_directories():
            for name in names:
                if not (name.startswith(".") and name.endswith(_TEMP_SUFFIX)):
                    continue
                status = self._stat_or_none(directory / name)
                if status is not None and status.st_mtime < cutoff:
                    _remove_quietly(str(directory / name))
                    removed += 1
        return removed

    def _path_for_name(self, name: str) -> Path | None:
        try:
            return self.path_of(validate_digest(name))
        except InvalidRequest:
            return None

    def _leaf_directories(self) -> Iterator[tuple[Path, list[str]]]:
        """Each ``sha256/ab/cd`` directory with its sorted entries, in ascending order."""
        top = self.root / ALGORITHM
        for first in _sorted_entries(top):
            for second in _sorted_entries(top / first):
                directory = top / first / second
                if directory.is_dir():
                    yield directory, _sorted_entries(directory)


def _sorted_entries(directory: Path) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise StorageUnavailable(f"local blob store: listing {directory} failed: {exc}") from exc
