"""Client-side signing of statements: the private key is used here and goes nowhere else."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.keys import key_id
from ledger.entry import SignedStatement, Statement, format_time, sign_statement


def new_statement(
    entry_type: str,
    body: dict[str, Any],
    *,
    member: str,
    key: Ed25519PrivateKey,
    log: str,
    now: datetime | None = None,
) -> SignedStatement:
    """A fresh statement (random nonce, current time) for the log ``log``, signed by ``key``."""
    statement = Statement(
        type=entry_type,
        body=body,
        member=member,
        key_id=key_id(key),
        nonce=secrets.token_urlsafe(18),
        time=format_time(now or datetime.now(UTC)),
        log=log,
    )
    return sign_statement(statement, key)
