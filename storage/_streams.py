"""Shared by the drivers: sources of bytes, running digests, ranges and the verified marks."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Protocol, TypeAlias, runtime_checkable

from storage.errors import IntegrityError, InvalidRange, InvalidRequest

CHUNK_SIZE = 1024 * 1024


@runtime_checkable
class Readable(Protocol):
    """Anything with a binary ``read(n)``: open files, ``BytesIO``, HTTP responses."""

    def read(self, size: int = ..., /) -> bytes: ...


Bytes: TypeAlias = bytes | bytearray | memoryview
Source: TypeAlias = Readable | Iterable[Bytes] | Bytes
"""What ``put`` accepts: a binary file-like object, an iterable of chunks, or bytes in hand."""


def chunks_of(source: Source, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The non-empty chunks of ``source``, at most ``chunk_size`` bytes each for a reader."""
    if isinstance(source, bytes | bytearray | memoryview):
        if source:
            yield bytes(source)
        return
    if isinstance(source, Readable):
        while piece := source.read(chunk_size):
            yield piece
        return
    if isinstance(source, str):
        raise InvalidRequest("a blob source must give bytes, not str")
    for chunk in source:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise InvalidRequest(f"a blob source gave {type(chunk).__name__}, not bytes")
        if chunk:
            yield bytes(chunk)


class Rechunker:
    """Re-slices a stream of chunks into pieces of exactly the size asked for."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()

    def read(self, size: int) -> bytes:
        """The next ``size`` bytes; fewer only at the end of the stream."""
        while len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        piece = bytes(self._buffer[:size])
        del self._buffer[:size]
        return piece

    def unread(self, piece: bytes) -> None:
        """Put ``piece`` back in front of the stream."""
        self._buffer[:0] = piece


class RunningDigest:
    """SHA-256 and length of the bytes seen so far, checked against what was named.

    With ``hashing=False`` it only counts: the digest is found by someone else and handed to
    :meth:`require_match`."""

    def __init__(
        self, expected_digest: str, expected_size: int | None = None, *, hashing: bool = True
    ) -> None:
        self.expected_digest = expected_digest
        self.expected_size = expected_size
        self.size = 0
        self._hash = hashlib.sha256() if hashing else None

    def update(self, chunk: bytes) -> None:
        """Count ``chunk``; refuse at once if it runs past the size that was named."""
        if self._hash is not None:
            self._hash.update(chunk)
        self.size += len(chunk)
        if self.expected_size is not None and self.size > self.expected_size:
            raise IntegrityError(
                f"sha256:{self.expected_digest} was named with {self.expected_size} bytes, "
                f"but the source gave more than that",
                expected_digest=self.expected_digest,
                expected_size=self.expected_size,
            )

    def hexdigest(self) -> str:
        if self._hash is None:
            raise InvalidRequest("this running digest only counts bytes")
        return self._hash.hexdigest()

    def require_match(self, what: str, *, found: str | None = None) -> None:
        """``IntegrityError`` unless the bytes seen hash to the expected digest (and size);
        ``found`` is their digest when it was computed elsewhere."""
        actual = found if found is not None else self.hexdigest()
        size_ok = self.expected_size is None or self.size == self.expected_size
        if actual == self.expected_digest and size_ok:
            return
        named = "" if self.expected_size is None else f" ({self.expected_size} bytes)"
        raise IntegrityError(
            f"{what}: expected sha256:{self.expected_digest}{named}, "
            f"found sha256:{actual} ({self.size} bytes)",
            expected_digest=self.expected_digest,
            actual_digest=actual,
            expected_size=self.expected_size,
            actual_size=self.size,
        )


def require_stored_size(digest: str, *, expected: int | None, stored: int) -> None:
    """``IntegrityError`` if a put named a size other than that of the blob already stored."""
    if expected is not None and expected != stored:
        raise IntegrityError(
            f"sha256:{digest} is stored with {stored} bytes, not the {expected} named",
            expected_digest=digest,
            actual_digest=digest,
            expected_size=expected,
            actual_size=stored,
        )


def check_size(size: int | None) -> None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise InvalidRequest(f"a blob size must be a non-negative integer, not {size!r}")


def check_range(start: int, end: int, size: int) -> None:
    """``InvalidRange`` unless ``0 <= start <= end <= size`` (``end`` is exclusive)."""
    for bound in (start, end):
        if isinstance(bound, bool) or not isinstance(bound, int):
            raise InvalidRequest(f"range bounds must be integers, not {bound!r}")
    if not 0 <= start <= end <= size:
        raise InvalidRange(start=start, end=end, size=size)


def verifying(
    chunks: Iterable[bytes], *, digest: str, on_verified: Callable[[], None] | None = None
) -> Iterator[bytes]:
    """Pass ``chunks`` through; after the last, raise ``IntegrityError`` if they do not hash to
    ``digest`` (so a consumer holds nothing it may trust until the iteration ends cleanly)."""
    running = RunningDigest(digest)
    for chunk in chunks:
        running.update(chunk)
        yield chunk
    running.require_match("stored blob is corrupt")
    if on_verified is not None:
        on_verified()


def exact_length(chunks: Iterable[bytes], *, length: int, digest: str) -> Iterator[bytes]:
    """Pass ``chunks`` through, refusing a stream that ends short of or runs past ``length``."""
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen > length:
            break
        yield chunk
    if seen != length:
        raise IntegrityError(
            f"stored blob sha256:{digest} changed size while a range of {length} bytes was read",
            expected_digest=digest,
        )


class VerifiedMarks:
    """Which blobs this process has verified in full, and what they looked like then.

    A mark maps a digest to a fingerprint of the stored object (a file's inode, size and
    times; an S3 ETag and size). A ranged read trusts a blob whose fingerprint still matches
    and verifies it whole again otherwise. Bounded: the least recently used marks go first.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._marks: OrderedDict[str, Hashable] = OrderedDict()
        self._lock = threading.Lock()

    def mark(self, digest: str, fingerprint: Hashable) -> None:
        with self._lock:
            self._marks[digest] = fingerprint
            self._marks.move_to_end(digest)
            while len(self._marks) > self._capacity:
                self._marks.popitem(last=False)

    def get(self, digest: str) -> Hashable | None:
        with self._lock:
            fingerprint = self._marks.get(digest)
            if fingerprint is not None:
                self._marks.move_to_end(digest)
            return fingerprint

    def forget(self, digest: str) -> None:
        with self._lock:
            self._marks.pop(digest, None)
