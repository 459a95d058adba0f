"""Small helpers for integration tests: members with keys, raw signed requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.client import ExchangeClient
from exchange.keys import raw_public_key
from exchange.signing import new_statement
from ledger.entry import SignedStatement, b64encode, key_id_for
from tests.conftest import TEST_ORIGIN

ORIGIN = TEST_ORIGIN


def statement(
    entry_type: str, body: dict[str, Any], *, member: str, key: Ed25519PrivateKey, **extra: Any
) -> SignedStatement:
    """A statement signed for the test exchange's log."""
    return new_statement(
        entry_type, body, member=member, key=key, log=extra.pop("log", ORIGIN), **extra
    )


@dataclass
class Member:
    id: str
    key: Ed25519PrivateKey
    token: str
    client: ExchangeClient


def registration_body(member_id: str, roles: list[str], key: Ed25519PrivateKey) -> dict[str, Any]:
    public = raw_public_key(key)
    return {
        "member": member_id,
        "name": member_id.title(),
        "roles": roles,
        "public_key": b64encode(public),
        "key_id": key_id_for(public),
    }


def register(operator: ExchangeClient, server: str, member_id: str, roles: list[str]) -> Member:
    key = Ed25519PrivateKey.generate()
    answer = operator.register_member(registration_body(member_id, roles, key))
    token = answer["token"]
    return Member(
        member_id, key, token, ExchangeClient(server, token=token, member=member_id, key=key)
    )
