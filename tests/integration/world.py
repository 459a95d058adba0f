"""A market with one resource of each kind, owned by known members, for tests that call every
route as every kind of caller (the authorisation matrix, the schemathesis runs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from exchange.publisher import publish_corpus
from ledger.entry import format_time
from tests.conftest import LiveServer
from tests.integration.helpers import Member, register, statement
from tests.integration.market import TRAINING_NC, Market, open_market

DPI_CARD = {
    "Cats.json": {
        "authz-cats": {
            "Unique Dataset Identifier": "authz-cats",
            "Dataset Name": "Authorisation cats",
            "Collection": "Cats",
            "Languages": ["English"],
            "Creators": ["Acme Corpora"],
            "Licenses": [{"License": "Apache License 2.0", "License URL": ""}],
        }
    }
}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class World:
    """A market on a live exchange with one resource of each kind, owned by known members."""

    live: LiveServer
    market: Market
    members: dict[str, Member]  # by caller name; nobody for "anonymous"
    tmp: Path
    http: httpx.Client
    public_offer: str = ""
    private_offer: str = ""  # acme's offer made to bob alone
    agreement: str = ""  # bob's licence from acme
    delivery: int = 0  # bob's delivery under it
    download_path: str = ""
    attestation: int = 0  # bob's training attestation
    flagged_version: str = ""  # umbra's copy of acme's corpus, held for overlap
    listing: str = ""  # the slug of a metadata-only listing acme imported
    training_manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.market.version

    @property
    def provider(self) -> Member:
        return self.members["provider"]

    @property
    def buyer(self) -> Member:
        return self.members["buyer"]

    def signer(self, caller: str) -> Member:
        """Who signs the statement a caller sends: itself; for nobody, the provider."""
        return self.members.get(caller, self.provider)

    def send(self, caller: str, call: Call) -> httpx.Response:
        headers = dict(call.headers)
        if caller != "anonymous":
            headers["Authorization"] = f"Bearer {self.members[caller].token}"
        return self.http.request(
            call.method,
            call.path,
            json=call.json,
            params=call.params,
            content=call.content,
            headers=headers,
        )

    def size(self) -> int:
        return int(self.http.get("/healthz").json()["size"])

    def signed(self, member: Member, entry_type: str, body: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC)
        return statement(entry_type, body, member=member.id, key=member.key, now=now).to_json()


def operator_member(live: LiveServer) -> Member:
    prepared = live.prepared
    return Member("operator", prepared.operator_key, prepared.operator_token, live.operator())


def open_world(live: LiveServer, tmp: Path) -> World:
    market = open_market(live, tmp)
    umbra = register(market.operator, live.url, "umbra", ["provider"])
    members = {
        "operator": operator_member(live),
        "provider": market.acme,
        "other_provider": umbra,
        "buyer": market.bob,
        "other_buyer": market.carol,
        "auditor": market.audrey,
    }
    world = World(live, market, members, tmp, httpx.Client(base_url=live.url, timeout=60))
    world.public_offer = market.offer(TRAINING_NC, 5)["id"]
    world.private_offer = market.offer(TRAINING_NC, 5, buyer="bob")["id"]
    world.agreement = market.bob.client.buy(world.public_offer)["id"]
    delivery = market.bob.client.request_delivery(market.version, purpose="training")
    world.delivery = delivery["seq"]
    world.download_path = httpx.URL(delivery["files"][0]["url"]).raw_path.decode()
    world.training_manifest = {
        "model": "bob-7b",
        "purpose": "training",
        "commercial": False,
        "date": format_time(datetime.now(UTC)),
        "data": [{"version": market.version}],
    }
    world.attestation = market.bob.client.attest_training(world.training_manifest)["seq"]
    copy = tmp / "umbra-copy"
    copy.mkdir()
    (copy / "mine.jsonl").write_text((tmp / "corpus" / "part-0.jsonl").read_text())
    flagged = publish_corpus(umbra.client, [copy], slug="umbra-copy", workers=1).version
    assert flagged["status"] == "flagged", flagged["stats"]
    world.flagged_version = flagged["id"]
    world.listing = market.acme.client.import_dpi(DPI_CARD)[0]["slug"]
    market.operator.issue_checkpoint()
    return world
