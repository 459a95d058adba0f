"""The log's signing key: a Go sumdb/note "skey" file, readable by the server's user only."""

from __future__ import annotations

import os
from pathlib import Path

from ledger.errors import LedgerError
from ledger.note import Ed25519Signer


class LogKeyError(Exception):
    """The log key file is missing, unreadable, malformed or for another origin."""


def create_log_key(path: Path, origin: str) -> Ed25519Signer:
    if path.exists():
        raise LogKeyError(f"{path} already exists; refusing to replace the log's signing key")
    path.parent.mkdir(parents=True, exist_ok=True)
    signer = Ed25519Signer.generate(origin)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(signer.skey + "\n")
    return signer


def load_log_key(path: Path, origin: str) -> Ed25519Signer:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise LogKeyError(
            f"cannot read the log key {path}: {exc.strerror} (run `corpusx init` first)"
        ) from None
    try:
        signer = Ed25519Signer.from_skey(text)
    except LedgerError as exc:
        raise LogKeyError(f"{path} is not a log signing key: {exc}") from None
    if signer.name != origin:
        raise LogKeyError(
            f"the log key {path} is for origin {signer.name!r}, settings say {origin!r}"
        )
    return signer
