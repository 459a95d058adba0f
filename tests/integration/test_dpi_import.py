"""Importing Data Provenance Initiative dataset cards as classified, metadata-only listings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from exchange.client import ClientError, ExchangeClient
from licensing.dpi import classify_collection, datasets_from_summary, load_summaries
from tests.conftest import PROJECT, LiveServer
from tests.integration.helpers import Member, register

SAMPLES = PROJECT.parent / "shared" / "reference" / "dpi" / "data_summaries-sample"


def _summaries(directory: Path) -> dict[str, Any]:
    return {
        p.name: json.loads(p.read_text())
        for p in sorted(directory.glob("*.json"))
        if not p.name.startswith("_")
    }


def _derived() -> dict[str, Any]:
    """A card of our own making: a dataset built from Alpaca (non-commercial) and HH-RLHF."""
    row = {
        "Unique Dataset Identifier": "cats-instruct",
        "Dataset Name": "cats-instruct",
        "Collection": "Cats",
        "Languages": ["English"],
        "Creators": ["Acme Corpora"],
        "Licenses": [{"License": "Apache License 2.0", "License URL": ""}],
        "Derived from Datasets": ["alpaca", "anthropic_hhrlhf", "a dataset nobody listed"],
    }
    return {"Cats.json": {"cats-instruct": row}}


@pytest.fixture
def importer(live_server: LiveServer) -> Member:
    with live_server.operator() as operator:
        return register(operator, live_server.url, "curator", ["provider"])


def _classes(result: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {r["uid"]: (r["own"], r["inherited"]) for r in result}


def test_samples_are_listed_with_their_licences_and_classes(importer: Member) -> None:
    client: ExchangeClient = importer.client
    result = client.import_dpi(_summaries(SAMPLES))
    expected = classify_collection(load_summaries(SAMPLES))
    assert _classes(result) == {u: (c.own.value, c.inherited.value) for u, c in expected.items()}
    assert _classes(result)["alpaca"] == ("non-commercial", "non-commercial")

    alpaca = next(r for r in result if r["uid"] == "alpaca")
    listing = client.listing(alpaca["slug"])
    assert [licence["name"] for licence in listing["licences"]] == ["OpenAI", "CC BY-NC 4.0"]
    assert listing["creators"] == ["Stanford University"]
    shown = client.dataset(alpaca["slug"])
    assert shown["versions"] == [] and "CC BY-NC 4.0" in shown["licence_summary"]
    assert "dpi" in shown["tags"]
    found = client.search(q="alpaca")
    assert alpaca["slug"] in [d["slug"] for d in found["datasets"]]


def test_lineage_is_classified_the_same_whatever_the_import_order(
    importer: Member, live_server: LiveServer
) -> None:
    derived_first = importer.client.import_dpi(_derived())
    assert _classes(derived_first)["cats-instruct"] == ("commercial", "unspecified")
    importer.client.import_dpi(_summaries(SAMPLES))
    slug = derived_first[0]["slug"]
    listing = importer.client.listing(slug)
    # Alpaca arrived: what cats-instruct inherits is now known, and it is non-commercial.
    assert (listing["use_class"], listing["inherited_use_class"]) == (
        "commercial",
        "non-commercial",
    )
    links = {link["name"]: link["dataset"] for link in listing["derived_from"]}
    assert links["a dataset nobody listed"] is None and links["alpaca"] is not None
    assert listing["unresolved_sources"] == ["a dataset nobody listed"]

    together = [
        *load_summaries(SAMPLES),
        *datasets_from_summary("Cats.json", _derived()["Cats.json"]),
    ]
    whole = classify_collection(together)["cats-instruct"]
    assert (whole.own.value, whole.inherited.value) == ("commercial", "non-commercial")

    again = importer.client.import_dpi(_derived())  # idempotent: the same listing, updated
    assert again[0]["slug"] == slug and _classes(again)["cats-instruct"][1] == "non-commercial"


def test_bad_cards_and_wrong_roles_are_refused(importer: Member, live_server: LiveServer) -> None:
    bad = {"Bad.json": {"x": {"Unique Dataset Identifier": "y"}}}
    with pytest.raises(ClientError) as refused:
        importer.client.import_dpi(bad)
    assert refused.value.status == 422 and "Bad.json" in str(refused.value)
    with live_server.operator() as operator:
        buyer = register(operator, live_server.url, "bob", ["buyer"])
    with pytest.raises(ClientError) as forbidden:
        buyer.client.import_dpi(_derived())
    assert forbidden.value.status == 403
    assert importer.client.search(q="cats")["total"] == 0
