"""Who may call what: every route of the app, for each kind of caller, and the status it gets.

The table ``CASES`` has a row for each route (method and path template) with the status expected
for each caller: nobody (no token), the operator, the provider who owns the resource, another
provider, the buyer who holds the licence, another buyer, and an auditor. A route the app serves
without a row fails ``test_every_route_has_a_row`` — routes added later must be added here, with
their expectations, before the suite passes.

A request to a signed-statement route carries a statement of the right type, correctly signed by
the caller itself (anonymous requests carry the provider's), so that a refusal is about the
caller's role or ownership, never about a bad signature. A request that succeeds for its owner
acts on a fresh resource made just for it (a fresh offer to withdraw, a fresh key to revoke), so
the cells do not depend on each other's order; and a refused request must leave the ledger as it
was.

Where the code hides another member's private resource (an agreement, a private offer, a
delivery, a token) it answers 404, as if the resource did not exist; where the resource's
existence is public (a dataset, a member, an account) it answers 403. The table asserts which.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fastapi.routing
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from catalog.ingest import ingest, scan
from exchange.client import ClientError
from exchange.delivery import DownloadClaims
from exchange.keys import raw_public_key
from exchange.published import PUBLISHED, Declared, statement_body
from exchange.publisher import publish_corpus
from ledger.audit import registration_body
from ledger.entry import format_time, key_id_for
from licensing import statements as licences
from licensing.attestation import ATTESTED, attestation_body
from licensing.compliance import ComplianceReport, TrainingManifest
from licensing.terms import Price
from tests.conftest import LiveServer
from tests.integration.helpers import Member, new_member_body, statement
from tests.integration.market import TRAINING_NC
from tests.integration.world import DPI_CARD, Call, World, open_world

CALLERS = (
    "anonymous",
    "operator",
    "provider",
    "other_provider",
    "buyer",
    "other_buyer",
    "auditor",
)
DATASET = "cat-facts"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def world(
    module_live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    built = open_world(module_live_server, tmp_path_factory.mktemp("market"))
    yield built
    built.http.close()


# -- one request, and the table of expectations ------------------------------------------------


Builder = Callable[[World, Member], Call]


@dataclass(frozen=True)
class Case:
    method: str
    route: str  # the path template, exactly as the app's route names it
    expected: Mapping[str, int]
    build: Builder
    variant: str = ""

    def __str__(self) -> str:
        return f"{self.method} {self.route}" + (f" ({self.variant})" if self.variant else "")


def statuses(members: int, *, anonymous: int = 401, **callers: int) -> dict[str, int]:
    """``members`` for every member, ``anonymous`` without a token, and exceptions by caller."""
    unknown = set(callers) - set(CALLERS)
    assert not unknown, f"unknown callers {unknown}"
    return {caller: members for caller in CALLERS} | {"anonymous": anonymous} | callers


EVERYONE = statuses(200, anonymous=200)
MEMBERS = statuses(200)
PARTIES = statuses(404, operator=200, provider=200, buyer=200, auditor=200)  # an agreement


def get(path: str, **params: Any) -> Builder:
    """A GET whose path and parameters may name the world's resources (``{w.version}``)."""

    def build(w: World, m: Member) -> Call:
        named = {k: v.format(w=w) if isinstance(v, str) else v for k, v in params.items()}
        return Call("GET", path.format(w=w), params=named or None)

    return build


def signed_post(
    path: str, entry_type: str, body: Callable[[World, Member], dict[str, Any]]
) -> Builder:
    def build(w: World, m: Member) -> Call:
        return Call("POST", path.format(w=w), json=w.signed(m, entry_type, body(w, m)))

    return build


# -- builders that make a fresh resource for the request to act on ---------------------------


def _new_key_body(member: str) -> dict[str, Any]:
    return registration_body(member, raw_public_key(Ed25519PrivateKey.generate()))


def _revoke_fresh_key(w: World, m: Member) -> Call:
    added = _new_key_body(w.provider.id)
    w.provider.client.add_key(w.provider.id, added)
    body = {"member": w.provider.id, "key_id": added["key_id"], "reason": "authz"}
    return Call(
        "POST",
        f"/members/{w.provider.id}/keys/revoke",
        json=w.signed(m, "member.key.revoked", body),
    )


def _delete_fresh_token(w: World, m: Member) -> Call:
    token_id = w.provider.client.new_token("authz")["id"]
    return Call("DELETE", f"/tokens/{token_id}")


def _register(w: World, m: Member) -> Call:
    body = new_member_body(f"m-{secrets.token_hex(4)}", ["buyer"], Ed25519PrivateKey.generate())
    return Call("POST", "/members", json=w.signed(m, "member.registered", body))


BLOB = b"a blob uploaded by the authorisation test\n"


def _upload(w: World, m: Member) -> Call:
    digest = hashlib.sha256(BLOB).hexdigest()
    return Call(
        "PUT",
        f"/blobs/{digest}",
        content=BLOB,
        headers={"Content-Type": "application/octet-stream"},
    )


def _publish_version(w: World, m: Member) -> Call:
    """A new version of acme's dataset (its blobs uploaded by acme), signed by the caller."""
    tag = secrets.token_hex(4)
    root = w.tmp / f"corpus-{tag}"
    root.mkdir()
    text = json.dumps({"text": f"a document only the authorisation test {tag} wrote"})
    (root / "part-0.jsonl").write_text(text + "\n")
    manifest = ingest(scan([root]), workers=1)
    for file in manifest.files:
        w.provider.client.upload_blob(file.sha256, root / file.name)
    label = f"authz-{tag}"
    signed = w.signed(m, PUBLISHED, statement_body(DATASET, label, manifest))
    body = {"label": label, "meta": {}, "manifest": manifest.to_json(), "signed": signed}
    return Call("POST", f"/datasets/{DATASET}/versions", json=body)


def _publish_offer(w: World, m: Member) -> Call:
    now = datetime.now(UTC)
    body = licences.offer_body(
        offer_id=licences.new_offer_id(),
        dataset=DATASET,
        version=w.version,
        terms=TRAINING_NC,
        price=Price(3),
        valid_from=format_time(now),
        valid_until=None,
        buyer=None,
    )
    return Call("POST", "/offers", json=w.signed(m, licences.OFFER_PUBLISHED, body))


def _withdraw_fresh_offer(w: World, m: Member) -> Call:
    offer = w.market.offer(TRAINING_NC, 1)["id"]
    body = {"offer": offer, "reason": "authz"}
    return Call(
        "POST", f"/offers/{offer}/withdraw", json=w.signed(m, licences.OFFER_WITHDRAWN, body)
    )


def _accept_fresh_private_offer(w: World, m: Member) -> Call:
    """A fresh offer made to bob alone: the caller signs the agreement for itself."""
    offer = w.provider.client.offer(w.market.offer(TRAINING_NC, 1, buyer="bob")["id"])
    now = datetime.now(UTC)
    body = licences.agreement_body(
        offer,
        agreement_id=licences.new_agreement_id(),
        buyer=m.id,
        version=w.version,
        at=format_time(now),
    )
    signed = statement(licences.GRANTED, body, member=m.id, key=m.key, now=now).to_json()
    return Call("POST", f"/offers/{offer['id']}/accept", json=signed)


def _revoke_fresh_agreement(w: World, m: Member) -> Call:
    agreement = w.buyer.client.buy(w.market.offer(TRAINING_NC, 1)["id"])["id"]
    body = {"agreement": agreement, "reason": "authz"}
    return Call("POST", f"/licences/{agreement}/revoke", json=w.signed(m, licences.REVOKED, body))


def _cash(kind: str, entry_type: str) -> Builder:
    return signed_post(
        f"/accounts/{{w.buyer.id}}/{kind}",
        entry_type,
        lambda w, m: {"member": w.buyer.id, "amount": 1, "reference": "authz"},
    )


def _compliance(path: str, member: str | None) -> Builder:
    def build(w: World, m: Member) -> Call:
        return Call("POST", path, json={"manifest": w.training_manifest, "member": member})

    return build


def _attest(w: World, m: Member) -> Call:
    """The caller attests the manifest with the report of its own licences."""
    report = ComplianceReport.from_json(m.client.compliance_check(w.training_manifest))
    manifest = TrainingManifest.from_json(w.training_manifest)
    signed = w.signed(m, ATTESTED, attestation_body(manifest, report))
    return Call(
        "POST", "/compliance/attestations", json={"manifest": w.training_manifest, "signed": signed}
    )


def _deliver(w: World, m: Member) -> Call:
    return Call("POST", "/deliveries", json={"version": w.version, "purpose": "training"})


def _blob_digest(w: World) -> str:
    digest: str = w.market.published.version["files"][0]["sha256"]
    return digest


CASES: tuple[Case, ...] = (
    # members, keys, tokens
    Case("POST", "/members", statuses(403, operator=201), _register),
    Case("GET", "/members", MEMBERS, get("/members")),
    Case("GET", "/members/{member_id}", MEMBERS, get("/members/{w.provider.id}")),
    Case("GET", "/me", MEMBERS, get("/me")),
    Case(
        "POST",
        "/members/{member_id}/keys",
        statuses(403, provider=201),  # not even an operator adds a key to another member
        signed_post(
            "/members/{w.provider.id}/keys",
            "member.key.added",
            lambda w, m: _new_key_body(w.provider.id),
        ),
    ),
    Case(
        "POST",
        "/members/{member_id}/keys/revoke",
        statuses(403, provider=200, operator=200),
        _revoke_fresh_key,
    ),
    Case("POST", "/tokens", statuses(201), lambda w, m: Call("POST", "/tokens", json={})),
    Case("GET", "/tokens", MEMBERS, get("/tokens")),
    Case(
        "DELETE",
        "/tokens/{token_id}",
        statuses(404, provider=204, operator=204),
        _delete_fresh_token,
    ),
    # the ledger: reads are public, writes are signed
    Case("GET", "/ledger/checkpoint", EVERYONE, get("/ledger/checkpoint")),
    Case(
        "POST",
        "/ledger/checkpoint",
        statuses(403, operator=200),
        lambda w, m: Call("POST", "/ledger/checkpoint"),
    ),
    Case("GET", "/ledger/vkey", EVERYONE, get("/ledger/vkey")),
    Case("GET", "/ledger/tile/{path:path}", EVERYONE, get("/ledger/tile/0/000.p/1")),
    Case("GET", "/ledger/entries/{seq}", EVERYONE, get("/ledger/entries/0")),
    Case("GET", "/ledger/proof/inclusion", EVERYONE, get("/ledger/proof/inclusion", seq=0, size=1)),
    Case(
        "GET",
        "/ledger/proof/consistency",
        EVERYONE,
        get("/ledger/proof/consistency", size1=1, size2=2),
    ),
    Case("GET", "/ledger/proof/bundle/{seq}", EVERYONE, get("/ledger/proof/bundle/0")),
    # anchors: their state is public (it is on the chain); anchoring on demand is the
    # operator's (here the chain is off, so the operator passes the role check and gets 409)
    Case("GET", "/ledger/anchors", EVERYONE, get("/ledger/anchors")),
    Case(
        "POST",
        "/ledger/anchors",
        statuses(403, operator=409),
        lambda w, m: Call("POST", "/ledger/anchors"),
    ),
    Case(
        "POST",
        "/ledger/attest",
        statuses(201),
        signed_post("/ledger/attest", "attest.authz", lambda w, m: {"checked": True}),
    ),
    # blobs: providers upload; nobody else learns which blobs the exchange holds
    Case(
        "POST",
        "/blobs/missing",
        statuses(403, provider=200, other_provider=200),
        lambda w, m: Call("POST", "/blobs/missing", json={"digests": [_blob_digest(w)]}),
    ),
    Case(
        "HEAD",
        "/blobs/{digest}",
        statuses(403, provider=200, other_provider=200),
        lambda w, m: Call("HEAD", f"/blobs/{_blob_digest(w)}"),
    ),
    Case("PUT", "/blobs/{digest}", statuses(403, provider=201, other_provider=201), _upload),
    # the catalogue: public to members; a dataset is its provider's
    Case("GET", "/datasets", MEMBERS, get("/datasets")),
    Case("GET", "/datasets/{slug}", MEMBERS, get(f"/datasets/{DATASET}")),
    Case(
        "PATCH",
        "/datasets/{slug}",
        statuses(403, provider=200),
        lambda w, m: Call("PATCH", f"/datasets/{DATASET}", json={"title": "Cat facts"}),
    ),
    Case("POST", "/datasets/{slug}/versions", statuses(403, provider=201), _publish_version),
    Case(
        "POST",
        "/versions/{version_id}/clear",
        statuses(403, operator=200),
        signed_post(
            "/versions/{w.flagged_version}/clear",
            "dataset.version.cleared",
            lambda w, m: {"version": w.flagged_version, "reason": "licensed from acme"},
        ),
    ),
    Case("GET", "/versions/{version_id}", MEMBERS, get("/versions/{w.version}")),
    Case(
        "GET", "/versions/{version_id}/croissant", MEMBERS, get("/versions/{w.version}/croissant")
    ),
    Case(
        "GET",
        "/versions/{version_id}/proof",
        MEMBERS,
        get("/versions/{w.version}/proof", file="part-0.jsonl", record=0),
    ),
    Case("GET", "/versions/{version_id}/manifest", MEMBERS, get("/versions/{w.version}/manifest")),
    Case("GET", "/versions/{version_id}/lineage", MEMBERS, get("/versions/{w.version}/lineage")),
    Case(
        "GET",
        "/versions/{version_id}/lineage/prov",
        MEMBERS,
        get("/versions/{w.version}/lineage/prov"),
    ),
    # metadata-only listings: updated by whoever imported them, or an operator
    Case(
        "POST",
        "/listings/dpi",
        statuses(403, provider=200, operator=200),
        lambda w, m: Call("POST", "/listings/dpi", json={"summaries": DPI_CARD}),
    ),
    Case("GET", "/datasets/{slug}/listing", MEMBERS, get("/datasets/{w.listing}/listing")),
    # offers: a provider offers its own datasets; a private offer is invisible to others
    Case("POST", "/offers", statuses(403, provider=201), _publish_offer),
    Case("GET", "/offers", MEMBERS, get("/offers")),
    Case(
        "GET",
        "/offers/{offer_id}",
        statuses(404, operator=200, provider=200, buyer=200),
        get("/offers/{w.private_offer}"),
        "private",
    ),
    Case("GET", "/offers/{offer_id}", MEMBERS, get("/offers/{w.public_offer}"), "public"),
    Case(
        "GET",
        "/offers/{offer_id}/odrl",
        statuses(404, operator=200, provider=200, buyer=200),
        get("/offers/{w.private_offer}/odrl"),
    ),
    Case(
        "POST",
        "/offers/{offer_id}/withdraw",
        statuses(403, provider=200),
        _withdraw_fresh_offer,
    ),
    Case(
        "POST",
        "/offers/{offer_id}/accept",
        statuses(403, buyer=201, other_buyer=404),
        _accept_fresh_private_offer,
    ),
    # licences: to their two parties, operators and auditors
    Case("GET", "/licences", MEMBERS, get("/licences")),
    Case(
        "GET",
        "/licences",
        statuses(403, operator=200, buyer=200, auditor=200),
        get("/licences", member="bob"),
        "another member's",
    ),
    Case("GET", "/licences/{agreement_id}", PARTIES, get("/licences/{w.agreement}")),
    Case("GET", "/licences/{agreement_id}/odrl", PARTIES, get("/licences/{w.agreement}/odrl")),
    Case(
        "POST",
        "/licences/{agreement_id}/revoke",
        statuses(403, provider=200, other_provider=404),
        _revoke_fresh_agreement,
    ),
    Case(
        "GET", "/may", MEMBERS, get("/may", member="bob", version="{w.version}", purpose="training")
    ),
    # accounts: the member itself, operators and auditors; money moves only by an operator
    Case(
        "GET",
        "/accounts/{member_id}",
        statuses(403, operator=200, buyer=200, auditor=200),
        get("/accounts/{w.buyer.id}"),
    ),
    Case("GET", "/accounts", statuses(403, operator=200, auditor=200), get("/accounts")),
    Case(
        "POST",
        "/accounts/{member_id}/deposits",
        statuses(403, operator=201),
        _cash("deposits", "account.deposited"),
    ),
    Case(
        "POST",
        "/accounts/{member_id}/withdrawals",
        statuses(403, operator=201),
        _cash("withdrawals", "account.withdrawn"),
    ),
    # compliance: one's own training data (operators and auditors: anyone's)
    Case("POST", "/compliance/check", MEMBERS, _compliance("/compliance/check", None)),
    Case(
        "POST",
        "/compliance/check",
        statuses(403, operator=200, buyer=200, auditor=200),
        _compliance("/compliance/check", "bob"),
        "another member's",
    ),
    Case("POST", "/compliance/spdx", MEMBERS, _compliance("/compliance/spdx", None)),
    Case(
        "POST",
        "/compliance/spdx",
        statuses(403, operator=200, buyer=200, auditor=200),
        _compliance("/compliance/spdx", "bob"),
        "another member's",
    ),
    # another buyer cannot attest with bob's licences: its own cover nothing
    Case(
        "POST",
        "/compliance/attestations",
        statuses(403, buyer=201, other_buyer=409),
        _attest,
    ),
    Case("GET", "/compliance/attestations", MEMBERS, get("/compliance/attestations", member="bob")),
    Case(
        "GET",
        "/compliance/attestations/{seq}/bundle",
        MEMBERS,
        get("/compliance/attestations/{w.attestation}/bundle"),
    ),
    # delivery: to a licensed buyer; a receipt to its buyer, operators and auditors
    Case("POST", "/deliveries", statuses(403, buyer=201), _deliver),
    Case("GET", "/deliveries", MEMBERS, get("/deliveries")),
    Case(
        "GET",
        "/deliveries/{seq}/receipt",
        statuses(404, operator=200, buyer=200, auditor=200),
        get("/deliveries/{w.delivery}/receipt"),
    ),
    # the download URL is the capability (short-lived, HMAC-signed): no token needed
    Case("GET", "/downloads/{token}", EVERYONE, lambda w, m: Call("GET", w.download_path)),
    Case("GET", "/healthz", EVERYONE, get("/healthz")),
    Case("GET", "/healthz/live", EVERYONE, get("/healthz/live")),
)


# -- the tests ----------------------------------------------------------------------------------


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path template) the app serves, but FastAPI's own documentation pages.

    Recent FastAPI keeps included routers lazily (``app.routes`` holds the routers, not their
    routes); ``iter_route_contexts`` walks them. A mounted app has no methods: it counts as ``*``.
    """
    docs = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: list[Any] = list(walk(app.routes)) if walk is not None else list(app.routes)
    served: set[tuple[str, str]] = set()
    for route in routes:
        path = getattr(route, "path", None)
        assert path is not None, f"a route without a path: {route!r}"
        if path in docs:
            continue
        methods = set(getattr(route, "methods", None) or {"*"})
        if "GET" in methods:
            methods.discard("HEAD")  # Starlette answers HEAD for every GET route by itself
        served |= {(method, path) for method in methods}
    return served


def test_every_route_has_a_row(world: World) -> None:
    served = served_routes(world.live.app)
    rows = {(case.method, case.route) for case in CASES}
    missing = sorted(served - rows)
    assert not missing, (
        f"routes without a row in the authorisation table (tests/integration/"
        f"test_authorisation.py CASES): {missing}"
    )
    stale = sorted(rows - served)
    assert not stale, f"rows for routes the app does not serve: {stale}"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_each_caller_gets_the_expected_status(world: World, case: Case, caller: str) -> None:
    call = case.build(world, world.signer(caller))
    size = world.size()
    response = world.send(caller, call)
    expected = case.expected[caller]
    assert response.status_code == expected, (
        f"{case} as {caller}: expected {expected}, got {response.status_code}: "
        f"{response.text[:400]}"
    )
    if expected >= 400:
        assert world.size() == size, f"{case} as {caller} was refused but wrote to the ledger"
        if call.method != "HEAD":
            assert response.headers["content-type"].startswith(PROBLEM), response.headers


# -- statements signed by someone else, and what listings show ---------------------------------


def test_a_statement_signed_by_another_member_is_refused(world: World) -> None:
    """The token and the signature must name the same member, with one of its live keys."""
    acme, bob, operator = world.provider, world.buyer, world.members["operator"]
    size = world.size()
    attempts = [
        # acme's genuine statement, sent with bob's token
        (bob, statement("attest.x", {"a": 1}, member=acme.id, key=acme.key)),
        # the operator's genuine deposit to bob, replayed by bob himself
        (
            bob,
            statement(
                "account.deposited",
                {"member": bob.id, "amount": 10**6, "reference": "x"},
                member=operator.id,
                key=operator.key,
            ),
        ),
        # a statement naming acme but signed with bob's key, under acme's token (acme cannot be
        # made to say something by a key that is not acme's)
        (acme, statement("attest.x", {"a": 1}, member=acme.id, key=bob.key)),
    ]
    routes = {"attest.x": "/ledger/attest", "account.deposited": "/accounts/bob/deposits"}
    for caller, signed in attempts:
        path = routes[signed.statement.type]
        response = world.http.post(
            path, json=signed.to_json(), headers={"Authorization": f"Bearer {caller.token}"}
        )
        assert response.status_code == 403, (caller.id, path, response.text)
    # acme's key id on a statement signed by bob's key: the signature does not verify
    forged = statement("attest.x", {"a": 1}, member=acme.id, key=bob.key).to_json()
    forged["statement"]["key_id"] = key_id_for(raw_public_key(acme.key))
    response = world.http.post(
        "/ledger/attest", json=forged, headers={"Authorization": f"Bearer {acme.token}"}
    )
    assert response.status_code == 403 and "signature" in response.json()["detail"]
    assert world.size() == size


def test_listings_show_only_the_callers_own_private_resources(world: World) -> None:
    def ids(caller: str, path: str, key: str = "id") -> set[Any]:
        response = world.send(caller, Call("GET", path))
        assert response.status_code == 200, response.text
        return {item[key] for item in response.json()}

    for caller in ("provider", "buyer", "operator"):
        assert world.private_offer in ids(caller, "/offers"), caller
    for caller in ("other_provider", "other_buyer", "auditor"):
        assert world.private_offer not in ids(caller, "/offers"), caller
        assert world.public_offer in ids(caller, "/offers"), caller
    for caller in ("provider", "buyer"):
        assert world.agreement in ids(caller, "/licences"), caller
    for caller in ("other_provider", "other_buyer", "auditor", "operator"):
        assert world.agreement not in ids(caller, "/licences"), caller  # their own, by default
    assert world.delivery in ids("buyer", "/deliveries", "seq")
    for caller in ("provider", "other_buyer", "operator"):
        assert world.delivery not in ids(caller, "/deliveries", "seq"), caller
    acme_tokens = ids("provider", "/tokens")
    for caller in ("other_provider", "buyer", "operator"):
        assert not acme_tokens & ids(caller, "/tokens"), caller


def test_a_download_token_is_bound_to_its_claims(world: World) -> None:
    """Altering a claim breaks the HMAC; a token minted with another key is refused."""
    token = world.download_path.rsplit("/", 1)[-1]
    payload, mac = token.split(".")
    claims = json.loads(_unb64(payload))
    other = world.market.published.version["files"][1]
    claims |= {"n": other["name"], "h": other["sha256"], "s": other["size"]}
    altered = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    assert world.http.get(f"/downloads/{altered}.{mac}").status_code == 401
    forged = DownloadClaims(
        delivery=claims["d"],
        agreement=claims["a"],
        version=claims["v"],
        name=other["name"],
        sha256=other["sha256"],
        size=other["size"],
        expires=claims["e"],
    ).to_token(secrets.token_bytes(32))
    assert world.http.get(f"/downloads/{forged}").status_code == 401


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_a_statement_for_another_log_is_refused(world: World) -> None:
    """A statement names the log it is for: one signed for another exchange is not replayable
    here, even by its own signer."""
    bob = world.buyer
    signed = statement("attest.x", {"a": 1}, member=bob.id, key=bob.key, log="elsewhere.test/log")
    size = world.size()
    response = world.http.post(
        "/ledger/attest", json=signed.to_json(), headers={"Authorization": f"Bearer {bob.token}"}
    )
    assert response.status_code == 403 and "elsewhere.test/log" in response.json()["detail"]
    assert world.size() == size


def test_nobody_derives_under_another_members_licence(world: World) -> None:
    """umbra declares acme's version as its source under bob's agreement: refused, and nothing
    of the would-be version exists."""
    umbra = world.members["other_provider"]
    root = world.tmp / "umbra-derived"
    root.mkdir()
    lines = (world.tmp / "corpus" / "part-0.jsonl").read_text().splitlines()
    (root / "part-0.jsonl").write_text("\n".join(lines[:40]) + "\n")
    size = world.size()
    declared = Declared("filtered", ((world.version, world.agreement),))
    with pytest.raises(ClientError) as refused:
        publish_corpus(umbra.client, [root], slug="umbra-derived", workers=1, lineage=declared)
    assert refused.value.status == 403 and "not one of umbra's" in str(refused.value)
    assert world.size() == size
    assert world.send("other_provider", Call("GET", "/datasets/umbra-derived")).status_code == 404
