"""Members, their keys and their API tokens.

Membership lives on the ledger (``member.registered``, ``member.key.added``,
``member.key.revoked``) so that an outside auditor can check every signature with keys the log
itself recorded; these tables are the exchange's index of that record, written in the same
transaction. Tokens are off-ledger credentials, stored as SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from exchange.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from exchange.models import ApiToken, Member, MemberKey
from exchange.settlement import open_account
from exchange.statements import StatementPolicy, check_statement, record_statement
from ledger.audit import OPERATOR, MemberRegistration
from ledger.entry import Entry, SignedStatement
from ledger.errors import FormatError, VerificationError
from ledger.sql import SqlLedger

TOKEN_PREFIX = "cx_"  # noqa: S105 (a prefix, not a secret)


@dataclass(frozen=True)
class Registered:
    member: Member
    token: str
    entry: Entry


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, member_id: str, *, label: str = "") -> tuple[ApiToken, str]:
    """A new 256-bit bearer token; only its digest is stored, the token is shown once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        id=secrets.token_hex(8),
        member_id=member_id,
        token_hash=hash_token(token),
        label=label,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    return row, token


def authenticate(session: Session, token: str) -> Member:
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("the API token is unknown or revoked")
    member = session.get(Member, row.member_id)
    if member is None:  # pragma: no cover - the foreign key makes this impossible
        raise Unauthenticated("the API token's member no longer exists")
    return member


def revoke_token(session: Session, token_id: str, *, caller: Member) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None or (row.member_id != caller.id and OPERATOR not in caller.role_set):
        raise NotFound(f"no token {token_id} of yours")
    row.revoked_at = row.revoked_at or datetime.now(UTC)
    session.add(row)
    return row


def list_tokens(session: Session, member_id: str) -> list[ApiToken]:
    return list(
        session.exec(
            select(ApiToken)
            .where(ApiToken.member_id == member_id)
            .order_by(col(ApiToken.created_at))
        )
    )


def _registration(signed: SignedStatement) -> MemberRegistration:
    try:
        registration = MemberRegistration.from_body(signed.statement.body, with_roles=True)
    except FormatError as exc:
        raise InvalidInput(f"member.registered body: {exc}") from None
    display_name = signed.statement.body.get("name", registration.member)
    if not isinstance(display_name, str) or not 0 < len(display_name) <= 200:
        raise InvalidInput("member.registered body: name must be a string of 1-200 characters")
    return registration


def _add_member(session: Session, registration: MemberRegistration, name: str, seq: int) -> Member:
    now = datetime.now(UTC)
    member = Member(
        id=registration.member,
        display_name=name,
        roles=",".join(sorted(registration.roles)),
        registered_seq=seq,
        created_at=now,
    )
    session.add(member)
    try:
        session.flush()  # the member row must exist before rows that refer to it
        open_account(session, member.id)
        session.add(
            MemberKey(
                key_id=registration.key_id,
                member_id=registration.member,
                public_key=registration.public_key,
                added_seq=seq,
                added_at=now,
            )
        )
        session.flush()
    except IntegrityError:  # a concurrent registration took the id or the key first
        raise Conflict(
            f"member {registration.member} or key {registration.key_id} is already registered"
        ) from None
    return member


def bootstrap_operator(session: Session, signed: SignedStatement, *, origin: str) -> Registered:
    """The genesis entry: the first operator registers itself (only on an empty ledger)."""
    if SqlLedger(session).head().size != 0:
        raise Conflict("the ledger is not empty: the first operator already exists")
    statement = signed.statement
    if statement.type != "member.registered" or statement.log != origin:
        raise InvalidInput(f"the first entry must be a member.registered statement for {origin}")
    registration = _registration(signed)
    if registration.member != statement.member or registration.key_id != statement.key_id:
        raise InvalidInput("the first operator must register itself with its own key")
    if OPERATOR not in registration.roles:
        raise InvalidInput("the first member must have the operator role")
    try:
        signed.verify(registration.public_key)
    except VerificationError:
        raise InvalidInput("the first operator's statement is not signed by its own key") from None
    entry = record_statement(session, signed)
    name = str(statement.body.get("name", registration.member))
    member = _add_member(session, registration, name, entry.seq)
    _, token = issue_token(session, member.id, label="init")
    return Registered(member, token, entry)


def register_member(
    session: Session, signed: SignedStatement, *, caller: Member, policy: StatementPolicy
) -> Registered:
    """An operator admits a member; the new member's token is returned once."""
    if OPERATOR not in caller.role_set:
        raise Forbidden("only an operator may register members")
    check_statement(
        session,
        signed,
        caller=caller,
        expected_type="member.registered",
        policy=policy,
    )
    registration = _registration(signed)
    if session.get(Member, registration.member) is not None:
        raise Conflict(f"member {registration.member} already exists")
    _refuse_taken_key(session, registration.key_id, policy)
    entry = record_statement(session, signed)
    name = str(signed.statement.body.get("name", registration.member))
    member = _add_member(session, registration, name, entry.seq)
    _, token = issue_token(session, member.id, label="registration")
    return Registered(member, token, entry)


def _refuse_taken_key(session: Session, key_id: str, policy: StatementPolicy) -> None:
    """A key belongs to one member, ever; the log's own key belongs to the exchange."""
    if key_id == policy.log_key_id or session.get(MemberKey, key_id) is not None:
        raise Conflict(f"key {key_id} is already registered")


def _target_member(
    session: Session, signed: SignedStatement, caller: Member, *, operators_too: bool
) -> Member:
    """The member whose keys change: the caller itself, or (to revoke) anyone for an operator.

    Nobody adds a key to another member: not even an operator can make itself able to sign
    as someone else.
    """
    target_id = signed.statement.body.get("member")
    target = session.get(Member, target_id) if isinstance(target_id, str) else None
    if target is None:
        raise NotFound(f"no member {target_id!r}")
    may_act_for_others = operators_too and OPERATOR in caller.role_set
    if target.id != caller.id and not may_act_for_others:
        raise Forbidden(f"{caller.id} may not change the keys of {target.id}")
    return target


def add_key(
    session: Session, signed: SignedStatement, *, caller: Member, policy: StatementPolicy
) -> Entry:
    """Key rotation: a new key is added; old keys stay valid until revoked (history is kept)."""
    check_statement(
        session,
        signed,
        caller=caller,
        expected_type="member.key.added",
        policy=policy,
    )
    target = _target_member(session, signed, caller, operators_too=False)
    try:
        added = MemberRegistration.from_body(signed.statement.body, with_roles=False)
    except FormatError as exc:
        raise InvalidInput(f"member.key.added body: {exc}") from None
    _refuse_taken_key(session, added.key_id, policy)
    entry = record_statement(session, signed)
    session.add(
        MemberKey(
            key_id=added.key_id,
            member_id=target.id,
            public_key=added.public_key,
            added_seq=entry.seq,
            added_at=datetime.now(UTC),
        )
    )
    try:
        session.flush()
    except IntegrityError:  # a concurrent registration took the key first
        raise Conflict(f"key {added.key_id} is already registered") from None
    return entry


def revoke_key(
    session: Session, signed: SignedStatement, *, caller: Member, policy: StatementPolicy
) -> Entry:
    check_statement(
        session,
        signed,
        caller=caller,
        expected_type="member.key.revoked",
        policy=policy,
    )
    target = _target_member(session, signed, caller, operators_too=True)
    key = session.get(MemberKey, signed.statement.body.get("key_id"))
    if key is None or key.member_id != target.id:
        raise NotFound(f"{target.id} has no key {signed.statement.body.get('key_id')!r}")
    if key.revoked_at is not None:
        raise Conflict(f"key {key.key_id} is already revoked")
    entry = record_statement(session, signed)
    key.revoked_seq, key.revoked_at = entry.seq, datetime.now(UTC)
    session.add(key)
    return entry


def get_member(session: Session, member_id: str) -> Member:
    member = session.get(Member, member_id)
    if member is None:
        raise NotFound(f"no member {member_id!r}")
    return member


def member_keys(session: Session, member_id: str) -> list[MemberKey]:
    return list(
        session.exec(
            select(MemberKey)
            .where(MemberKey.member_id == member_id)
            .order_by(col(MemberKey.added_seq))
        )
    )


def list_members(session: Session) -> list[Member]:
    return list(session.exec(select(Member).order_by(col(Member.registered_seq))))
