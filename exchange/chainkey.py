"""The anchoring account's private key: the operator's, in a file only its owner can read.

The file holds the secp256k1 private key as 64 hex digits (``0x`` optional), one line: the form
``cast wallet new`` and most wallets export. The key is read into memory and handed to the chain
driver; no message, log line or ``repr`` of ours ever contains it.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path

_KEY = re.compile(r"^(?:0x)?([0-9a-fA-F]{64})$")
_SECP256K1_ORDER = int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)


class ChainKeyError(Exception):
    """The key file is missing, readable by others, or not a private key."""


def load_chain_key(path: Path) -> bytes:
    """The 32-byte key in ``path``; refuses a file that group or others may read or write."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not a text file"
        raise ChainKeyError(f"cannot read the chain key {path}: {reason}") from None
    if mode & 0o077:
        raise ChainKeyError(
            f"the chain key {path} is open to other users (mode {mode:04o}): chmod 600 {path}"
        )
    match = _KEY.fullmatch(text)
    key = bytes.fromhex(match.group(1)) if match else b""
    if not _is_private_key(key):
        raise ChainKeyError(f"{path} does not hold a private key (64 hex digits)")
    return key


def _is_private_key(key: bytes) -> bool:
    return len(key) == 32 and 0 < int.from_bytes(key, "big") < _SECP256K1_ORDER


def write_chain_key(path: Path, key: bytes | None = None) -> bytes:
    """Create ``path`` (mode 0600, never overwriting) with ``key`` or a new random key."""
    key = key if key is not None else secrets.token_bytes(32)
    if not _is_private_key(key):  # a random key fails with probability below 2^-127
        raise ChainKeyError("not a secp256k1 private key")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ChainKeyError(f"{path} already exists; refusing to replace a private key") from None
    with os.fdopen(fd, "w") as handle:
        handle.write("0x" + key.hex() + "\n")
    return key
