"""Content-addressed blob stores: a local directory (the default) or an S3 bucket.

    store = open_store("file:///srv/corpusx/blobs")     # or "s3://bucket/prefix", options
    store.put(digest, stream, size=n)                   # refuses bytes that don't match
    with store.open(digest) as reader:                  # verified as it streams
        for chunk in reader: ...

See docs/storage.md for the key layout and the integrity guarantees, and ``storage.errors``
for the error tree. ``S3Store`` (and with it boto3, which loads slowly) is imported on first use.
"""

import importlib
from typing import TYPE_CHECKING, Any

from storage._streams import Readable, Source
from storage.digests import blob_key, digest_from_key, validate_digest
from storage.errors import (
    BlobNotFound,
    IntegrityError,
    InvalidDigest,
    InvalidRange,
    InvalidRequest,
    StorageError,
    StorageUnavailable,
)
from storage.factory import open_store
from storage.interfaces import (
    BlobInfo,
    BlobReader,
    BlobStore,
    ReadsBlobs,
    SweepsBlobs,
    WritesBlobs,
)
from storage.local import LocalStore

if TYPE_CHECKING:
    from storage.s3 import S3Store


def __getattr__(name: str) -> Any:
    if name != "S3Store":
        raise AttributeError(f"module 'storage' has no attribute {name!r}")
    value = importlib.import_module("storage.s3").S3Store
    globals()[name] = value
    return value


__all__ = [
    "BlobInfo",
    "BlobNotFound",
    "BlobReader",
    "BlobStore",
    "IntegrityError",
    "InvalidDigest",
    "InvalidRange",
    "InvalidRequest",
    "LocalStore",
    "Readable",
    "ReadsBlobs",
    "S3Store",
    "Source",
    "StorageError",
    "StorageUnavailable",
    "SweepsBlobs",
    "WritesBlobs",
    "blob_key",
    "digest_from_key",
    "open_store",
    "validate_digest",
]
