"""docs/catalog.md's worked example and rule tables, re-checked against the catalog package."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from catalog import VersionManifest, ingest_file
from catalog.language import _SCRIPTS, _STOP_WORDS
from ledger.merkle import leaf_hash, node_hash

DOC = (Path(__file__).resolve().parents[3] / "docs" / "catalog.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = DOC.index(f"## {title}")
    return DOC[start : DOC.index("\n## ", start + 1)]


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, VersionManifest]:
    text = section("10. Worked example")
    lines = code_blocks(text)[0].splitlines()
    data = b"".join(line.removesuffix("\\n").encode() + b"\n" for line in lines)
    path = tmp_path_factory.mktemp("example") / "a.jsonl"
    path.write_bytes(data)
    assert f"of {len(data)} bytes" in text
    return text, VersionManifest.build([ingest_file(path, name="a.jsonl")])


def test_documents_hashes_and_leaves(example: tuple[str, VersionManifest]) -> None:
    text, manifest = example
    rows = re.findall(
        r"^\| (\d) \| `([0-9a-f]+)` \| `([0-9a-f]{64})` \| `([0-9a-f]{64})` \|$", text, re.M
    )
    assert len(rows) == manifest.records == 3
    leaves = []
    for index, (record, document, digest, leaf) in enumerate(rows):
        assert int(record) == index
        assert hashlib.sha256(bytes.fromhex(document)).hexdigest() == digest
        assert leaf_hash(bytes.fromhex(digest)).hex() == leaf
        leaves.append(bytes.fromhex(leaf))
    root = node_hash(node_hash(leaves[0], leaves[1]), leaves[2]).hex()
    assert f"Document root `{root}`" in text
    assert manifest.files[0].document_root == root


def test_manifest_version_id_entry_and_root(example: tuple[str, VersionManifest]) -> None:
    text, manifest = example
    blocks = code_blocks(text)
    assert blocks[1].strip() == manifest.canonical.decode()
    assert f"Version id `{manifest.version_id}`" in text
    assert blocks[2].strip() == manifest.files[0].entry.leaf_data().decode()
    assert f"its leaf) `{manifest.manifest_root}`" in text


def test_script_table_matches_the_code() -> None:
    rows = re.findall(r"^   \| `([A-Z][a-z]{3})` \| `([^`]+)` \|$", section("5. Statistics"), re.M)
    documented = [(code, ranges.encode().decode("unicode_escape")) for code, ranges in rows]
    assert documented == list(_SCRIPTS)


def test_stop_word_table_matches_the_code() -> None:
    rows = re.findall(
        r"^   \| `([a-z]{2})` \| (Latn|Cyrl) \| ([^|]+) \|$", section("5. Statistics"), re.M
    )
    documented = {(script, code): frozenset(words.split()) for code, script, words in rows}
    expected = {
        (script, code): words
        for script, langs in _STOP_WORDS.items()
        for code, words in langs.items()
    }
    assert documented == expected
