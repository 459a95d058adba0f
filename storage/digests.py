"""Digests name blobs: lowercase hex SHA-256, and the object key each one is stored under.

A blob with digest ``abcd…`` lives at ``sha256/ab/cd/abcd…`` below a store's root or prefix.
Two levels of fan-out keep directories small (65,536 leaves) on a local filesystem.
"""

from __future__ import annotations

import re

from storage.errors import InvalidDigest

ALGORITHM = "sha256"
_DIGEST = re.compile(r"[0-9a-f]{64}")


def validate_digest(digest: object) -> str:
    """``digest`` itself if it is 64 lowercase hex characters, else ``InvalidDigest``."""
    if not isinstance(digest, str) or _DIGEST.fullmatch(digest) is None:
        raise InvalidDigest(digest)
    return digest


def blob_key(digest: str) -> str:
    """The key of a blob relative to its store's root: ``sha256/ab/cd/<digest>``."""
    digest = validate_digest(digest)
    return f"{ALGORITHM}/{digest[:2]}/{digest[2:4]}/{digest}"


def digest_from_key(key: str) -> str | None:
    """The digest a well-formed key names, or ``None`` for any other key."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != ALGORITHM:
        return None
    digest = parts[3]
    if _DIGEST.fullmatch(digest) is None or parts[1:3] != [digest[:2], digest[2:4]]:
        return None
    return digest
