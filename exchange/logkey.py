"""The log's signing key: a Go sumdb/note "skey" file, readable by the server's user only."""

from __future__ import annotations

import os
import secrets
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


def new_origin() -> str:
    """A log origin unique to this exchange, so statements for one log never fit another."""
    return f"corpusx.local/{secrets.token_hex(6)}"


def load_log_key(path: Path, origin: str | None = None) -> Ed25519Signer:
    """The log key; its name is the log's origin (``origin``, if given, must agree)."""
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
    if origin is not None and signer.name != origin:
        raise LogKeyError(
            f"the log key {path} is for origin {signer.name!r}, settings say {origin!r}"
        )
    return signer
