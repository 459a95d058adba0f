"""The examples in docs/evaluation.md, regenerated from the code and compared.

Each ``<!-- example:NAME -->`` block in the document is what :func:`examples` produces; if the
engine, a message, a JSON form or the SPDX mapping changes, the test fails until the document is
updated (``python -m tests.unit.licensing.test_docs_evaluation`` prints the blocks afresh).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from licensing.compliance import TrainingManifest, check
from licensing.evaluation import Grant, GrantIndex, Use, may
from licensing.spdx import DatasetRef, spdx_ai_package
from licensing.terms import Terms

from .spdx_check import validate_spdx

DOC = Path(__file__).resolve().parents[3] / "docs" / "evaluation.md"
EXAMPLE = re.compile(r"<!-- example:([\w-]+) -->\n```[\w-]*\n(.*?)\n```", re.DOTALL)


def _id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


BOOKS = "sha256:" + _id("example version: books 2026-10")
NEWS = "sha256:" + _id("example version: news 2026-09")
WIKI = "sha256:" + _id("example version: wiki 2026-08")


def _grants() -> list[Grant]:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    return [
        Grant(
            "agr-0001",
            "acme",
            BOOKS,
            Terms(
                purposes=frozenset({"training", "evaluation"}),
                commercial=True,
                territories=frozenset({"DE", "FR"}),
                attribution=("(c) Acme Corpora",),
                licence="CC-BY-4.0",
            ),
            start,
            datetime(2027, 10, 1, tzinfo=UTC),
        ),
        Grant(
            "agr-0002",
            "acme",
            NEWS,
            Terms(purposes=frozenset({"research"})),
            start,
            None,
        ),
        Grant(
            "agr-0003",
            "acme",
            NEWS,
            Terms(commercial=True),
            start,
            None,
            datetime(2026, 11, 15, tzinfo=UTC),
            "payment reversed",
        ),
        Grant("pub-wiki", None, WIKI, Terms(commercial=True, licence="CC0-1.0"), start, None),
    ]


def _manifest() -> TrainingManifest:
    return TrainingManifest.from_json(
        {
            "model": "acme-7b",
            "purpose": "training",
            "commercial": True,
            "date": "2026-11-30T00:00:00.000Z",
            "territory": "DE",
            "data": [
                {"version": BOOKS},
                {"file": _id("a file of the news version")},
                {"document": _id("a document of the wiki version")},
                {"document": _id("a document from elsewhere")},
            ],
        }
    )


def examples() -> dict[str, Any]:
    grants = _grants()
    at = datetime(2026, 11, 30, tzinfo=UTC)
    permit = may(Use("acme", BOOKS, "training", True, "DE", at), grants)
    deny = may(Use("acme", NEWS, "training", True, "DE", at), grants)
    manifest = _manifest()
    items = manifest.items
    resolution = {items[0]: [BOOKS], items[1]: [NEWS], items[2]: [WIKI]}
    report = check(manifest, member="acme", resolution=resolution, grants=GrantIndex(grants))
    datasets = {
        BOOKS: DatasetRef(BOOKS, "books", "Books 2026-10", "acme-corpora", "CC-BY-4.0", None),
        WIKI: DatasetRef(WIKI, "wiki", "Wiki 2026-08", "wikico", "CC0-1.0", None),
    }
    spdx = spdx_ai_package(
        report,
        datasets=datasets,
        creator="Corpus Exchange",
        created=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        namespace="https://exchange.example/spdx/" + report.digest()[:16],
    )
    return {
        "decision-permit": permit.to_json(),
        "decision-deny": deny.to_json(),
        "manifest": manifest.to_json(),
        "manifest-sha256": manifest.digest(),
        "report": report.to_json(),
        "report-sha256": report.digest(),
        "spdx": spdx,
    }


def _render(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


@pytest.fixture(scope="module")
def blocks() -> dict[str, str]:
    found = dict(EXAMPLE.findall(DOC.read_text(encoding="utf-8")))
    assert len(found) == len(EXAMPLE.findall(DOC.read_text(encoding="utf-8"))), "a name twice"
    return found


def test_every_example_is_in_the_document(blocks: dict[str, str]) -> None:
    assert set(blocks) == set(examples())


@pytest.mark.parametrize("name", sorted(examples()))
def test_each_example_is_what_the_code_produces(blocks: dict[str, str], name: str) -> None:
    assert blocks[name] == _render(examples()[name])


def test_the_spdx_example_is_valid_spdx(blocks: dict[str, str]) -> None:
    validate_spdx(json.loads(blocks["spdx"]))


def test_the_digests_shown_are_of_the_blocks_shown(blocks: dict[str, str]) -> None:
    manifest = TrainingManifest.from_json(json.loads(blocks["manifest"]))
    assert manifest.digest() == blocks["manifest-sha256"]
    assert json.loads(blocks["report"])["manifest_sha256"] == blocks["manifest-sha256"]


if __name__ == "__main__":
    for example_name, example in examples().items():
        fence = "text" if isinstance(example, str) else "json"
        print(f"<!-- example:{example_name} -->\n```{fence}\n{_render(example)}\n```\n")
