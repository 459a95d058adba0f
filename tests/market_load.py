"""Members trading on a deployed exchange, for the load and crash tests.

A :class:`Trader` is picklable (it crosses into ``spawn`` processes) and opens its own client.
Retryable refusals — 503 "the database is busy" — are retried here, as a real client would;
everything else is the caller's to judge.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.client import ClientError, ExchangeClient
from exchange.keys import load_private_key
from tests.deployment import Deployment
from tests.integration.helpers import new_member_body

T = TypeVar("T")
RETRYABLE = 503


@dataclass(frozen=True)
class Trader:
    url: str
    member: str
    token: str
    raw_key: bytes

    def client(self, *, timeout: float = 120) -> ExchangeClient:
        key = Ed25519PrivateKey.from_private_bytes(self.raw_key)
        return ExchangeClient(
            self.url, token=self.token, member=self.member, key=key, timeout=timeout
        )


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def operator(deployment: Deployment) -> Trader:
    key = load_private_key(deployment.operator_key)
    return Trader(deployment.url, "operator", deployment.operator_token, _raw(key))


def register_trader(deployment: Deployment, member: str, roles: list[str]) -> Trader:
    key = Ed25519PrivateKey.generate()
    with operator(deployment).client() as client:
        answer = client.register_member(new_member_body(member, roles, key))
    return Trader(deployment.url, member, answer["token"], _raw(key))


def retrying(call: Callable[[], T], *, attempts: int = 30, retries: list[int] | None = None) -> T:
    """``call()``, again after a 503 (nothing was done; the server asks to retry)."""
    for attempt in range(attempts):
        try:
            return call()
        except ClientError as exc:
            if exc.status != RETRYABLE or attempt == attempts - 1:
                raise
            if retries is not None:
                retries.append(attempt)
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def write_corpus(root: Path, tag: str, *, documents: int = 12) -> Path:
    """A tiny JSONL corpus whose documents (so whose version id) only ``tag`` makes."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "part-0.jsonl").open("w") as handle:
        for i in range(documents):
            handle.write(json.dumps({"text": f"{tag}: document {i} of a corpus"}) + "\n")
    return root
