"""Accepting a member's signed statement onto the ledger.

The token says who is calling; the signature says what they said. Both must name the same
member, the key must be one of that member's live keys, the time must be within the window and
the nonce fresh. The entry is appended in the caller's transaction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from exchange.errors import Conflict, Forbidden, InvalidInput
from exchange.models import Member, MemberKey
from ledger.entry import (
    EXCHANGE,
    Entry,
    SignedStatement,
    Statement,
    format_time,
    key_id_for,
    parse_time,
    signer_roles,
)
from ledger.errors import FormatError, VerificationError
from ledger.note import Ed25519Signer
from ledger.sql import ReplayError, SqlLedger


@dataclass(frozen=True)
class StatementPolicy:
    """What every statement must satisfy here: addressed to this log, within the clock window."""

    origin: str
    window_seconds: int
    log_key_id: str  # the exchange's own key: no member may register it


def parse_signed_statement(value: object) -> SignedStatement:
    try:
        return SignedStatement.from_json(value)
    except FormatError as exc:
        raise InvalidInput(f"signed statement: {exc}") from None


def check_statement(
    session: Session,
    signed: SignedStatement,
    *,
    caller: Member,
    expected_type: str,
    policy: StatementPolicy,
    now: datetime | None = None,
) -> MemberKey:
    """Raise unless ``caller`` validly signed a statement of ``expected_type``; return the key."""
    statement = signed.statement
    if statement.type != expected_type:
        raise InvalidInput(f"this route records {expected_type}, not {statement.type}")
    if statement.log != policy.origin:
        raise Forbidden(
            f"the statement is addressed to the log {statement.log!r}, this is {policy.origin!r}"
        )
    if statement.member != caller.id:
        raise Forbidden(f"the statement is by {statement.member}, but the token is {caller.id}'s")
    allowed = signer_roles(statement.type)
    if not caller.role_set & allowed:
        raise Forbidden(
            f"{caller.id} may not sign {statement.type}: it needs a role of "
            f"{', '.join(sorted(allowed))}"
        )
    moment = now or datetime.now(UTC)
    skew = abs((parse_time(statement.time) - moment).total_seconds())
    if skew > policy.window_seconds:
        raise Forbidden(
            f"statement time {statement.time} is {skew:.0f}s from the server's clock "
            f"(the window is {policy.window_seconds}s): check the client's clock"
        )
    key = session.get(MemberKey, statement.key_id)
    if key is None or key.member_id != caller.id:
        raise Forbidden(f"key {statement.key_id} is not a key of {caller.id}")
    if key.revoked_at is not None:
        raise Forbidden(f"key {statement.key_id} of {caller.id} was revoked")
    try:
        signed.verify(key.public_key)
    except VerificationError:
        raise Forbidden(f"the signature does not verify with key {key.key_id}") from None
    return key


def exchange_statement(
    log_signer: Ed25519Signer, entry_type: str, body: dict[str, Any]
) -> SignedStatement:
    """A statement the exchange itself makes, as the reserved member ``exchange``, signed with
    the log key (auditors know that key from the vkey; the table of types limits what it signs).
    """
    statement = Statement(
        type=entry_type,
        body=body,
        member=EXCHANGE,
        key_id=key_id_for(log_signer.verifier.public_key),
        nonce=secrets.token_urlsafe(18),
        time=format_time(datetime.now(UTC)),
        log=log_signer.name,
    )
    return SignedStatement(statement, log_signer.sign_bytes(statement.signing_bytes()))


def record_statement(session: Session, signed: SignedStatement) -> Entry:
    """Append an already-checked statement; a replayed nonce is a conflict."""
    try:
        return SqlLedger(session).append(signed)
    except ReplayError as exc:
        raise Conflict(str(exc)) from None
