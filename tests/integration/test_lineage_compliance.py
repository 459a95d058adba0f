"""Derived versions carry their sources' terms; training data is checked against licences and
attested, and the attestation verifies offline with the log's key alone."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import rdflib

from exchange.client import ClientError
from exchange.published import Declared
from exchange.publisher import publish_corpus
from ledger.entry import format_time
from ledger.errors import VerificationError
from licensing.attestation import verify_attestation_bundle
from licensing.terms import Terms
from tests.conftest import LiveServer
from tests.integration.helpers import Member, register
from tests.integration.market import TRAINING_NC, Market, open_market


@pytest.fixture
def market(live_server: LiveServer, tmp_path: Path) -> Market:
    return open_market(live_server, tmp_path)


def _filtered_copy(tmp_path: Path, market: Market) -> Path:
    """A 'filtered' corpus: most of acme's documents, as a deriver would make."""
    source = (tmp_path / "corpus" / "part-0.jsonl").read_text().splitlines()
    root = tmp_path / "filtered"
    root.mkdir(exist_ok=True)
    (root / "part-0.jsonl").write_text("\n".join(source[:50]) + "\n")
    return root


def _deriver(market: Market, live: LiveServer, credits: int = 1_000) -> Member:
    bravo = register(market.operator, live.url, "bravo", ["provider", "buyer"])
    market.operator.deposit("bravo", credits, "wire 2026-010")
    return bravo


def test_a_derived_version_inherits_its_sources_terms(
    market: Market, live_server: LiveServer, tmp_path: Path
) -> None:
    derivable = Terms(
        purposes=frozenset({"training", "evaluation"}),
        derivation=True,
        redistribution=True,
        attribution=("Cat facts (c) Acme",),
    )
    bravo = _deriver(market, live_server)
    agreement = bravo.client.buy(market.offer(derivable, 100)["id"])
    declared = Declared("filtered", ((market.version, agreement["id"]),))
    derived = publish_corpus(
        bravo.client, [_filtered_copy(tmp_path, market)], slug="cats-filtered", lineage=declared
    )
    version = derived.version
    # It overlaps its declared source almost entirely, but that is what lineage says: not held.
    assert version["status"] == "published"
    assert market.version in version["stats"]["overlap"]["declared_sources"]
    entry = market.entry(version["published_seq"])
    assert entry.statement.body["derived_from"] == [
        {"version": market.version, "agreement": agreement["id"]}
    ]
    shown = bravo.client.lineage(version["id"])
    inherited = Terms.from_json(shown["inherited_terms"])
    assert inherited.attribution == ("Cat facts (c) Acme",) and not inherited.commercial
    assert market.acme.client.lineage(market.version)["derived"] == [version["id"]]

    # Offers must carry the restrictions over.
    looser = Terms(purposes=frozenset({"training"}), commercial=True)
    with pytest.raises(ClientError) as refused:
        bravo.client.publish_offer(
            dataset="cats-filtered", version=version["id"], terms=looser, price=_price(5)
        )
    assert refused.value.status == 403 and "looser" in str(refused.value)
    carried = Terms(purposes=frozenset({"training"}), attribution=("Cat facts (c) Acme",))
    offer = bravo.client.publish_offer(
        dataset="cats-filtered", version=version["id"], terms=carried, price=_price(5)
    )
    assert offer["status"] == "open"

    turtle = bravo.client.lineage_prov(version["id"], "turtle")
    graph = rdflib.Graph().parse(data=turtle, format="turtle")
    derived_from = rdflib.URIRef("http://www.w3.org/ns/prov#wasDerivedFrom")
    assert len(list(graph.triples((None, derived_from, None)))) == 1
    assert json.loads(bravo.client.lineage_prov(version["id"], "json"))


def _price(amount: int) -> Any:
    from licensing.terms import Price

    return Price(amount)


def test_derivation_is_refused_when_a_source_forbids_it(
    market: Market, live_server: LiveServer, tmp_path: Path
) -> None:
    bravo = _deriver(market, live_server)
    agreement = bravo.client.buy(market.offer(TRAINING_NC, 100)["id"])  # no derivation
    size = market.size()
    declared = Declared("filtered", ((market.version, agreement["id"]),))
    with pytest.raises(ClientError) as refused:
        publish_corpus(
            bravo.client, [_filtered_copy(tmp_path, market)], slug="cats-filtered", lineage=declared
        )
    assert refused.value.status == 403 and "deriv" in str(refused.value)
    assert market.size() == size
    with pytest.raises(ClientError) as missing:
        bravo.client.dataset("cats-filtered")
    assert missing.value.status == 404

    # Without naming the agreement, another provider's version is no source at all.
    with pytest.raises(ClientError) as unnamed:
        publish_corpus(
            bravo.client,
            [_filtered_copy(tmp_path, market)],
            slug="cats-filtered",
            lineage=Declared("filtered", ((market.version, None),)),
        )
    assert unnamed.value.status == 403 and "name the agreement" in str(unnamed.value)


def test_a_source_that_forbids_redistribution_keeps_the_derived_version_off_the_market(
    market: Market, live_server: LiveServer, tmp_path: Path
) -> None:
    in_house = Terms(purposes=frozenset({"training"}), derivation=True)
    bravo = _deriver(market, live_server)
    agreement = bravo.client.buy(market.offer(in_house, 100)["id"])
    derived = publish_corpus(
        bravo.client,
        [_filtered_copy(tmp_path, market)],
        slug="cats-filtered",
        lineage=Declared("deduplicated", ((market.version, agreement["id"]),)),
    )
    with pytest.raises(ClientError) as refused:
        bravo.client.publish_offer(
            dataset="cats-filtered",
            version=derived.version["id"],
            terms=Terms(purposes=frozenset({"training"})),
            price=_price(1),
        )
    assert refused.value.status == 403 and "redistribution" in str(refused.value)


# -- compliance ---------------------------------------------------------------------------------


def _documents(tmp_path: Path) -> list[str]:
    """Document hashes of acme's corpus: a JSONL document is its text field's UTF-8 bytes
    (docs/catalog.md §3)."""
    lines = (tmp_path / "corpus" / "part-0.jsonl").read_text().splitlines()
    return [hashlib.sha256(json.loads(line)["text"].encode()).hexdigest() for line in lines]


def _manifest(market: Market, items: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    return {
        "model": "bob-7b",
        "purpose": "training",
        "commercial": False,
        "date": format_time(datetime.now(UTC) + timedelta(minutes=1)),
        "data": items,
        **extra,
    }


def test_compliance_check_says_per_item_what_covers_it_or_why_not(
    market: Market, tmp_path: Path
) -> None:
    files = {f["name"]: f["sha256"] for f in market.published.version["files"]}
    documents = _documents(tmp_path)
    items = [
        {"version": market.version},
        {"file": files["part-0.jsonl"]},
        {"document": documents[3]},
        {"document": "00" * 32},
    ]
    before = market.bob.client.compliance_check(_manifest(market, items))
    statuses = [v["status"] for v in before["items"]]
    assert statuses == ["not_covered", "not_covered", "not_covered", "unknown"]
    assert before["compliant"] is False

    agreement = market.bob.client.buy(market.offer(TRAINING_NC, 100)["id"])
    report = market.bob.client.compliance_check(_manifest(market, items))
    assert [v["status"] for v in report["items"]] == ["covered"] * 3 + ["unknown"]
    assert {v["agreement"] for v in report["items"][:3]} == {agreement["id"]}
    commercial = market.bob.client.compliance_check(_manifest(market, items[:3], commercial=True))
    assert {v["status"] for v in commercial["items"]} == {"commercial"}
    late = _manifest(market, items[:1], date=format_time(datetime.now(UTC) + timedelta(days=31)))
    assert market.bob.client.compliance_check(late)["items"][0]["status"] == "expired"

    # Not compliant: no attestation is recorded.
    size = market.size()
    with pytest.raises(ClientError) as refused:
        market.bob.client.attest_training(_manifest(market, items))
    assert refused.value.status == 409 and "not covered" in str(refused.value)
    assert market.size() == size
    # A manifest naming the data badly is a clear error.
    with pytest.raises(ClientError) as bad:
        market.bob.client.compliance_check(_manifest(market, [{"file": "xyz"}]))
    assert bad.value.status == 422


def test_an_attestation_verifies_offline_and_tampering_is_caught(
    market: Market, tmp_path: Path
) -> None:
    files = {f["name"]: f["sha256"] for f in market.published.version["files"]}
    market.bob.client.buy(market.offer(TRAINING_NC, 100)["id"])
    items = [{"file": files["part-0.jsonl"]}, {"document": _documents(tmp_path)[0]}]
    manifest = _manifest(market, items)
    attested = market.bob.client.attest_training(manifest)
    entry = market.entry(attested["seq"])
    assert entry.statement.type == "model.training.attested" and entry.statement.member == "bob"
    assert entry.statement.body["items"] == 2 and entry.statement.body["agreements"] == 1

    bundle = market.audrey.client.attestation_bundle(attested["seq"])
    vkey = market.operator.vkey()
    verified = verify_attestation_bundle(bundle, log_vkey=vkey)
    assert verified.member == "bob" and verified.model == "bob-7b" and verified.items == 2

    tampered = json.loads(json.dumps(bundle))
    tampered["manifest"]["commercial"] = True
    with pytest.raises(VerificationError):
        verify_attestation_bundle(tampered, log_vkey=vkey)
    dropped = json.loads(json.dumps(bundle))
    dropped["agreements"] = []
    with pytest.raises(VerificationError, match="relies on agreements"):
        verify_attestation_bundle(dropped, log_vkey=vkey)

    spdx = market.bob.client.compliance_spdx(manifest)
    relationships = [e for e in spdx["@graph"] if e.get("type") == "Relationship"]
    assert any(r.get("relationshipType") == "trainedOn" for r in relationships)


def test_only_the_member_or_auditors_check_someone_s_training_data(market: Market) -> None:
    manifest = _manifest(market, [{"version": market.version}])
    assert market.audrey.client.compliance_check(manifest, member="bob")["member"] == "bob"
    with pytest.raises(ClientError) as refused:
        market.carol.client.compliance_check(manifest, member="bob")
    assert refused.value.status == 403
