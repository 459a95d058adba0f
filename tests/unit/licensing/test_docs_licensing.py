"""The examples in docs/licensing.md, regenerated from the code: they cannot drift.

Run ``python -m tests.unit.licensing.test_docs_licensing`` to print the blocks afresh.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from licensing.odrl import Policy, from_jsonld, to_jsonld
from licensing.terms import Price, Terms

DOC = Path(__file__).resolve().parents[3] / "docs" / "licensing.md"
EXAMPLE = re.compile(r"<!-- example:([\w-]+) -->\n```[\w-]*\n(.*?)\n```", re.DOTALL)
VERSION = "sha256:" + "5e" * 32
TERMS = Terms(
    purposes=frozenset({"training", "evaluation"}),
    derivation=True,
    territories=frozenset({"DE", "FR"}),
    duration_days=365,
    attribution=("(c) Acme Corpora",),
    share_alike=True,
    licence="CC-BY-SA-4.0",
)
OFFER = Policy(
    kind="Offer",
    uid="urn:corpusx:offer:acme-news-2026",
    target=VERSION,
    terms=TERMS,
    assigner="acme",
    price=Price(1200),
    valid_until="2027-01-01T00:00:00.000Z",
)
AGREEMENT = Policy(
    kind="Agreement",
    uid="urn:corpusx:agreement:7f3a9c",
    target=VERSION,
    terms=TERMS,
    assigner="acme",
    assignee="builder-lab",
    price=Price(1200),
    valid_from="2026-03-01T09:30:00.000Z",
    valid_until="2027-03-01T09:30:00.000Z",
)


def blocks() -> dict[str, str]:
    return {
        "terms": json.dumps(TERMS.to_json(), indent=2, ensure_ascii=False),
        "offer": json.dumps(to_jsonld(OFFER), indent=2, ensure_ascii=False),
        "agreement": json.dumps(to_jsonld(AGREEMENT), indent=2, ensure_ascii=False),
    }


def test_every_example_is_what_the_code_writes() -> None:
    found = dict(EXAMPLE.findall(DOC.read_text(encoding="utf-8")))
    assert found == blocks()


def test_the_examples_read_back() -> None:
    found = dict(EXAMPLE.findall(DOC.read_text(encoding="utf-8")))
    assert Terms.from_json(json.loads(found["terms"])) == TERMS
    assert from_jsonld(found["offer"]) == OFFER
    assert from_jsonld(found["agreement"]) == AGREEMENT


if __name__ == "__main__":
    for name, text in blocks().items():
        print(f"<!-- example:{name} -->\n```json\n{text}\n```\n")
