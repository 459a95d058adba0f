"""Hostile and malformed requests get a 4xx problem-details answer; nothing is written and the
server stays up."""

from __future__ import annotations

import base64
import time

import httpx
import pytest

from tests.conftest import LiveServer
from tests.integration.helpers import ORIGIN, register, statement

WRITE_ROUTES = ["/members", "/members/alice/keys", "/members/alice/keys/revoke", "/ledger/attest"]


def bodies(good: dict[str, object]) -> list[object]:
    inner = dict(good["statement"])  # type: ignore[arg-type]
    return [
        None,
        [],
        "statement",
        {},
        {"statement": inner},
        {"statement": inner, "signature": "not base64!"},
        {"statement": inner, "signature": base64.b64encode(b"short").decode()},
        {"statement": inner | {"member": 7}, "signature": good["signature"]},
        {"statement": inner | {"body": []}, "signature": good["signature"]},
        {"statement": inner | {"time": "yesterday"}, "signature": good["signature"]},
        {"statement": inner | {"nonce": "x"}, "signature": good["signature"]},
        {"statement": inner | {"extra": 1}, "signature": good["signature"]},
        {"statement": inner | {"body": {"blob": "x" * 70_000}}, "signature": good["signature"]},
        {"statement": inner | {"body": {"n": 2**60}}, "signature": good["signature"]},
        good | {"more": True},
    ]


def test_malformed_writes_are_refused_with_problem_details(live_server: LiveServer) -> None:
    with live_server.operator() as operator:
        alice = register(operator, live_server.url, "alice", ["buyer"])
    good = statement("attest.x", {"a": 1}, member="alice", key=alice.key).to_json()
    size = httpx.get(live_server.url + "/healthz").json()["size"]
    headers = {"Authorization": f"Bearer {alice.token}"}
    for route in WRITE_ROUTES:
        for body in bodies(good):
            response = httpx.post(live_server.url + route, json=body, headers=headers)
            assert 400 <= response.status_code < 500, (route, body, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["detail"], (route, body)
        raw = httpx.post(live_server.url + route, content=b"\xff\xfe{", headers=headers)
        assert raw.status_code == 422, raw.text
    assert httpx.get(live_server.url + "/healthz").json()["size"] == size


@pytest.mark.parametrize(
    "path",
    [
        "/ledger/entries/-1",
        "/ledger/entries/abc",
        "/ledger/entries/99999",
        "/ledger/proof/inclusion?seq=5&size=2",
        "/ledger/proof/inclusion?seq=-1",
        "/ledger/proof/consistency?size1=3&size2=2",
        "/ledger/proof/consistency?size1=1&size2=99",
        "/ledger/proof/bundle/99",
        "/ledger/tile/0/x999",
        "/ledger/tile/99/000",
        "/ledger/tile/entries/000.p/0",
        "/ledger/tile/entries/000.p/300",
        "/ledger/tile/0/000.p/abc",
        "/ledger/tile/../../etc/passwd",
        "/members/nobody",
        "/nothing-here",
    ],
)
def test_malformed_reads_are_4xx(live_server: LiveServer, path: str) -> None:
    headers = {"Authorization": f"Bearer {live_server.prepared.operator_token}"}
    response = httpx.get(live_server.url + path, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.checkpoint_interval(0.2)
def test_checkpoints_are_issued_on_a_schedule(live_server: LiveServer) -> None:
    with live_server.operator() as operator:
        operator.attest("attest.x", {"scheduled": True})
        deadline = time.monotonic() + 20
        while "\n2\n" not in operator.checkpoint():
            assert time.monotonic() < deadline, "no scheduled checkpoint appeared"
            time.sleep(0.1)
        assert operator.checkpoint().startswith(ORIGIN + "\n")
