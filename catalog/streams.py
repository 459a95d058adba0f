"""Reading a stored file exactly once: hashing, decompressing, cutting into line blocks.

A :class:`StoredFile` is the only way ingestion touches a file. It hashes every stored byte as it
passes (the blob digest is over the stored, possibly compressed, bytes), counts them for progress,
and checks that the file is the same one, unchanged, from opening to the last byte. Decompression
and line splitting are streaming with bounded memory: no block is held beyond what one record
needs, and a record longer than the limit is refused before it is read whole.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, cast

import zstandard

from catalog.errors import FileChangedError, IngestError

__all__ = [
    "BLOCK_SIZE",
    "CHUNK_SIZE",
    "FileStat",
    "LineBlock",
    "StoredFile",
    "check_lines",
    "decompressed_chunks",
    "line_blocks",
]

CHUNK_SIZE = 1 << 20
"""Bytes read from disk (and produced by a decompressor) per step."""

BLOCK_SIZE = 8 << 20
"""Target size of a line block handed to a parser: large enough to amortise per-call costs."""

UTF8_BOM = b"\xef\xbb\xbf"

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
    """

    def __init__(
        self,
        path: Path,
        *,
        name: str,
        expected: FileStat | None = None,
        progress: ProgressHook | None = None,
    ) -> None:
        self.name = name
        try:
            # O_NOFOLLOW would refuse the symlinks that scan() has already vetted; instead the
            # file's identity is checked against the stat taken at scan time.
            self.file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise IngestError(f"cannot open: {exc.strerror or exc}", file=name) from None
        try:
            self.opened = FileStat.of(os.fstat(self.file.fileno()))
            if not stat.S_ISREG(os.fstat(self.file.fileno()).st_mode):
                raise IngestError("not a regular file", file=name)
            if expected is not None and expected != self.opened:
                raise FileChangedError(
                    "changed since it was scanned ("
                    + ", ".join(expected.differences(self.opened))
                    + ")",
                    file=name,
                )
        except BaseException:
            self.file.close()
            raise
        self._sha256 = hashlib.sha256()
        self._hashed = 0
        self._progress = progress

    @property
    def size(self) -> int:
        """The size when opened; :meth:`finish` refuses the file if it is no longer that."""
        return self.opened.size

    def _account(self, data: bytes) -> None:
        self._sha256.update(data)
        self._hashed += len(data)
        if self._progress is not None:
            self._progress(len(data))

    def read(self, size: int = CHUNK_SIZE) -> bytes:
        """The next stored bytes, hashed on the way (the sequential formats' only reader)."""
        try:
            data = self.file.read(size)
        except OSError as exc:
            raise IngestError(f"read failed: {exc.strerror or exc}", file=self.name) from None
        if data:
            self._account(data)
        return data or b""

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

    Output is bounded per step whatever the compression ratio, so a small file that expands to
    terabytes costs time, never memory.
    """
    if compression is None:
        while chunk := stored.read():
            yield chunk
    elif compression == "gzip":
        yield from _gunzip(stored)
    elif compression == "zstd":
        yield from _unzstd(stored)
    else:
        raise IngestError(f"unknown compression {compression!r}", file=stored.name)


_GZIP_MAGIC = b"\x1f\x8b"


def _gunzip(stored: StoredFile) -> Iterator[bytes]:
    """gzip, including concatenated members (as ``gzip -c a b`` writes); nothing may trail."""
    decoder = zlib.decompressobj(wbits=31)
    members = 0
    started = eof = False
    pending = b""
    while True:
        if not pending and not eof:
            pending = stored.read()
            eof = not pending
        if eof and not started:
            break
        if pending and not started:
            if not pending.startswith(_GZIP_MAGIC[: len(pending)]):
                reason = "bytes after the end of the gzip stream" if members else "not gzip"
                raise IngestError(reason, file=stored.name)
            started = True
        try:
            out = decoder.decompress(pending, CHUNK_SIZE)
        except zlib.error as exc:
            raise IngestError(f"corrupt gzip stream: {exc}", file=stored.name) from None
        if out:
            yield out
        if decoder.eof:
            pending = decoder.unused_data
            decoder = zlib.decompressobj(wbits=31)
            members += 1
            started = False
            continue
        pending = decoder.unconsumed_tail
        if eof and not pending and not out:
            raise IngestError("truncated gzip stream", file=stored.name)
    if not members:
        raise IngestError("empty file is not a gzip stream", file=stored.name)


def _unzstd(stored: StoredFile) -> Iterator[bytes]:
    """zstd, across concatenated frames; trailing bytes that are not a frame are refused."""
    if stored.size == 0:
        raise IngestError("empty file is not a zstd stream", file=stored.name)
    # The reader only ever calls read(); StoredFile hashes what it hands over.
    source = cast(IO[bytes], stored)
    reader = zstandard.ZstdDecompressor().stream_reader(
        source, read_size=CHUNK_SIZE, read_across_frames=True, closefd=False
    )
    try:
        while chunk := reader.read(CHUNK_SIZE):
            yield chunk
    except zstandard.ZstdError as exc:
        raise IngestError(f"corrupt zstd stream: {exc}", file=stored.name) from None
    if stored.read():
        raise IngestError("bytes after the end of the zstd stream", file=stored.name)


@dataclass(frozen=True, slots=True)
class LineBlock:
    """Whole lines of a file: ``data`` ends with LF unless it holds the file's last line."""

    data: bytes
    first_line: int  # 1-based number of the block's first line


def line_blocks(
    chunks: Iterator[bytes], *, name: str, max_line: int, skip_bom: bool = True
) -> Iterator[LineBlock]:
    """Regroup decompressed chunks into blocks of whole lines (about BLOCK_SIZE each).

    A UTF-8 byte order mark at the very start is dropped. Memory stays below
    ``max(BLOCK_SIZE, max_line) + CHUNK_SIZE``: once the unfinished last line is longer than
    ``max_line`` bytes, the complete lines before it are handed over and the line is refused
    without reading the rest of it. Lines inside a block are checked by :func:`check_lines`.
    """
    buffer = bytearray()
    line = 1
    at_start = skip_bom
    for chunk in chunks:
        buffer += chunk
        if at_start:
            if len(buffer) < len(UTF8_BOM) and UTF8_BOM.startswith(buffer):
                continue
            if buffer.startswith(UTF8_BOM):
                del buffer[: len(UTF8_BOM)]
            at_start = False
        if len(buffer) >= BLOCK_SIZE and (cut := buffer.rfind(b"\n") + 1):
            block = bytes(buffer[:cut])
            del buffer[:cut]
            yield LineBlock(block, line)
            line += block.count(b"\n")
        if len(buffer) > max_line:
            cut = buffer.rfind(b"\n") + 1
            if len(buffer) - cut > max_line:
                if cut:
                    block = bytes(buffer[:cut])
                    yield LineBlock(block, line)
                    line += block.count(b"\n")
                raise _long_line(name, line, max_line)
    if at_start and buffer.startswith(UTF8_BOM):
        del buffer[: len(UTF8_BOM)]
    if buffer:
        yield LineBlock(bytes(buffer), line)


def check_lines(block: LineBlock, *, name: str, max_line: int) -> None:
    """Refuse the first line of ``block`` longer than ``max_line`` bytes (LF excluded)."""
    if len(block.data) <= max_line:
        return
    for offset, text in enumerate(block.data.split(b"\n")):
        if len(text) > max_line:
            raise _long_line(name, block.first_line + offset, max_line)


def _long_line(name: str, line: int, max_line: int) -> IngestError:
    return IngestError(f"line is longer than the limit of {max_line} bytes", file=name, line=line)
