"""A small market on a live exchange for licensing tests: members, a published corpus, credits."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from exchange.client import ExchangeClient
from exchange.publisher import PublishResult, publish_corpus
from ledger.entry import Entry
from licensing.terms import Price, Terms
from tests.conftest import LiveServer
from tests.integration.helpers import Member, register


def write_corpus(root: Path, *, documents: int = 60, topic: str = "cats") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "part-0.jsonl").open("w") as handle:
        for i in range(documents):
            handle.write(json.dumps({"text": f"{topic} document number {i} of the corpus"}) + "\n")
    (root / "notes.txt").write_text(f"a line about {topic}\nanother line about {topic}\n")
    return root


@dataclass
class Market:
    live: LiveServer
    operator: ExchangeClient
    acme: Member  # provider
    bob: Member  # buyer with credits
    carol: Member  # buyer without credits
    audrey: Member  # auditor
    published: PublishResult

    @property
    def version(self) -> str:
        return self.published.manifest.version_id

    def size(self) -> int:
        return int(httpx.get(self.live.url + "/healthz").json()["size"])

    def balances(self) -> dict[str, int]:
        books: dict[str, int] = self.operator.books()["accounts"]
        return books

    def offer(self, terms: Terms, price: int, **extra: Any) -> dict[str, Any]:
        offer: dict[str, Any] = self.acme.client.publish_offer(
            dataset="cat-facts",
            version=extra.pop("version", self.version),
            terms=terms,
            price=Price(price),
            **extra,
        )
        return offer

    def entry(self, seq: int) -> Entry:
        return Entry.from_bytes(base64.b64decode(self.operator.entry(seq)["canonical"]))


def open_market(live: LiveServer, tmp_path: Path, *, credits: int = 1_000) -> Market:
    operator = live.operator()
    acme = register(operator, live.url, "acme", ["provider"])
    bob = register(operator, live.url, "bob", ["buyer"])
    carol = register(operator, live.url, "carol", ["buyer"])
    audrey = register(operator, live.url, "audrey", ["auditor"])
    corpus = write_corpus(tmp_path / "corpus")
    published = publish_corpus(acme.client, [corpus], slug="cat-facts", workers=1)
    if credits:
        operator.deposit("bob", credits, "wire 2026-001")
    return Market(live, operator, acme, bob, carol, audrey, published)


TRAINING_NC = Terms(
    purposes=frozenset({"training", "evaluation"}),
    duration_days=30,
    attribution=("Cat facts (c) Acme",),
)
