"""Member, key and token routes."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import Session

from exchange import members as service
from exchange.api.deps import CurrentMember, ExchangeDep
from exchange.api.schemas import (
    EntryRecorded,
    KeyPublic,
    MemberPublic,
    MemberRegistered,
    SignedStatementIn,
    TokenIssued,
    TokenPublic,
    TokenRequest,
)
from exchange.errors import InvalidInput
from exchange.models import Member
from exchange.statements import parse_signed_statement
from ledger.entry import Entry, b64encode

router = APIRouter(tags=["members"])


def member_public(session: Session, member: Member) -> MemberPublic:
    return MemberPublic(
        id=member.id,
        name=member.display_name,
        roles=sorted(member.role_set),
        registered_seq=member.registered_seq,
        keys=[
            KeyPublic(
                key_id=key.key_id,
                public_key=b64encode(key.public_key),
                added_seq=key.added_seq,
                revoked_seq=key.revoked_seq,
            )
            for key in service.member_keys(session, member.id)
        ],
    )


def recorded(entry: Entry) -> EntryRecorded:
    return EntryRecorded(seq=entry.seq, leaf_hash=entry.leaf_hash().hex(), time=entry.time)


@router.post("/members", status_code=status.HTTP_201_CREATED, response_model=MemberRegistered)
def register_member(
    body: SignedStatementIn, caller: CurrentMember, exchange: ExchangeDep
) -> MemberRegistered:
    """An operator registers a member (signed ``member.registered``); the token is shown once."""
    signed = parse_signed_statement(body.model_dump())
    with exchange.transaction() as session:
        done = service.register_member(
            session, signed, caller=caller, policy=exchange.statement_policy
        )
        public = member_public(session, done.member)
    return MemberRegistered(member=public, token=done.token, seq=done.entry.seq)


@router.get("/members", response_model=list[MemberPublic])
def list_members(caller: CurrentMember, exchange: ExchangeDep) -> list[MemberPublic]:
    with exchange.transaction() as session:
        return [member_public(session, m) for m in service.list_members(session)]


@router.get("/members/{member_id}", response_model=MemberPublic)
def show_member(member_id: str, caller: CurrentMember, exchange: ExchangeDep) -> MemberPublic:
    with exchange.transaction() as session:
        return member_public(session, service.get_member(session, member_id))


@router.get("/me", response_model=MemberPublic)
def me(caller: CurrentMember, exchange: ExchangeDep) -> MemberPublic:
    with exchange.transaction() as session:
        return member_public(session, caller)


def _for_member(member_id: str, body: SignedStatementIn) -> None:
    if body.statement.body.get("member") != member_id:
        raise InvalidInput(
            f"the statement body names {body.statement.body.get('member')!r}, the URL {member_id!r}"
        )


@router.post(
    "/members/{member_id}/keys", status_code=status.HTTP_201_CREATED, response_model=EntryRecorded
)
def add_key(
    member_id: str, body: SignedStatementIn, caller: CurrentMember, exchange: ExchangeDep
) -> EntryRecorded:
    """Add a key (signed ``member.key.added``); earlier keys stay valid until revoked."""
    _for_member(member_id, body)
    signed = parse_signed_statement(body.model_dump())
    with exchange.transaction() as session:
        entry = service.add_key(session, signed, caller=caller, policy=exchange.statement_policy)
    return recorded(entry)


@router.post("/members/{member_id}/keys/revoke", response_model=EntryRecorded)
def revoke_key(
    member_id: str, body: SignedStatementIn, caller: CurrentMember, exchange: ExchangeDep
) -> EntryRecorded:
    """Revoke a key (signed ``member.key.revoked``); statements it signed before stay valid."""
    _for_member(member_id, body)
    signed = parse_signed_statement(body.model_dump())
    with exchange.transaction() as session:
        entry = service.revoke_key(session, signed, caller=caller, policy=exchange.statement_policy)
    return recorded(entry)


@router.post("/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenIssued)
def new_token(body: TokenRequest, caller: CurrentMember, exchange: ExchangeDep) -> TokenIssued:
    with exchange.transaction() as session:
        row, token = service.issue_token(session, caller.id, label=body.label)
    return TokenIssued(id=row.id, token=token)


@router.get("/tokens", response_model=list[TokenPublic])
def list_tokens(caller: CurrentMember, exchange: ExchangeDep) -> list[TokenPublic]:
    with exchange.transaction() as session:
        rows = service.list_tokens(session, caller.id)
    return [
        TokenPublic(
            id=r.id,
            label=r.label,
            created_at=r.created_at.isoformat(),
            revoked=r.revoked_at is not None,
        )
        for r in rows
    ]


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: str, caller: CurrentMember, exchange: ExchangeDep) -> None:
    with exchange.transaction() as session:
        service.revoke_token(session, token_id, caller=caller)
