"""Document proof bundles: built from the files, verified offline, broken by any tampering."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from catalog import (
    CatalogError,
    ClaimMismatchError,
    DocumentBundle,
    FileEntry,
    ManifestError,
    ProofError,
    VersionManifest,
    ingest,
    prove_document,
    verify_document_bundle,
)
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.entry import Entry, Statement, key_id_for, sign_statement
from ledger.merkle import NodeID, inclusion_proof, tree_root
from ledger.note import Ed25519Signer
from ledger.proofbundle import ProofBundle
from tests.unit.catalog.corpora import texts, write_bytes, write_jsonl, write_parquet

ORIGIN = "catalog.test/log"
DOCUMENTS = texts(5000)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, VersionManifest]:
    root = tmp_path_factory.mktemp("corpus")
    write_jsonl(root / "web" / "a.jsonl.gz", [{"text": t} for t in DOCUMENTS], "gzip")
    write_parquet(root / "b.parquet", {"text": DOCUMENTS[:3000]}, row_group_size=700)
    write_bytes(root / "c.txt", "\n".join(DOCUMENTS[:10]).encode())
    write_jsonl(root / "d.jsonl", [{"text": "lonely"}])
    return root, ingest(root, workers=1)


@pytest.mark.parametrize(
    ("name", "record"),
    [("web/a.jsonl.gz", r) for r in (0, 1, 1023, 1024, 2500, 4999)]
    + [("b.parquet", r) for r in (0, 699, 700, 2999)]
    + [("c.txt", r) for r in (0, 5)]
    + [("d.jsonl", 0)],
)
def test_prove_and_verify_each_record(
    corpus: tuple[Path, VersionManifest], name: str, record: int
) -> None:
    root, manifest = corpus
    bundle = prove_document(manifest, name=name, path=root / name, record=record)
    document = b"lonely" if name == "d.jsonl" else DOCUMENTS[record].encode()
    assert bundle.document_sha256 == hashlib.sha256(document).hexdigest()
    result = verify_document_bundle(bundle, document=document, manifest=manifest)
    assert (result.file, result.record, result.version) == (name, record, manifest.version_id)
    assert result.document_checked and result.manifest_checked and result.checkpoint is None


def test_prove_by_document_hash(corpus: tuple[Path, VersionManifest]) -> None:
    root, manifest = corpus
    target = DOCUMENTS[3210].encode()
    digest = hashlib.sha256(target).hexdigest()
    bundle = prove_document(
        manifest, name="web/a.jsonl.gz", path=root / "web/a.jsonl.gz", document_sha256=digest
    )
    assert bundle.record == 3210
    verify_document_bundle(bundle, document=target)
    with pytest.raises(ProofError, match="no document"):
        prove_document(manifest, name="c.txt", path=root / "c.txt", document_sha256="00" * 32)
    with pytest.raises(CatalogError):
        prove_document(manifest, name="c.txt", path=root / "c.txt")
    with pytest.raises(ProofError, match="not record 10"):
        prove_document(manifest, name="c.txt", path=root / "c.txt", record=10)


def test_proving_from_other_bytes_is_refused(
    corpus: tuple[Path, VersionManifest], tmp_path: Path
) -> None:
    _, manifest = corpus
    impostor = write_bytes(tmp_path / "c.txt", b"something else\n")
    with pytest.raises(ClaimMismatchError) as info:
        prove_document(manifest, name="c.txt", path=impostor, record=0)
    assert "sha256" in info.value.differences


@pytest.fixture(scope="module")
def bundle(corpus: tuple[Path, VersionManifest]) -> DocumentBundle:
    root, manifest = corpus
    return prove_document(manifest, name="b.parquet", path=root / "b.parquet", record=42)


def test_json_round_trip(bundle: DocumentBundle) -> None:
    data = bundle.to_bytes()
    assert DocumentBundle.from_bytes(data) == bundle
    value = bundle.to_json()
    assert value["format"] == "corpusx/document-proof@v1" and value["ledger"] is None
    for change in (
        {"format": "x"},
        {"version": "sha1:00"},
        {"record": -1},
        {"file_index": True},
        {"file_proof": ["zz" * 32]},
        {"document_proof": "00" * 32},
        {"document_sha256": "AB" * 32},
        {"ledger": {"proof": 1, "entry": ""}},
        {"file": {**value["file"], "extra": 1}},
    ):
        with pytest.raises(ManifestError):
            DocumentBundle.from_json({**copy.deepcopy(value), **change})
    with pytest.raises(ManifestError):
        DocumentBundle.from_json({k: v for k, v in value.items() if k != "ledger"})


def test_tampering_is_caught(bundle: DocumentBundle, corpus: tuple[Path, VersionManifest]) -> None:
    _, manifest = corpus
    document = DOCUMENTS[42].encode()
    flipped = bytes([bundle.document_proof[0][0] ^ 1]) + bundle.document_proof[0][1:]
    other_root = "11" * 32
    forged_entry = FileEntry.from_json({**bundle.file.to_json(), "records": 3001})
    cases = [
        ({"document": document + b"!"}, bundle),
        ({}, replace(bundle, record=43)),
        ({}, replace(bundle, document_sha256=hashlib.sha256(b"other").hexdigest())),
        ({}, replace(bundle, document_proof=(flipped, *bundle.document_proof[1:]))),
        ({}, replace(bundle, document_proof=bundle.document_proof[:-1])),
        ({}, replace(bundle, file=forged_entry)),
        ({}, replace(bundle, file_index=bundle.file_index + 1)),
        ({}, replace(bundle, file_count=bundle.file_count + 1)),
        ({}, replace(bundle, manifest_root=other_root)),
        ({"manifest": manifest}, replace(bundle, version="sha256:" + "0" * 64)),
    ]
    for kwargs, tampered in cases:
        with pytest.raises(ProofError):
            verify_document_bundle(tampered, **kwargs)  # type: ignore[arg-type]
    verify_document_bundle(bundle, document=document, manifest=manifest)


# -- the ledger link ---------------------------------------------------------------------------


def _statement(
    key: Ed25519PrivateKey, entry_type: str, body: dict[str, object], n: int
) -> Statement:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return Statement(
        type=entry_type,
        body=body,
        member="acme",
        key_id=key_id_for(raw),
        nonce=f"nonce-{n:016d}",
        time="2026-01-31T12:00:00.000Z",
        log=ORIGIN,
    )


class MemoryLog:
    """A tiny log in memory whose entry 2 publishes the given body."""

    def __init__(self, body: dict[str, object], entry_type: str = "dataset.version.published"):
        self.signer = Ed25519Signer.generate(ORIGIN)
        key = Ed25519PrivateKey.generate()
        self.entries: list[Entry] = []
        for n in range(5):
            statement = (
                _statement(key, entry_type, body, n)
                if n == 2
                else _statement(key, "attest.filler", {"n": n}, n)
            )
            prev = self.entries[-1].leaf_hash() if self.entries else None
            self.entries.append(
                Entry.build(
                    seq=n,
                    time="2026-01-31T12:00:00.000Z",
                    prev=prev,
                    signed=sign_statement(statement, key),
                )
            )
        self.leaves = [e.leaf_hash() for e in self.entries]
        checkpoint = Checkpoint(ORIGIN, len(self.leaves), tree_root(self.leaves))
        self.note = sign_checkpoint(checkpoint, self.signer)

    def proof(self, index: int = 2) -> ProofBundle:
        def read(ids: Sequence[NodeID]) -> list[bytes]:
            return [tree_root(self.leaves[n.start : n.end]) for n in ids]

        hashes = inclusion_proof(index, len(self.leaves), read)
        return ProofBundle(index, tuple(hashes), self.note)

    def linked(self, bundle: DocumentBundle, index: int = 2) -> DocumentBundle:
        return bundle.with_ledger(proof=self.proof(index), entry=self.entries[index].canonical())


def published(manifest: VersionManifest, **override: object) -> dict[str, object]:
    body: dict[str, object] = {
        "version": manifest.version_id,
        "manifest_root": manifest.manifest_root,
        "dataset": "acme/web",
    }
    return {**body, **override}


def test_ledger_link_verifies(bundle: DocumentBundle, corpus: tuple[Path, VersionManifest]) -> None:
    _, manifest = corpus
    log = MemoryLog(published(manifest))
    linked = log.linked(bundle)
    again = DocumentBundle.from_bytes(linked.to_bytes())
    assert again == linked
    result = verify_document_bundle(
        again,
        document=DOCUMENTS[42].encode(),
        log_key=log.signer.verifier.vkey,
        require_ledger=True,
    )
    assert result.dataset == "acme/web"
    assert result.checkpoint is not None and result.checkpoint.checkpoint.size == 5
    verify_document_bundle(linked, log_key=log.signer.verifier)


def test_ledger_link_failures(bundle: DocumentBundle, corpus: tuple[Path, VersionManifest]) -> None:
    _, manifest = corpus
    log = MemoryLog(published(manifest))
    linked = log.linked(bundle)
    vkey = log.signer.verifier.vkey
    with pytest.raises(ProofError, match="give the log's key"):
        verify_document_bundle(linked)
    with pytest.raises(ProofError, match="not proven in the log"):
        verify_document_bundle(linked, log_key=Ed25519Signer.generate(ORIGIN).verifier.vkey)
    with pytest.raises(ProofError, match="no ledger link"):
        verify_document_bundle(bundle, require_ledger=True)
    # The proof of another entry does not prove this one.
    wrong_proof = bundle.with_ledger(proof=log.proof(3), entry=log.entries[2].canonical())
    with pytest.raises(ProofError, match="not proven"):
        verify_document_bundle(wrong_proof, log_key=vkey)
    # An entry in the log, but not the one that published this version.
    filler = log.linked(bundle, index=3)
    with pytest.raises(ProofError, match=r"not 'dataset\.version\.published'"):
        verify_document_bundle(filler, log_key=vkey)
    for field, value in (("version", "sha256:" + "1" * 64), ("manifest_root", "2" * 64)):
        other = MemoryLog(published(manifest, **{field: value}))
        with pytest.raises(ProofError, match=f"publishes {field}"):
            verify_document_bundle(other.linked(bundle), log_key=other.signer.verifier.vkey)
    garbled = bundle.with_ledger(proof="not a proof", entry=log.entries[2].canonical())
    with pytest.raises(ManifestError):
        verify_document_bundle(garbled, log_key=vkey)
