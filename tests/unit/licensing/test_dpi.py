"""DPI dataset summaries: the five real samples read and classify as their licences say; lineage
carries classes through names, uids, collections and URLs, through cycles; bad files are named."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from licensing.classes import UseClass
from licensing.dpi import DpiClassification, DpiDataset, classify_collection, load_summaries
from licensing.errors import FormatError

SAMPLES = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "reference"
    / "dpi"
    / "data_summaries-sample"
)
C, U, N, A = (
    UseClass.COMMERCIAL,
    UseClass.UNSPECIFIED,
    UseClass.NON_COMMERCIAL,
    UseClass.ACADEMIC,
)


@pytest.fixture(scope="module")
def samples() -> list[DpiDataset]:
    return load_summaries(SAMPLES)


def test_every_sample_dataset_is_read(samples: list[DpiDataset]) -> None:
    assert [d.uid for d in samples] == [
        "10k Prompt Ranked",
        "AgentInstruct-alfworld",
        "AgentInstruct-webshop",
        "AgentInstruct-knowledgegraph",
        "AgentInstruct-operatingsystem",
        "AgentInstruct-database",
        "AgentInstruct-mind2web",
        "airoboros",
        "alpaca",
        "anthropic_hhrlhf",
    ]


def test_alpaca_is_read_field_by_field(samples: list[DpiDataset]) -> None:
    alpaca = next(d for d in samples if d.uid == "alpaca")
    assert alpaca.name == "alpaca" and alpaca.collection == "Alpaca"
    assert alpaca.licences == (
        ("OpenAI", "https://crfm.stanford.edu/2023/03/13/alpaca.html"),
        ("CC BY-NC 4.0", "https://github.com/tatsu-lab/stanford_alpaca/blob/main/DATA_LICENSE"),
    )
    assert alpaca.creators == ("Stanford University",)
    assert alpaca.languages == ("English",)
    assert alpaca.derived_from == ()
    assert set(alpaca.urls) == {"Dataset URL", "Hugging Face URL", "GitHub URL", "Collection URL"}


def test_a_missing_licence_url_is_none(samples: list[DpiDataset]) -> None:
    ranked = next(d for d in samples if d.uid == "10k Prompt Ranked")
    assert ranked.licences[0] == ("Unspecified", None)  # written "None" in the summary
    assert len(ranked.derived_from) == 9


# Read off each sample's "Licenses" and "Derived from Datasets" (none resolves within the five
# files): OpenAI terms are non-commercial in the DPI's table, "Various" academic-only, MIT
# commercial, and an unresolved source counts as unspecified.
EXPECTED = {
    "10k Prompt Ranked": (N, N),  # Unspecified + OpenAI; 9 Hugging Face sources not loaded
    "AgentInstruct-alfworld": (C, U),  # MIT x3; derived from ALFRED, not in the samples
    "AgentInstruct-webshop": (C, C),  # MIT, no sources
    "AgentInstruct-knowledgegraph": (U, U),  # Unspecified + CC BY 4.0
    "AgentInstruct-operatingsystem": (N, N),  # Unspecified + OpenAI
    "AgentInstruct-database": (N, N),  # Unspecified + OpenAI
    "AgentInstruct-mind2web": (N, N),  # CC BY 4.0 + OpenAI + Unspecified
    "airoboros": (A, A),  # Various (academic-only) + OpenAI
    "alpaca": (N, N),  # OpenAI + CC BY-NC 4.0
    "anthropic_hhrlhf": (C, C),  # MIT
}


def test_the_samples_classify_as_their_licences_say(samples: list[DpiDataset]) -> None:
    found = classify_collection(samples)
    assert {uid: (c.own, c.inherited) for uid, c in found.items()} == EXPECTED
    assert all(c.unknown_licences == () for c in found.values())
    assert found["AgentInstruct-alfworld"].unresolved_sources == ("ALFRED",)
    assert found["AgentInstruct-knowledgegraph"].unresolved_sources == (
        "GrailQA",
        "ComplexWebQuestions",
        "GraphQuestions",
    )
    assert found["alpaca"] == DpiClassification("alpaca", N, N, (), ())


def dataset(
    uid: str, licences: list[str], derived: Sequence[str] = (), **extra: Any
) -> dict[str, Any]:
    return {
        "Unique Dataset Identifier": uid,
        "Dataset Name": extra.pop("name", uid + " name"),
        "Collection": extra.pop("collection", "Synthetic"),
        "Languages": ["English"],
        "Creators": ["Test Lab"],
        "Licenses": [{"License": name, "License URL": extra.pop("url", "")} for name in licences],
        "Derived from Datasets": list(derived),
        **extra,
    }


def write(directory: Path, name: str, *rows: dict[str, Any]) -> None:
    content = {row["Unique Dataset Identifier"]: row for row in rows}
    (directory / name).write_text(json.dumps(content), encoding="utf-8")


def classes(directory: Path) -> dict[str, DpiClassification]:
    return classify_collection(load_summaries(directory))


def test_lineage_through_names_uids_collections_and_urls(tmp_path: Path) -> None:
    write(
        tmp_path,
        "base.json",
        dataset("base-nc", ["CC BY-NC 4.0"], name="Base NC"),
        dataset(
            "base-mit",
            ["MIT License"],
            **{"Hugging Face URL": "https://huggingface.co/datasets/org/base"},
        ),
    )
    write(
        tmp_path,
        "derived.json",
        dataset("by-name", ["MIT License"], ["base nc"]),
        dataset("by-uid", ["MIT License"], ["base-mit"]),
        dataset("by-url", ["MIT License"], ["huggingface.co/datasets/org/base"]),
        dataset("by-collection", ["Apache License 2.0"], ["Synthetic"], collection="Other"),
        dataset("grandchild", ["MIT License"], ["by-name"], collection="Other"),
    )
    found = classes(tmp_path)
    assert (found["by-name"].own, found["by-name"].inherited) == (C, N)
    assert (found["by-uid"].own, found["by-uid"].inherited) == (C, C)
    assert found["by-url"].inherited == C and found["by-url"].unresolved_sources == ()
    # A collection name stands for every dataset in it, the non-commercial one included.
    assert found["by-collection"].inherited == N
    assert (found["grandchild"].own, found["grandchild"].inherited) == (C, N)


def test_cycles_end_and_share_the_strictest_class(tmp_path: Path) -> None:
    write(
        tmp_path,
        "cycle.json",
        dataset("a", ["MIT License"], ["b"]),
        dataset("b", ["MIT License"], ["c"]),
        dataset("c", ["Academic Research Purposes Only"], ["a"]),
        dataset("d", ["MIT License"], ["a"]),
        dataset("self", ["MIT License"], ["self", "Synthetic"], collection="Lonely"),
    )
    found = classes(tmp_path)
    assert [found[uid].inherited for uid in "abcd"] == [A, A, A, A]
    assert [found[uid].own for uid in "abcd"] == [C, C, A, C]
    # A dataset naming itself (or its own collection) does not count as an unresolved source.
    assert found["self"].unresolved_sources == () and found["self"].inherited == A


def test_unresolved_sources_count_as_unspecified(tmp_path: Path) -> None:
    write(
        tmp_path,
        "x.json",
        dataset("orphan", ["MIT License"], ["Some Dataset Nobody Loaded"]),
        dataset("child", ["MIT License"], ["orphan"]),
        dataset("nc-orphan", ["CC BY-NC 4.0"], ["Elsewhere"]),
    )
    found = classes(tmp_path)
    assert found["orphan"].inherited == U
    assert found["orphan"].unresolved_sources == ("Some Dataset Nobody Loaded",)
    assert found["child"].inherited == U and found["child"].unresolved_sources == ()
    assert found["nc-orphan"].inherited == N  # non-commercial already ranks above unspecified


def test_unknown_and_custom_licences(tmp_path: Path) -> None:
    write(
        tmp_path,
        "licences.json",
        dataset("unknown", ["MIT License", "The Frobnicator Licence"]),
        dataset("custom-known", ["Custom"], url="https://microsoft.github.io/msmarco/"),
        dataset("custom-unknown", ["Custom"], url="https://example.org/terms"),
        dataset("paraphrase", ["cc-by-nc-4.0"]),
        dataset("none", []),
    )
    found = classes(tmp_path)
    assert found["unknown"].own == U
    assert found["unknown"].unknown_licences == ("The Frobnicator Licence",)
    assert found["custom-known"].own == N and found["custom-known"].unknown_licences == ()
    assert found["custom-unknown"].own == A
    assert found["custom-unknown"].unknown_licences == ("Custom <https://example.org/terms>",)
    assert found["paraphrase"].own == N
    assert found["none"].own == U


def test_template_files_are_skipped(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "Alpaca.json", tmp_path / "Alpaca.json")
    shutil.copy(SAMPLES / "_template_spec.yaml", tmp_path / "_template_spec.yaml")
    (tmp_path / "_template.json").write_text('{"x": 1}', encoding="utf-8")
    assert [d.uid for d in load_summaries(tmp_path)] == ["alpaca"]


def _row(**change: Any) -> dict[str, Any]:
    row = dataset("ds-1", ["MIT License"])
    for key, value in change.items():
        if value is None:
            row.pop(key)
        else:
            row[key] = value
    return row


MALFORMED: list[tuple[str, str, str]] = [
    ("not JSON", "{oops", "bad.json: not a JSON file"),
    ("not an object", "[1, 2]", "bad.json: a DPI summary is an object of datasets keyed by uid"),
    ("dataset not an object", '{"ds-1": 3}', "bad.json: dataset 'ds-1': must be an object"),
    (
        "uid mismatch",
        json.dumps({"ds-1": _row(**{"Unique Dataset Identifier": "ds-2"})}),
        "bad.json: dataset 'ds-1': 'Unique Dataset Identifier' must repeat its key",
    ),
    (
        "no name",
        json.dumps({"ds-1": _row(**{"Dataset Name": None})}),
        "bad.json: dataset 'ds-1': 'Dataset Name' must be a non-empty string",
    ),
    (
        "licences not a list",
        json.dumps({"ds-1": _row(Licenses="MIT")}),
        "bad.json: dataset 'ds-1': 'Licenses' must be a list",
    ),
    (
        "licence without a name",
        json.dumps({"ds-1": _row(Licenses=[{"License URL": "https://x"}])}),
        "bad.json: dataset 'ds-1': each licence needs a 'License' name",
    ),
    (
        "languages not a list",
        json.dumps({"ds-1": _row(Languages="English")}),
        "bad.json: dataset 'ds-1': 'Languages' must be a list of strings",
    ),
    (
        "derived from not strings",
        json.dumps({"ds-1": _row(**{"Derived from Datasets": [{"name": "x"}]})}),
        "bad.json: dataset 'ds-1': 'Derived from Datasets' must be a list of strings",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_files_name_the_file_and_dataset(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.json").write_text(text, encoding="utf-8")
    with pytest.raises(FormatError) as raised:
        load_summaries(tmp_path)
    assert message in str(raised.value)


def test_a_uid_in_two_files_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.json", dataset("same", ["MIT License"]))
    write(tmp_path, "b.json", dataset("same", ["MIT License"]))
    with pytest.raises(FormatError, match=re.escape("b.json: dataset 'same' is also in a.json")):
        load_summaries(tmp_path)


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="is not a directory of DPI summaries"):
        load_summaries(tmp_path / "nowhere")
