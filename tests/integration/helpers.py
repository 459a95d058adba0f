"""Small helpers for integration tests: members with keys, raw signed requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.client import ExchangeClient
from exchange.keys import raw_public_key
from exchange.signing import new_statement
from ledger.audit import registration_body
from ledger.entry import SignedStatement
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


def new_member_body(member_id: str, roles: list[str], key: Ed25519PrivateKey) -> dict[str, Any]:
    return registration_body(member_id, raw_public_key(key), name=member_id.title(), roles=roles)


def register(operator: ExchangeClient, server: str, member_id: str, roles: list[str]) -> Member:
    key = Ed25519PrivateKey.generate()
    answer = operator.register_member(new_member_body(member_id, roles, key))
    token = answer["token"]
    return Member(
        member_id, key, token, ExchangeClient(server, token=token, member=member_id, key=key)
    )
