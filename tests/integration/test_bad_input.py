"""Hostile and malformed requests get a 4xx problem-details answer; nothing is written and the
server stays up."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from exchange.published import statement_body
from ledger.entry import format_time
from licensing import statements as licences
from licensing.terms import Price
from tests.conftest import LiveServer
from tests.integration.helpers import ORIGIN, Member, register, statement
from tests.integration.market import TRAINING_NC, Market, open_market

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


# -- hostile requests against a whole market: one market per database for all of them ----------


@pytest.fixture(scope="module")
def market(module_live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Market:
    built = open_market(module_live_server, tmp_path_factory.mktemp("market"))
    offer = built.offer(TRAINING_NC, 5)
    built.bob.client.buy(offer["id"])
    return built


HUGE = 10**30
LONG = "a" * 10_000
HOSTILE_READS = [
    f"/ledger/entries/{HUGE}",
    f"/ledger/entries/-{HUGE}",
    f"/ledger/proof/inclusion?seq={HUGE}",
    f"/ledger/proof/inclusion?seq=0&size={HUGE}",
    f"/ledger/proof/consistency?size1=1&size2={HUGE}",
    f"/ledger/proof/consistency?size1={HUGE}&size2={HUGE}",
    f"/ledger/proof/bundle/{HUGE}",
    f"/ledger/tile/0/x{HUGE}",
    f"/ledger/tile/{'0/' * 3000}000",
    f"/deliveries/{HUGE}/receipt",
    f"/compliance/attestations/{HUGE}/bundle",
    f"/datasets?min_bytes={HUGE}",
    f"/datasets?max_bytes={HUGE}",
    "/datasets?min_bytes=-1",
    f"/datasets?page={HUGE}",
    "/datasets?per_page=-5",
    "/datasets?q=%00",
    "/datasets?provider=%00",
    "/datasets?tag=%00&language=%00&domain=%00",
    f"/accounts/bob?limit={HUGE}",
    "/accounts/bob?limit=-1",
    f"/versions/{{version}}/proof?file=part-0.jsonl&record={HUGE}",
    "/versions/{version}/proof?file=part-0.jsonl&record=-1",
    "/versions/{version}/proof?file=%00&record=0",
    "/versions/{version}/proof?file=part-0.jsonl&document=%FF",
    "/may?member=bob&version={version}&purpose=training&at=yesterday",
    "/may?member=bob&version={version}&purpose=training&at=2026-02-30T00:00:00.000Z",
    "/may?member=%00&version={version}&purpose=training",
    "/may?member=bob&version=%00&purpose=%00",
    "/offers?dataset=%00",
    "/offers?version=%00",
    "/licences?member=%00",
    "/licences?version=%00",
    "/compliance/attestations?member=%00",
    f"/members/{LONG}",
    "/members/%00",
    "/members/%FF",
    f"/datasets/{LONG}",
    "/datasets/%00",
    "/datasets/%C0%AF",
    f"/datasets/{LONG}/listing",
    f"/versions/{LONG}",
    "/versions/%00",
    "/versions/sha256:%00/manifest",
    f"/versions/{LONG}/croissant",
    f"/versions/{LONG}/lineage",
    f"/versions/{LONG}/lineage/prov",
    f"/offers/{LONG}",
    "/offers/%00",
    f"/offers/{LONG}/odrl",
    f"/licences/{LONG}",
    "/licences/%00",
    f"/licences/{LONG}/odrl",
    f"/accounts/{LONG}",
    "/accounts/%00",
    f"/downloads/{LONG}",
    f"/downloads/{'a.' * 5000}",
    "/downloads/%FF.%FF",
    "/downloads/%00",
]


ODD_READS = [
    "/datasets?q=%FF%FE",  # decoded as U+FFFD: an odd search, but a search
    "/datasets?q=" + "%E2%80%AE" * 100,
    "/datasets?q=" + "x" * 500,
    "/datasets?page=100000&per_page=100",
    "/may?member=bob&version={version}&purpose=training&at=9999-12-31T23:59:59.999Z",
    "/versions/{version}/proof?file=part-0.jsonl&document=" + "0" * 64,
]


@pytest.mark.parametrize("path", ODD_READS)
def test_odd_but_valid_reads_are_answered(market: Market, path: str) -> None:
    url = market.live.url + path.format(version=market.version)
    response = httpx.get(url, headers={"Authorization": f"Bearer {market.bob.token}"})
    assert response.status_code < 500, (path[:200], response.status_code, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("path", HOSTILE_READS)
def test_hostile_reads_are_refused_with_problem_details(market: Market, path: str) -> None:
    """Huge numbers, negative sizes, NULs, bytes that are not UTF-8, very long names: a 4xx."""
    url = market.live.url + path.format(version=market.version)
    response = httpx.get(url, headers={"Authorization": f"Bearer {market.bob.token}"})
    assert 400 <= response.status_code < 500, (path[:200], response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")


def _garbage_statements(good: dict[str, Any]) -> list[object]:
    """The malformed envelopes of ``bodies``, and non-JSON bytes."""
    return [*bodies(good), b"\xff\xfe{", b"{", b"\x00", b"[" * 10_000]


def _signed(member: Member, entry_type: str, body: dict[str, Any]) -> dict[str, Any]:
    return statement(entry_type, body, member=member.id, key=member.key).to_json()


def _offer_bodies(market: Market) -> list[dict[str, Any]]:
    """offer.published bodies, correctly signed by the provider, each wrong in one way."""
    now = format_time(datetime.now(UTC))
    good = licences.offer_body(
        offer_id=licences.new_offer_id(),
        dataset="cat-facts",
        version=market.version,
        terms=TRAINING_NC,
        price=Price(5),
        valid_from=now,
        valid_until=None,
        buyer=None,
    )
    wrong: list[dict[str, Any]] = [
        good | {"offer": "off_x"},
        good | {"offer": 7},
        good | {"dataset": None},
        good | {"dataset": "no-such-dataset"},
        good | {"version": 5},
        good | {"version": "sha256:" + "0" * 64},
        good | {"price": {"amount": -5, "currency": "credits"}},
        good | {"price": {"amount": 2**53 - 1, "currency": "credits"}},
        good | {"price": "5"},
        good | {"terms": {"purposes": ["everything"]}},
        good | {"terms": []},
        good | {"valid_from": "yesterday"},
        good | {"valid_until": "2000-01-01T00:00:00.000Z"},
        good | {"buyer": "nobody"},
        good | {"buyer": ["bob"]},
        {k: v for k, v in good.items() if k != "terms"},
        good | {"extra": True},
    ]
    return [_signed(market.acme, licences.OFFER_PUBLISHED, body) for body in wrong]


def _cash_bodies(market: Market, entry_type: str) -> list[dict[str, Any]]:
    good = {"member": "bob", "amount": 5, "reference": "wire 1"}
    wrong: list[dict[str, Any]] = [
        good | {"amount": 0},
        good | {"amount": -5},
        good | {"amount": 2**53 - 1},
        good | {"amount": 10**15 + 1},
        good | {"amount": "5"},
        good | {"amount": 5.5},
        good | {"amount": True},
        good | {"amount": None},
        good | {"member": "carol"},
        good | {"member": None},
        good | {"reference": ""},
        good | {"reference": "\u00e9\u00e9"},
        good | {"reference": "x" * 201},
        good | {"reference": 5},
        {"member": "bob", "amount": 5},
        good | {"extra": 1},
    ]
    operator = market.operator
    assert operator.key is not None
    signer = Member("operator", operator.key, "", operator)
    return [_signed(signer, entry_type, body) for body in wrong]


def _manifest_bodies(market: Market) -> list[object]:
    good = {
        "model": "bob-7b",
        "purpose": "training",
        "commercial": False,
        "date": format_time(datetime.now(UTC)),
        "data": [{"version": market.version}],
    }
    manifests: list[object] = [
        None,
        [],
        "manifest",
        {},
        good | {"data": []},
        good | {"data": "all"},
        good | {"data": [{"version": market.version, "file": "x"}]},
        good | {"data": [{"file": "not hex"}]},
        good | {"data": [{"document": "f" * 63}]},
        good | {"data": [{"version": 5}]},
        good | {"data": [{"version": market.version}] * 2},
        good | {"data": [{}]},
        good | {"purpose": "world domination"},
        good | {"date": "tomorrow"},
        good | {"commercial": "no"},
        good | {"territory": "Narnia"},
        good | {"model": ""},
        good | {"unknown": 1},
    ]
    return [
        None,
        [],
        {"manifest": good, "member": 5},
        {"manifest": good, "member": "nobody"},
        {"manifest": good, "extra": 1},
        *({"manifest": m} for m in manifests),
    ]


def _delivery_bodies(market: Market) -> list[object]:
    good = {"version": market.version, "purpose": "training"}
    return [
        None,
        [],
        "deliver",
        {},
        good | {"version": None},
        good | {"version": "x" * 72},
        good | {"version": "sha256:" + "0" * 64},
        good | {"purpose": "world domination"},
        good | {"purpose": "x" * 33},
        good | {"commercial": "yes"},
        good | {"territory": "USA"},
        good | {"territory": 12},
        good | {"files": "part-0.jsonl"},
        good | {"files": []},
        good | {"files": [7]},
        good | {"files": ["no-such-file"]},
        good | {"files": ["part-0.jsonl"] * 10_001},
        good | {"extra": 1},
    ]


def _post(market: Market, path: str, body: object, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/json"
        return httpx.post(market.live.url + path, content=body, headers=headers, timeout=60)
    return httpx.post(market.live.url + path, json=body, headers=headers, timeout=60)


def test_malformed_licensing_account_compliance_and_delivery_writes_change_nothing(
    market: Market,
) -> None:
    """Every write route of the market, each with its own malformed bodies: a 4xx problem, and
    the ledger and every balance exactly as before."""
    acme, bob, operator = market.acme, market.bob, market.operator
    assert operator.key is not None
    op = Member("operator", operator.key, market.live.prepared.operator_token, operator)
    offer = market.offer(TRAINING_NC, 5)["id"]
    agreement = bob.client.licences()[0]["id"]
    envelope = {
        "/offers": (acme, licences.OFFER_PUBLISHED),
        f"/offers/{offer}/withdraw": (acme, licences.OFFER_WITHDRAWN),
        f"/offers/{offer}/accept": (bob, licences.GRANTED),
        f"/licences/{agreement}/revoke": (acme, licences.REVOKED),
        "/accounts/bob/deposits": (op, "account.deposited"),
        "/accounts/bob/withdrawals": (op, "account.withdrawn"),
        f"/versions/{market.version}/clear": (op, "dataset.version.cleared"),
    }
    attempts: list[tuple[str, object, str]] = []
    for path, (signer, entry_type) in envelope.items():
        good = _signed(signer, entry_type, {"offer": offer, "reason": "x"})
        attempts += [(path, body, signer.token) for body in _garbage_statements(good)]
    attempts += [("/offers", body, acme.token) for body in _offer_bodies(market)]
    for path, entry_type in (
        ("/accounts/bob/deposits", "account.deposited"),
        ("/accounts/bob/withdrawals", "account.withdrawn"),
    ):
        attempts += [(path, body, op.token) for body in _cash_bodies(market, entry_type)]
    for path in ("/compliance/check", "/compliance/spdx"):
        attempts += [(path, body, op.token) for body in _manifest_bodies(market)]
    attest = _signed(bob, "model.training.attested", {"a": 1})
    attempts += [
        ("/compliance/attestations", body | {"signed": attest}, bob.token)
        for body in _manifest_bodies(market)
        if isinstance(body, dict) and "member" not in body and "extra" not in body
    ]
    attempts += [("/deliveries", body, bob.token) for body in _delivery_bodies(market)]
    attempts += [
        ("/listings/dpi", body, acme.token)
        for body in (None, {}, {"summaries": []}, {"summaries": {"x.json": 5}}, b"\xff")
    ]
    size, balances = market.size(), market.balances()
    for path, body, token in attempts:
        response = _post(market, path, body, token)
        shown = repr(body)[-300:]
        assert 400 <= response.status_code < 500, (path, shown, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["detail"], (path, shown)
    assert market.size() == size
    assert market.balances() == balances
    assert len(bob.client.deliveries()) == 0


UNSTORABLE = ["\x00", "a\x00b", "\ud800", "x\udfffy"]  # NUL, and lone UTF-16 surrogates


def test_text_no_database_can_store_is_refused(market: Market) -> None:
    """JSON strings may carry a NUL or a lone surrogate, which neither database stores: a 4xx,
    never a server error, and nothing written."""
    acme, bob = market.acme, market.bob
    attempts: list[tuple[str, str, Member, Any]] = []
    for text in UNSTORABLE:
        manifest = {
            "model": text,
            "purpose": "training",
            "commercial": False,
            "date": format_time(datetime.now(UTC)),
            "data": [{"version": market.version}],
        }
        attempts += [
            ("PATCH", "/datasets/cat-facts", acme, {"title": text}),
            ("PATCH", "/datasets/cat-facts", acme, {"tags": [text]}),
            ("POST", "/tokens", bob, {"label": text}),
            ("POST", "/compliance/check", bob, {"manifest": manifest}),
            ("POST", "/deliveries", bob, {"version": text, "purpose": "training"}),
            ("POST", "/deliveries", bob, {"version": market.version, "purpose": text}),
            ("POST", "/blobs/missing", acme, {"digests": [text]}),
            ("POST", "/listings/dpi", acme, {"summaries": {text: {}}}),
        ]
    size, title = market.size(), acme.client.dataset("cat-facts")["title"]
    tokens = len(bob.client.tokens())
    for method, path, caller, body in attempts:
        # json.dumps escapes both as \u0000 / \ud800: valid JSON text, unstorable strings
        response = httpx.request(
            method,
            market.live.url + path,
            content=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {caller.token}", "Content-Type": "application/json"},
        )
        assert 400 <= response.status_code < 500, (method, path, ascii(body), response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert market.size() == size
    assert acme.client.dataset("cat-facts")["title"] == title
    assert len(bob.client.tokens()) == tokens


def _publish_bodies(market: Market) -> list[object]:
    manifest = market.published.manifest
    signed = _signed(
        market.acme, "dataset.version.published", statement_body("cat-facts", "v9", manifest)
    )
    good = {"label": "v9", "meta": {}, "manifest": manifest.to_json(), "signed": signed}
    return [
        None,
        [],
        {},
        good | {"label": ""},
        good | {"label": "x" * 101},
        good | {"manifest": {}},
        good | {"manifest": []},
        good | {"manifest": manifest.to_json() | {"files": "all"}},
        good | {"signed": {}},
        good | {"signed": signed | {"signature": "AAAA"}},
        good | {"meta": {"title": ""}},
        good | {"meta": {"tags": ["not a label!"]}},
        good | {"meta": {"unknown": 1}},
        good | {"method": "filtered"},
        good | {"method": "filtered", "derived_from": "everything"},
        good | {"derived_from": [{"version": 5, "agreement": None}], "method": "merged"},
        good | {"extra": 1},
        good,  # v9 names the same manifest as v1: versions are immutable, a 409
    ]


def test_malformed_catalogue_and_blob_writes_change_nothing(market: Market) -> None:
    acme, bob = market.acme, market.bob
    attempts: list[tuple[str, str, Member, object]] = [
        ("POST", "/datasets/cat-facts/versions", acme, body) for body in _publish_bodies(market)
    ]
    attempts += [("POST", "/datasets/Not_A_Slug/versions", acme, _publish_bodies(market)[-1])]
    attempts += [
        ("PATCH", "/datasets/cat-facts", acme, body)
        for body in (
            None,
            [],
            {"title": ""},
            {"title": "x" * 301},
            {"tags": ["not a label!"]},
            {"tags": ["x"] * 51},
            {"languages": "en"},
            {"card": "x" * 200_001},
            {"description": 5},
            {"unknown": 1},
        )
    ]
    attempts += [
        ("POST", "/tokens", bob, body)
        for body in (None, [], {"label": "x" * 101}, {"label": 5}, {"extra": 1})
    ]
    attempts += [
        ("POST", "/blobs/missing", acme, body)
        for body in (
            None,
            {},
            {"digests": "all"},
            {"digests": ["ABC"]},
            {"digests": ["0" * 63]},
            {"digests": ["0" * 64] * 10_001},
        )
    ]
    attempts += [
        (method, f"/blobs/{digest}", acme, b"some bytes")
        for method in ("PUT", "HEAD")
        for digest in ("ABC", "0" * 63, "g" * 64, LONG, "%00", "..%2F..%2Fetc%2Fpasswd")
    ]
    attempts += [("PUT", f"/blobs/{'0' * 64}", acme, b"bytes of another digest")]
    size = market.size()
    dataset = acme.client.dataset("cat-facts")
    tokens = len(bob.client.tokens())
    for method, path, caller, body in attempts:
        headers = {"Authorization": f"Bearer {caller.token}"}
        if isinstance(body, bytes):
            response = httpx.request(method, market.live.url + path, content=body, headers=headers)
        else:
            response = httpx.request(method, market.live.url + path, json=body, headers=headers)
        shown = ascii(body)[-200:]
        assert 400 <= response.status_code < 500, (method, path, shown, response.text)
        if method != "HEAD":
            assert response.headers["content-type"].startswith("application/problem+json")
    assert market.size() == size
    assert acme.client.dataset("cat-facts") == dataset
    assert len(bob.client.tokens()) == tokens
    assert acme.client.missing_blobs(["0" * 64]) == ["0" * 64]
