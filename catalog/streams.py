"""Reading a stored file exactly once: hashing, decompressing, cutting into line blocks.

A :class:`StoredFile` is the only way ingestion touches a file. It hashes every stored byte as it
passes (the blob digest is over the stored, possibly compressed, bytes), counts them for progress,
and checks that the file is the same one, unchanged, from opening to the last byte. Decompression
and line splitting are streaming with bounded memory: no block is held beyond what one record
needs, and a record longer than the limit is refused before it is read whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pyarrow as pa  # type: ignore[import-untyped]

from catalog.errors import FileChangedError, IngestError

__all__ = [
    "BLOCK_SIZE",
    "CHUNK_SIZE",
    "FileStat",
    "LongLineError",
    "StoredFile",
    "decompressed_chunks",
    "file_line_blocks",
    "line_blocks",
]

CHUNK_SIZE = 1 << 20
"""Bytes read from disk (and produced by a decompressor) per step."""

BLOCK_SIZE = 8 << 20
"""Target size of a line block handed to a parser: large enough to amortise per-call costs."""

UTF8_BOM = b"\xef\xbb\xbf"

DROP_WINDOW = 8 << 20
"""With ``drop_cache``, the page cache is told to drop what was read in steps of this much."""

ProgressHook = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class FileStat:
    """The identity and version of a file on disk, compared before and after reading it."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def differences(self, other: FileStat) -> list[str]:
        """Human-readable fields that differ, for an error that says what changed."""
        changes = []
        for field in ("device", "inode", "size", "mtime_ns", "ctime_ns"):
            before, after = getattr(self, field), getattr(other, field)
            if before != after:
                changes.append(f"{field} {before} -> {after}")
        return changes


class StoredFile:
    """An open corpus file whose stored bytes are hashed and counted exactly once.

    Sequential formats read through :meth:`read`; Parquet, which needs random access, is parsed
    through :attr:`file` while :meth:`hash_until` hashes the bytes in order alongside (with
    ``pread``, so the parser's file position is untouched). :meth:`finish` hashes whatever is left,
    then refuses the file if it changed while open.

    With ``drop_cache``, the pages already hashed are dropped from the OS page cache as the read
    goes on (``POSIX_FADV_DONTNEED``, every DROP_WINDOW bytes, and the whole file on close): for
    the exchange reading a blob it stores, which nobody reads again soon. The cache then holds a
    few windows of it instead of all of it, and the pages it frees are the ones the next
    window reuses: on a virtual machine whose free memory goes back to the host, filling the
    cache with fresh pages cost 1.6-1.8 s of CPU per GiB read, against 0.2 s this way
    (docs/catalog.md 11.2). A Parquet parser reading ahead of the hash rereads a dropped page
    from the disk, nothing worse: the advice never changes what a read returns.
    """

    def __init__(
        self,
        path: Path,
        *,
        name: str,
        expected: FileStat | None = None,
        progress: ProgressHook | None = None,
        drop_cache: bool = False,
    ) -> None:
        self.name = name
        try:
            # Non-blocking, so that a FIFO put in a file's place cannot hang the open; symlinks
            # are followed (scan() has vetted them) and the identity checked against the scan.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise IngestError(f"cannot open: {exc.strerror or exc}", file=name) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise IngestError("not a regular file", file=name)
            self.opened = FileStat.of(st)
            if expected is not None and expected != self.opened:
                raise FileChangedError(
                    "changed since it was scanned ("
                    + ", ".join(expected.differences(self.opened))
                    + ")",
                    file=name,
                )
        except BaseException:
            os.close(fd)
            raise
        self.file = os.fdopen(fd, "rb", buffering=0)
        self._sha256 = hashlib.sha256()
        self._hashed = 0
        self._progress = progress
        self._drop = drop_cache and hasattr(os, "posix_fadvise")
        self._dropped = 0

    @property
    def size(self) -> int:
        """The size when opened; :meth:`finish` refuses the file if it is no longer that."""
        return self.opened.size

    def _account(self, data: bytes | memoryview) -> None:
        self._sha256.update(data)
        self._hashed += len(data)
        if self._progress is not None:
            self._progress(len(data))
        if self._drop and self._hashed - self._dropped >= DROP_WINDOW:
            self._drop_cached(self._dropped, self._hashed - self._dropped)
            self._dropped = self._hashed

    def _drop_cached(self, offset: int, length: int) -> None:
        # Advice only: a file system that cannot take it changes nothing that is read.
        with contextlib.suppress(OSError):
            os.posix_fadvise(self.file.fileno(), offset, length, os.POSIX_FADV_DONTNEED)

    def read(self, size: int = CHUNK_SIZE) -> bytes:
        """The next stored bytes, hashed on the way (the sequential formats' only reader).

        Never reads past the size the file had when opened, so a file that keeps growing
        cannot keep the reader busy: :meth:`finish` notices the growth instead.
        """
        size = min(size if size >= 0 else self.opened.size, self.opened.size - self._hashed)
        if size <= 0:
            return b""
        try:
            data = self.file.read(size)
        except OSError as exc:
            raise IngestError(f"read failed: {exc.strerror or exc}", file=self.name) from None
        if data:
            self._account(data)
        return data or b""

    def readinto(self, buffer: memoryview) -> int:
        """:meth:`read` into ``buffer`` (the line readers' blocks: no copy): bytes read."""
        size = min(len(buffer), self.opened.size - self._hashed)
        if size <= 0:
            return 0
        try:
            got = self.file.readinto(buffer[:size])
        except OSError as exc:
            raise IngestError(f"read failed: {exc.strerror or exc}", file=self.name) from None
        if got:
            self._account(buffer[:got])
        return got or 0

    def hash_until(self, offset: int) -> None:
        """Hash stored bytes up to ``offset`` without moving the file position."""
        fd = self.file.fileno()
        target = min(offset, self.opened.size)
        while self._hashed < target:
            want = min(CHUNK_SIZE, target - self._hashed)
            try:
                data = os.pread(fd, want, self._hashed)
            except OSError as exc:
                raise IngestError(f"read failed: {exc.strerror or exc}", file=self.name) from None
            if not data:
                break  # shorter than when opened: finish() reports it
            self._account(data)

    def finish(self) -> tuple[str, int]:
        """Hash the rest, check nothing changed, and return (hex SHA-256, size) of the bytes."""
        size = self.opened.size
        self.hash_until(size)
        fd = self.file.fileno()
        try:
            grown = os.pread(fd, 1, size) if self._hashed == size else b""
            after = FileStat.of(os.fstat(fd))
        except OSError as exc:
            raise IngestError(f"read failed: {exc.strerror or exc}", file=self.name) from None
        changes = self.opened.differences(after)
        if self._hashed != size:
            changes.append(f"read {self._hashed} bytes of {size}")
        elif grown:
            changes.append(f"grew beyond {size} bytes")
        if changes:
            raise FileChangedError(f"changed while read ({', '.join(changes)})", file=self.name)
        return self._sha256.hexdigest(), size

    def close(self) -> None:
        if self._drop and not self.file.closed:
            self._drop_cached(0, 0)  # to the end of the file
        self.file.close()

    def __enter__(self) -> StoredFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def decompressed_chunks(stored: StoredFile, compression: str | None) -> Iterator[bytes]:
    """The decompressed bytes of ``stored`` in chunks of at most CHUNK_SIZE.

    gzip (concatenated members too) and zstd (concatenated frames too) are decoded by Arrow's
    streaming codecs, which, unlike Python's zstandard readers, refuse a truncated stream. Output
    is bounded per step whatever the compression ratio: a bomb costs time, never memory.
    """
    if compression is None:
        while chunk := stored.read():
            yield chunk
        return
    if stored.size == 0:
        raise IngestError(f"an empty file is not a {compression} stream", file=stored.name)
    try:
        stream = pa.CompressedInputStream(pa.PythonFile(_Source(stored), mode="r"), compression)
        while chunk := stream.read(CHUNK_SIZE):
            yield chunk
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(
            f"corrupt or truncated {compression} stream: {exc}", file=stored.name
        ) from None
    if stored.read():
        raise IngestError(f"bytes after the end of the {compression} stream", file=stored.name)


class _Source:
    """The file-like face Arrow's codec stream reads compressed bytes through."""

    closed = False

    def __init__(self, stored: StoredFile) -> None:
        self._stored = stored

    def read(self, size: int = -1) -> bytes:
        return self._stored.read(size if size >= 0 else self._stored.size)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


class LongLineError(IngestError):
    """A line longer than the limit, met while buffering: the reader adds record and line."""


def line_blocks(
    chunks: Iterator[bytes], *, name: str, max_line: int, skip_bom: bool = True
) -> Iterator[bytes]:
    """Regroup decompressed chunks into blocks of whole lines (about BLOCK_SIZE each).

    Every block but the last ends with LF. A UTF-8 byte order mark at the very start is dropped.
    Memory stays below ``BLOCK_SIZE + max_line + CHUNK_SIZE``: once the unfinished last line is
    longer than ``max_line`` bytes, the complete lines before it are handed over and then
    :class:`LongLineError` is raised, without reading the rest of the line. (Lines that end
    within reach are left to the parser, which checks each line's length exactly.)
    """
    parts: list[bytes] = []
    size = 0  # bytes in parts
    tail = 0  # bytes of parts after their last LF: the unfinished line
    for chunk in _without_bom(chunks) if skip_bom else chunks:
        cut = chunk.rfind(b"\n") + 1
        if not cut:
            parts.append(chunk)
            size += len(chunk)
            tail += len(chunk)
            if tail > max_line:
                if size > tail:
                    data = b"".join(parts)
                    yield data[: size - tail]
                raise LongLineError(f"line is longer than the limit of {max_line} bytes", file=name)
            continue
        if size + cut < BLOCK_SIZE:
            parts.append(chunk)
            size += len(chunk)
            tail = len(chunk) - cut
            continue
        parts.append(chunk[:cut])
        yield b"".join(parts)
        rest = chunk[cut:]
        parts = [rest] if rest else []
        size = tail = len(rest)
    if parts:
        yield b"".join(parts)


def file_line_blocks(
    stored: StoredFile, *, max_line: int, skip_bom: bool = True
) -> Iterator[memoryview]:
    """:func:`line_blocks` of an uncompressed file, read straight into one reused buffer.

    The same lines in blocks of about BLOCK_SIZE: every block but the last ends with LF, a UTF-8
    byte order mark at the very start is dropped, and once the unfinished last line is longer
    than ``max_line`` bytes :class:`LongLineError` is raised without reading the rest of it.
    Each block is a view of the buffer, valid until the next one is asked for: the unfinished
    line a block leaves is moved to the buffer's front and the file read in after it, so the
    bytes are copied once, by the kernel, into memory that stays mapped (a block gathered from
    chunks was copied twice, into fresh memory each time). Memory stays below
    ``BLOCK_SIZE + max_line``.
    """
    buffer = bytearray(BLOCK_SIZE)
    kept = 0  # at the buffer's front: the unfinished line the last block left
    first = skip_bom
    while True:
        if len(buffer) - kept < BLOCK_SIZE // 2:  # a long unfinished line: more room after it
            larger = bytearray(kept + BLOCK_SIZE)
            larger[:kept] = memoryview(buffer)[:kept]
            buffer = larger
        view = memoryview(buffer)
        got = stored.readinto(view[kept:])
        end = kept + got
        if first and (got == 0 or end >= len(UTF8_BOM)):
            first = False
            if buffer.startswith(UTF8_BOM) and end >= len(UTF8_BOM):
                buffer[: end - len(UTF8_BOM)] = view[len(UTF8_BOM) : end]
                end -= len(UTF8_BOM)
                kept = max(0, kept - len(UTF8_BOM))
        if got == 0:
            if end:
                yield view[:end]
            return
        cut = buffer.rfind(b"\n", kept, end) + 1
        if not cut:
            if end > max_line:
                raise LongLineError(
                    f"line is longer than the limit of {max_line} bytes", file=stored.name
                )
            kept = end
            continue
        yield view[:cut]
        kept = end - cut
        if kept > max_line:
            raise LongLineError(
                f"line is longer than the limit of {max_line} bytes", file=stored.name
            )
        buffer[:kept] = view[cut:end]  # the same length: moved, never resized


def _without_bom(chunks: Iterator[bytes]) -> Iterator[bytes]:
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(UTF8_BOM):
            break
    yield head.removeprefix(UTF8_BOM) if head else head
    yield from chunks
