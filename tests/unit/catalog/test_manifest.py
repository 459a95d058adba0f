"""Manifests: strict JSON, canonical bytes, version id, manifest root, file proofs, diff."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from catalog import (
    FileEntry,
    ManifestError,
    ProofError,
    VersionManifest,
    diff,
    file_inclusion_proof,
    ingest,
    verify_file_inclusion,
)
from ledger.merkle import leaf_hash, tree_root
from tests.unit.catalog.corpora import texts, write_bytes, write_jsonl, write_parquet


def make_corpus(root: Path, files: int = 5) -> VersionManifest:
    for i in range(files):
        write_jsonl(root / f"part-{i}.jsonl", [{"text": t} for t in texts(10 + i)])
    return ingest(root, workers=1)


@pytest.fixture
def manifest(tmp_path: Path) -> VersionManifest:
    return make_corpus(tmp_path / "c")


def test_version_id_is_sha256_of_the_rfc8785_manifest(manifest: VersionManifest) -> None:
    canonical = rfc8785.dumps(manifest.to_json())
    assert manifest.canonical == canonical
    assert manifest.version_id == "sha256:" + hashlib.sha256(canonical).hexdigest()
    assert manifest.to_json()["format"] == "corpusx/version-manifest@v1"


def test_manifest_root_over_canonical_file_entries(manifest: VersionManifest) -> None:
    leaves = []
    for f in manifest.to_json()["files"]:
        entry = {k: f[k] for k in FileEntry.KEYS}
        assert set(f) == {*FileEntry.KEYS, "stats", "schema"}
        leaves.append(leaf_hash(rfc8785.dumps(entry)))
    assert manifest.manifest_root == tree_root(leaves).hex()


def test_file_inclusion_proofs(manifest: VersionManifest) -> None:
    for f in manifest.files:
        proof = file_inclusion_proof(manifest, f.name)
        proof.verify(manifest.manifest_root)
        assert (proof.size, proof.entry) == (len(manifest.files), f.entry)
    proof = file_inclusion_proof(manifest, "part-2.jsonl")
    forged = FileEntry.from_json({**proof.entry.to_json(), "records": proof.entry.records + 1})
    with pytest.raises(ProofError, match=r"part-2\.jsonl"):
        verify_file_inclusion(
            forged,
            index=proof.index,
            size=proof.size,
            proof=proof.proof,
            root=manifest.manifest_root,
        )
    with pytest.raises(ProofError):
        verify_file_inclusion(
            proof.entry,
            index=proof.index + 1,
            size=proof.size,
            proof=proof.proof,
            root=manifest.manifest_root,
        )
    with pytest.raises(ManifestError, match="no file"):
        file_inclusion_proof(manifest, "nope.jsonl")


def test_round_trip_and_strictness(manifest: VersionManifest) -> None:
    data = manifest.to_json()
    assert VersionManifest.from_json(copy.deepcopy(data)) == manifest

    def mutated(change: Any) -> dict[str, Any]:
        value = copy.deepcopy(data)
        change(value)
        return value

    f0 = lambda v: v["files"][0]  # noqa: E731
    bad = [
        lambda v: v.update(format="corpusx/version-manifest@v2"),
        lambda v: v.update(extra=1),
        lambda v: v.pop("files"),
        lambda v: v["files"].reverse(),
        lambda v: v["files"].append(copy.deepcopy(v["files"][0])),
        lambda v: f0(v).update(size=-1),
        lambda v: f0(v).update(size=True),
        lambda v: f0(v).update(records="3"),
        lambda v: f0(v).update(sha256="AB" * 32),
        lambda v: f0(v).update(document_root="00"),
        lambda v: f0(v).update(media_type="text/plain"),
        lambda v: f0(v).update(document_rule="line"),
        lambda v: f0(v).update(name="../x.jsonl"),
        lambda v: f0(v).update(name="x.csv"),
        lambda v: f0(v).update(unknown=None),
        lambda v: f0(v)["stats"].update(estimated_tokens=1),
        lambda v: f0(v)["stats"].update(language_sample=1000),
        lambda v: f0(v)["stats"].update(languages={"EN!": 1}),
        lambda v: f0(v)["stats"].update(characters=10**9),
        lambda v: f0(v)["stats"].pop("languages"),
        lambda v: f0(v).update(schema={}),
        lambda v: f0(v)["schema"].append({"name": "x"}),
    ]
    for change in bad:
        with pytest.raises(ManifestError):
            VersionManifest.from_json(mutated(change))


def test_from_bytes_is_strict_json(manifest: VersionManifest) -> None:
    text = json.dumps(manifest.to_json())
    assert VersionManifest.from_bytes(text.encode()) == manifest
    with pytest.raises(ManifestError):
        VersionManifest.from_bytes(b'{"format": 1, "format": 2}')
    with pytest.raises(ManifestError):
        VersionManifest.from_bytes(b"not json")


def test_totals(manifest: VersionManifest) -> None:
    assert manifest.records == sum(10 + i for i in range(5))
    assert manifest.size == sum(f.size for f in manifest.files)
    assert manifest.estimated_tokens == sum(f.stats.estimated_tokens for f in manifest.files)


def test_diff(tmp_path: Path) -> None:
    root = tmp_path / "c"
    old = make_corpus(root, files=4)
    (root / "part-0.jsonl").unlink()
    write_jsonl(root / "part-1.jsonl", [{"text": t} for t in texts(30)])
    (root / "part-2.jsonl").rename(root / "renamed.jsonl")
    write_parquet(root / "new.parquet", {"text": ["a", "b"]})
    new = ingest(root, workers=1)
    change = diff(old, new)
    assert [f.name for f in change.added] == ["new.parquet"]
    assert [f.name for f in change.removed] == ["part-0.jsonl"]
    assert [(c.name, c.record_delta) for c in change.changed] == [("part-1.jsonl", 30 - 11)]
    assert [(a.name, b.name) for a, b in change.renamed] == [("part-2.jsonl", "renamed.jsonl")]
    assert change.unchanged == ("part-3.jsonl",)
    assert change.records_added == 2 + 19
    assert change.records_removed == 10
    assert not change.is_empty
    assert diff(new, new).is_empty


def test_media_type_and_rule_must_fit_the_name() -> None:
    entry = {
        "name": "a.txt.gz",
        "size": 1,
        "media_type": "text/plain+gzip",
        "sha256": "0" * 64,
        "records": 0,
        "document_root": "0" * 64,
        "document_rule": "file",
    }
    assert FileEntry.from_json(entry).leaf_data() == rfc8785.dumps(entry)
    for change in ({"media_type": "text/plain"}, {"document_rule": "field:text"}):
        with pytest.raises(ManifestError):
            FileEntry.from_json({**entry, **change})


def test_single_file_manifest_root_is_its_leaf(tmp_path: Path) -> None:
    write_bytes(tmp_path / "a.txt", b"x\n")
    manifest = ingest(tmp_path, workers=1)
    leaf = leaf_hash(manifest.files[0].entry.leaf_data())
    assert manifest.manifest_root == leaf.hex()
    assert file_inclusion_proof(manifest, "a.txt").proof == ()
