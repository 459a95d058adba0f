"""The storage package's one error tree.

    StorageError
     ├── InvalidRequest       arguments that cannot name or describe a blob
     │    ├── InvalidDigest   not 64 lowercase hex characters (a SHA-256 digest)
     │    └── InvalidRange    a byte range that does not fit the blob (holds start, end, size)
     ├── BlobNotFound         no blob is stored under that digest
     ├── IntegrityError       bytes that do not match their digest: refused on put, found on read
     └── StorageUnavailable   the backend cannot be reached or failed transiently: retry later

No method of a store raises a bare ``ValueError``, ``OSError`` or a botocore exception: drivers
translate at their boundary. Only exceptions raised by the caller's own source of bytes pass
through ``put`` unchanged. The HTTP layer maps ``StorageUnavailable`` to 503 + ``Retry-After``.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error raised by the storage package."""


class InvalidRequest(StorageError):
    """Arguments that cannot name or describe a blob (a bad size, option or store URL)."""


class InvalidDigest(InvalidRequest):
    """A digest that is not 64 lowercase hexadecimal characters."""

    def __init__(self, digest: object) -> None:
        super().__init__(f"not a lowercase hex SHA-256 digest: {digest!r}")
        self.digest = digest


class InvalidRange(InvalidRequest):
    """A byte range ``[start, end)`` that does not fit a blob of ``size`` bytes."""

    def __init__(self, *, start: int, end: int, size: int) -> None:
        super().__init__(
            f"byte range [{start}, {end}) does not fit a blob of {size} bytes "
            "(need 0 <= start <= end <= size)"
        )
        self.start = start
        self.end = end
        self.size = size


class BlobNotFound(StorageError):
    """No blob is stored under ``digest``."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"no blob sha256:{digest}")
        self.digest = digest


class IntegrityError(StorageError):
    """Bytes that do not match the digest (and size) they are stored or offered under.

    ``expected_*`` is what the caller named; ``actual_*`` is what the bytes hash to. A size
    left ``None`` was not named or not measured (for example, when a put stopped early).
    """

    def __init__(
        self,
        message: str,
        *,
        expected_digest: str,
        actual_digest: str | None = None,
        expected_size: int | None = None,
        actual_size: int | None = None,
    ) -> None:
        super().__init__(message)
        self.expected_digest = expected_digest
        self.actual_digest = actual_digest
        self.expected_size = expected_size
        self.actual_size = actual_size


class StorageUnavailable(StorageError):
    """The backend cannot be reached or failed in a way that may pass: retry later."""
