"""Many buyers' processes buying at once against one balance: no money made or lost, no
purchase twice (PostgreSQL and SQLite; the exchange serves every request on its own thread)."""

from __future__ import annotations

import random
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.client import ClientError, ExchangeClient
from licensing.terms import Terms
from tests.conftest import LiveServer
from tests.integration.helpers import register
from tests.integration.market import open_market

PRICE = 300
OFFERS = 6
PROCESSES = 4


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def _buy_all(args: tuple[str, str, str, bytes, list[str], int]) -> list[tuple[str, str]]:
    """One process: try every offer (twice each, in a random order); report what happened."""
    url, token, member, raw_key, offers, seed = args
    key = Ed25519PrivateKey.from_private_bytes(raw_key)
    attempts = offers * 2
    random.Random(seed).shuffle(attempts)
    outcomes: list[tuple[str, str]] = []
    with ExchangeClient(url, token=token, member=member, key=key, timeout=120) as client:
        for offer in attempts:
            try:
                outcomes.append((offer, client.buy(offer)["id"]))
            except ClientError as exc:
                outcomes.append((offer, f"refused {exc.status}"))
    return outcomes


def test_concurrent_purchases_conserve_money(live_server: LiveServer, tmp_path: Path) -> None:
    market = open_market(live_server, tmp_path, credits=1_000)
    terms = Terms(purposes=frozenset({"training"}))
    offers = [market.offer(terms, PRICE)["id"] for _ in range(OFFERS)]
    dave = register(market.operator, live_server.url, "dave", ["buyer"])
    market.operator.deposit("dave", 10_000, "wire 2026-003")
    buyers = [market.bob] * (PROCESSES - 1) + [dave]
    jobs = [
        (live_server.url, b.token, b.id, _raw(b.key), offers, seed) for seed, b in enumerate(buyers)
    ]
    with ProcessPoolExecutor(max_workers=PROCESSES, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(_buy_all, jobs))

    bought = {
        (buyer.id, offer)
        for buyer, outcomes in zip(buyers, results, strict=True)
        for offer, outcome in outcomes
        if outcome.startswith("agr_")
    }
    refusals = {
        outcome for outcomes in results for _, outcome in outcomes if not outcome.startswith("agr_")
    }
    assert refusals <= {"refused 409"}
    # bob can afford three; dave buys every offer exactly once, whatever the interleaving.
    assert len({o for b, o in bought if b == "bob"}) == 1_000 // PRICE
    assert {o for b, o in bought if b == "dave"} == set(offers)
    agreements = market.operator.licences(member="bob") + market.operator.licences(member="dave")
    assert len(agreements) == len({(a["assignee"], a["offer"]) for a in agreements})
    assert len(agreements) == 3 + OFFERS

    books = market.operator.books()
    assert books["total"] == 0
    assert books["unbalanced_transactions"] == 0 and books["drifted_accounts"] == []
    accounts = books["accounts"]
    assert accounts["member:bob"] == 1_000 - 3 * PRICE
    assert accounts["member:dave"] == 10_000 - OFFERS * PRICE
    assert accounts["member:acme"] == (3 + OFFERS) * PRICE
    assert accounts["external"] == -11_000
