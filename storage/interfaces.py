"""What a blob store offers, as small Protocols, and the values it hands back.

Callers depend on the narrowest Protocol they need: delivery code on ``ReadsBlobs``, ingestion
on ``WritesBlobs``, garbage reports on ``SweepsBlobs``. ``BlobStore`` is all three; the local
and S3 drivers implement it. The errors are drawn in ``storage.errors``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from storage._streams import Source


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its lowercase hex SHA-256 and its length in bytes."""

    digest: str
    size: int


class BlobReader(Iterator[bytes]):
    """The bytes of a blob, or of ``[start, end)`` of it, as an iterator of chunks.

    A reader from ``open`` hashes as it streams and raises ``IntegrityError`` *after the last
    chunk* if the bytes do not match the digest: trust the data only once iteration has ended
    without an error. A reader from ``read_range`` serves a blob already verified whole (see
    docs/storage.md). Close it, or use it as a context manager, to release the file or
    connection early; it closes itself when exhausted or when it fails.
    """

    def __init__(
        self,
        info: BlobInfo,
        chunks: Iterator[bytes],
        *,
        start: int = 0,
        end: int | None = None,
        close: Callable[[], None] | None = None,
    ) -> None:
        self.info = info
        self.start = start
        self.end = info.size if end is None else end
        self._chunks = chunks
        self._close = close
        self._closed = False

    @property
    def length(self) -> int:
        """How many bytes this reader yields: the blob's size, or the range's length."""
        return self.end - self.start

    def __iter__(self) -> BlobReader:
        return self

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def read_all(self) -> bytes:
        """Every remaining byte at once: for small blobs and tests only."""
        return b"".join(self)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close_chunks = getattr(self._chunks, "close", None)
            if close_chunks is not None:
                close_chunks()
        finally:
            if self._close is not None:
                self._close()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class ReadsBlobs(Protocol):
    """Reading blobs by digest."""

    def open(self, digest: str) -> BlobReader:
        """The whole blob, verified against its digest as it streams (``BlobNotFound``)."""
        ...

    def read_range(self, digest: str, start: int, end: int) -> BlobReader:
        """Bytes ``[start, end)`` of a blob verified whole; ``InvalidRange`` if they don't fit."""
        ...

    def stat(self, digest: str) -> BlobInfo:
        """Digest and size of a stored blob (``BlobNotFound``)."""
        ...

    def exists(self, digest: str) -> bool: ...

    def fingerprint(self, digest: str) -> str:
        """A token that changes whenever the stored object is replaced or written to
        (``BlobNotFound``): a caller that derived something from the bytes can tell later,
        without reading them, whether they may have changed since."""
        ...

    def presigned_url(self, digest: str, *, expires_in: int) -> str | None:
        """A URL that fetches the blob directly for ``expires_in`` seconds, or ``None`` if
        this store cannot make one (the caller then streams ``open``)."""
        ...


class WritesBlobs(Protocol):
    """Storing blobs under the digest their bytes must have."""

    def put(self, digest: str, source: Source, *, size: int | None = None) -> BlobInfo:
        """Stream ``source`` into the store under ``digest``.

        Refuses with ``IntegrityError``, leaving nothing behind, if the bytes do not hash to
        ``digest`` or their length is not ``size``. A blob already stored is not written again
        and ``source`` is not read; to avoid opening a source at all, ask ``exists`` first.
        """
        ...


class SweepsBlobs(Protocol):
    """Finding and removing blobs nothing refers to, and the debris of interrupted puts."""

    def iter_digests(self) -> Iterator[str]:
        """Every stored digest, in ascending order."""
        ...

    def delete(self, digest: str) -> None:
        """Remove a blob; removing one that is not there is not an error."""
        ...

    def remove_incomplete(self, *, older_than: float) -> int:
        """Remove what puts that died (a killed process) left behind more than
        ``older_than`` seconds ago; return how many pieces were removed."""
        ...


class BlobStore(ReadsBlobs, WritesBlobs, SweepsBlobs, Protocol):
    """A content-addressed blob store."""
