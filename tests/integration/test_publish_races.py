"""Writers racing past the same check get what the later one would get serially, never a 500.

On PostgreSQL two transactions can both see "no dataset called X yet" (or "no member X", "no
version V") before either commits; the second's insert then waits for the first and violates a
unique key. Each of these used to surface as a 500; now the second gets the answer it would
have had one moment later: a 409 (a label or version taken, a member registered) or a 403 (the
slug is another provider's). Several rounds each, because the race is a matter of timing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.client import ClientError, ExchangeClient
from exchange.db import make_engine
from exchange.integrity import check_integrity
from exchange.publisher import publish_corpus
from tests.conftest import LiveServer
from tests.integration.helpers import Member, new_member_body, register
from tests.market_load import write_corpus

ROUNDS = 5


def _at_once(calls: list[Callable[[], object]]) -> list[str]:
    """Run the calls in threads released together; 'ok' or the refusal's status."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> str:
        start.wait()
        try:
            call()
            return "ok"
        except ClientError as exc:
            return str(exc.status)

    with ThreadPoolExecutor(len(calls)) as pool:
        return sorted(pool.map(run, calls))


def _own_client(live: LiveServer, member: Member) -> ExchangeClient:
    return live.client(token=member.token, member=member.id, key=member.key)


def _publisher(live: LiveServer, member: Member, corpus: Path, slug: str) -> Callable[[], object]:
    def publish() -> object:
        with _own_client(live, member) as client:
            return publish_corpus(client, [corpus], slug=slug, label="v1", workers=1)

    return publish


def test_racing_first_publishes_of_a_slug(live_server: LiveServer, tmp_path: Path) -> None:
    operator = live_server.operator()
    acme = register(operator, live_server.url, "acme", ["provider"])
    zeta = register(operator, live_server.url, "zeta", ["provider"])
    for round_ in range(ROUNDS):
        # One provider, two corpora, one new slug, both labelled v1: one wins.
        mine = [write_corpus(tmp_path / f"m{round_}-{i}", f"mine {round_} {i}") for i in (0, 1)]
        calls = [_publisher(live_server, acme, c, f"mine-{round_}") for c in mine]
        assert _at_once(calls) == ["409", "ok"]
        # Two providers, one new slug: the slug is the first's, the second is refused.
        theirs = [write_corpus(tmp_path / f"t{round_}-{i}", f"theirs {round_} {i}") for i in (0, 1)]
        calls = [
            _publisher(live_server, member, corpus, f"theirs-{round_}")
            for member, corpus in zip((acme, zeta), theirs, strict=True)
        ]
        assert _at_once(calls) == ["403", "ok"]
        # Two providers, one corpus, two new slugs: the version exists once.
        same = write_corpus(tmp_path / f"s{round_}", f"same {round_}")
        calls = [
            _publisher(live_server, member, same, f"same-{round_}-{member.id}")
            for member in (acme, zeta)
        ]
        assert _at_once(calls) == ["409", "ok"]
    _consistent(live_server)


def test_racing_registrations_of_a_member(live_server: LiveServer) -> None:
    operator = live_server.operator()
    for round_ in range(ROUNDS):
        bodies = [
            new_member_body(f"twin-{round_}", ["buyer"], Ed25519PrivateKey.generate())
            for _ in (0, 1)
        ]
        calls: list[Callable[[], object]] = [
            lambda body=body: live_server.operator().register_member(body) for body in bodies
        ]
        assert _at_once(calls) == ["409", "ok"]
    assert len(operator.members()) == 1 + ROUNDS
    _consistent(live_server)


def _consistent(live: LiveServer) -> None:
    engine = make_engine(live.prepared.settings.resolved_database_url)
    try:
        report = check_integrity(engine)
    finally:
        engine.dispose()
    assert report.ok, report.problems
