"""The exchange reads each uploaded blob once and remembers what it found (exchange.verification).

Against a live server on SQLite and PostgreSQL: an upload that names its file is derived as it is
stored; publishing compares the claims with that derivation and reads no byte again; the cache is
keyed by blob, media type, document rule and code version, and a stored blob rewritten after its
derivation is derived again, and refused.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from catalog.documents import IngestOptions
from catalog.ingest import ingest
from catalog.manifest import VersionManifest
from exchange import verification
from exchange.client import ClientError
from exchange.db import make_engine
from exchange.published import statement_body
from exchange.publisher import publish_corpus
from exchange.verification import DERIVATION, VerifiedFile, Verifier
from storage import LocalStore
from tests.conftest import LiveServer
from tests.integration.helpers import Member, register


def write_corpus(root: Path, *, documents: int = 120) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "web.jsonl").open("w") as handle:
        for i in range(documents):
            record = {"text": f"about cats, document {i}", "body": f"the body of {i}", "id": i}
            handle.write(json.dumps(record) + "\n")
    (root / "notes.txt").write_text("first line\nsecond line\n")
    return root


@pytest.fixture
def provider(live_server: LiveServer) -> Member:
    with live_server.operator() as operator:
        return register(operator, live_server.url, "acme", ["provider"])


@pytest.fixture
def derivations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files the server derives, in order (a spy: the real code runs)."""
    seen: list[str] = []
    real = Verifier.derive

    def spy(self: Verifier, jobs: Any) -> Any:
        seen.extend(reading.name for _, _, reading in jobs)
        return real(self, jobs)

    monkeypatch.setattr(Verifier, "derive", spy)
    return seen


def rows(live: LiveServer) -> list[VerifiedFile]:
    engine = make_engine(live.prepared.settings.resolved_database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(VerifiedFile)).all())
    finally:
        engine.dispose()


def stored_path(live: LiveServer, digest: str) -> Path:
    return LocalStore(live.prepared.settings.resolved_blob_store).path_of(digest)


def publish_request(
    provider: Member, slug: str, manifest: VersionManifest, forged: dict[str, Any] | None = None
) -> Any:
    claimed = VersionManifest.from_json(forged) if forged is not None else manifest
    signed = provider.client.sign("dataset.version.published", statement_body(slug, "v1", claimed))
    return provider.client.publish_version(
        slug, {"label": "v1", "manifest": claimed.to_json(), "signed": signed.to_json()}
    )


def test_uploads_are_derived_once_and_publishing_reads_nothing_again(
    live_server: LiveServer, provider: Member, tmp_path: Path, derivations: list[str]
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    first = publish_corpus(provider.client, [corpus], slug="cats", workers=1)
    assert first.uploaded == 2
    assert sorted(derivations) == ["notes.txt", "web.jsonl"]  # at upload, not again at publish
    kept = {(row.sha256, row.media_type, row.document_rule) for row in rows(live_server)}
    assert kept == {(f.sha256, f.media_type, f.document_rule) for f in first.manifest.files}
    assert {row.derivation for row in rows(live_server)} == {DERIVATION}

    (corpus / "more.txt").write_text("a third file\n")
    second = publish_corpus(provider.client, [corpus], slug="cats", workers=1)
    assert second.uploaded == 1 and second.already_stored == 2
    assert sorted(derivations) == ["more.txt", "notes.txt", "web.jsonl"]  # the old two: cached
    assert second.version["status"] == "published"


def test_claims_are_checked_against_the_remembered_derivation(
    live_server: LiveServer, provider: Member, tmp_path: Path, derivations: list[str]
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    manifest = ingest([corpus], workers=1)
    for file in manifest.files:
        answer = provider.client.upload_blob(
            file.sha256, corpus / file.name, name=file.name, rule=file.document_rule
        )
        assert answer["derived"] is True and answer["problem"] is None
    forged = manifest.to_json()
    forged["files"][1]["document_root"] = "ab" * 32  # web.jsonl: a root its bytes do not have
    with pytest.raises(ClientError) as refused:
        publish_request(provider, "lies", manifest, forged)
    assert refused.value.status == 422 and "document_root" in str(refused.value)
    assert len(derivations) == 2  # refused from the derivations made at upload
    assert publish_request(provider, "truth", manifest)["records"] == manifest.records


def test_another_document_rule_is_derived_again(
    live_server: LiveServer, provider: Member, tmp_path: Path, derivations: list[str]
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    by_text = publish_corpus(provider.client, [corpus / "web.jsonl"], slug="by-text", workers=1)
    assert derivations == ["web.jsonl"]
    options = IngestOptions(text_field="body")
    other = publish_corpus(
        provider.client, [corpus / "web.jsonl"], slug="by-body", options=options, workers=1
    )
    assert other.uploaded == 0  # the same blob, read with another rule: derived at publish
    assert derivations == ["web.jsonl", "web.jsonl"]
    assert sorted(row.document_rule for row in rows(live_server)) == ["field:body", "field:text"]
    assert other.manifest.files[0].sha256 == by_text.manifest.files[0].sha256
    assert other.manifest.files[0].document_root != by_text.manifest.files[0].document_root


def test_a_remembered_derivation_of_another_code_version_is_not_used(
    live_server: LiveServer, provider: Member, tmp_path: Path, derivations: list[str]
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    manifest = ingest([corpus / "web.jsonl"], workers=1)
    (file,) = manifest.files
    provider.client.upload_blob(file.sha256, corpus / file.name, name=file.name)
    engine = make_engine(live_server.prepared.settings.resolved_database_url)
    try:
        with Session(engine) as session:
            (row,) = session.exec(select(VerifiedFile)).all()
            row.derivation = "an older ingestion"
            session.add(row)
            session.commit()
    finally:
        engine.dispose()
    assert publish_request(provider, "fresh", manifest)["records"] == manifest.records
    assert derivations == ["web.jsonl", "web.jsonl"]


def test_a_stored_blob_rewritten_after_its_derivation_is_refused(
    live_server: LiveServer, provider: Member, tmp_path: Path, derivations: list[str]
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    manifest = ingest([corpus / "web.jsonl"], workers=1)
    (file,) = manifest.files
    provider.client.upload_blob(file.sha256, corpus / file.name, name=file.name)
    assert derivations == ["web.jsonl"]
    path = stored_path(live_server, file.sha256)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01  # same size, one bit: the digest no longer holds
    path.write_bytes(bytes(data))
    with pytest.raises(ClientError) as refused:
        publish_request(provider, "rotten", manifest)
    assert refused.value.status == 422 and "do not match" in str(refused.value)
    assert derivations == ["web.jsonl", "web.jsonl"]  # the fingerprint changed: derived again
    with pytest.raises(ClientError) as absent:
        provider.client.dataset("rotten")
    assert absent.value.status == 404


def test_an_upload_whose_bytes_do_not_ingest_says_why(
    live_server: LiveServer, provider: Member, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": 3}\n')
    digest = hashlib.sha256(bad.read_bytes()).hexdigest()
    answer = provider.client.upload_blob(digest, bad, name="bad.jsonl")
    assert answer["derived"] is False
    assert "record 1, line 2" in answer["problem"] and "must be a string" in answer["problem"]
    assert provider.client.missing_blobs([digest]) == []  # stored all the same (digest matched)
    assert rows(live_server) == []


def test_a_named_upload_that_does_not_match_its_digest_is_refused(
    live_server: LiveServer, provider: Member, tmp_path: Path, derivations: list[str]
) -> None:
    """The derivation hashes the upload for the store: a digest it does not find refuses the
    blob, which is neither stored nor remembered."""
    corpus = write_corpus(tmp_path / "corpus")
    web = corpus / "web.jsonl"
    wrong = hashlib.sha256(web.read_bytes() + b"\n").hexdigest()
    with pytest.raises(ClientError) as refused:
        provider.client.upload_blob(wrong, web, name="web.jsonl")
    assert refused.value.status == 422 and "do not match their digest" in str(refused.value)
    assert derivations == ["web.jsonl"]  # read once, on the way in
    assert provider.client.missing_blobs([wrong]) == [wrong]
    assert rows(live_server) == []
    right = hashlib.sha256(web.read_bytes()).hexdigest()
    assert provider.client.upload_blob(right, web, name="web.jsonl")["derived"] is True
    assert derivations == ["web.jsonl", "web.jsonl"]
    assert [row.sha256 for row in rows(live_server)] == [right]


def test_upload_names_and_rules_are_checked(live_server: LiveServer, provider: Member) -> None:
    headers = {"Authorization": f"Bearer {provider.token}", "Content-Length": "3"}
    digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # "abc"
    for params, reason in (
        ({"name": "../escape.jsonl"}, "name"),
        ({"name": "data.csv"}, "unknown file type"),
        ({"name": "a.txt", "rule": "field:text"}, "does not apply"),
        ({"name": "a.jsonl", "rule": "sideways"}, "unknown document rule"),
    ):
        response = httpx.put(
            f"{live_server.url}/blobs/{digest}", content=b"abc", headers=headers, params=params
        )
        assert response.status_code == 422, params
        assert reason in response.json()["detail"], (params, response.json())
    assert provider.client.missing_blobs([digest]) == [digest]  # nothing stored


@pytest.mark.s3_store
def test_uploads_to_s3_are_derived_from_the_bytes_that_streamed_in(
    live_server: LiveServer,
    provider: Member,
    tmp_path: Path,
    derivations: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scratch = tmp_path / "scratch"  # where the server (in this process) copies uploads
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    corpus = write_corpus(tmp_path / "corpus", documents=30)
    published = publish_corpus(provider.client, [corpus], slug="on-s3", workers=1)
    assert sorted(derivations) == ["notes.txt", "web.jsonl"]
    assert {row.fingerprint.split(":")[0] for row in rows(live_server)} == {"s3"}
    assert published.version["records"] == published.manifest.records
    assert not list(scratch.glob("corpusx-upload-*"))  # the copies are gone


def test_derive_upload_skips_a_partial_copy(tmp_path: Path) -> None:
    """A store that already held the blob read nothing into the copy: nothing is derived."""
    copy = tmp_path / "copy"
    copy.write_bytes(b"")
    store = LocalStore(tmp_path / "blobs")
    reading = verification.Reading.of("a.jsonl", "field:text")

    def no_transaction() -> Any:
        raise AssertionError("nothing to remember")

    outcome = verification.derive_upload(
        store,
        no_transaction,
        Verifier(workers=1),
        digest="0" * 64,
        size=10,
        reading=reading,
        copy=copy,
    )
    assert outcome == verification.UploadOutcome(derived=False)


def test_a_dead_worker_does_not_stop_later_derivations(tmp_path: Path) -> None:
    path = write_corpus(tmp_path / "corpus", documents=10) / "web.jsonl"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    job = (path, digest, verification.Reading.of("web.jsonl", "field:text"))
    verifier = Verifier(workers=1)
    try:
        (first,) = verifier.derive([job])
        pool = verifier._pool
        assert isinstance(pool, ProcessPoolExecutor)
        for process in list(pool._processes.values()):  # killed, as by the OOM killer
            process.kill()
            process.join()
        with pytest.raises(BrokenProcessPool):
            verifier.derive([job])
        (again,) = verifier.derive([job])  # a new pool
        assert again.manifest == first.manifest and again.manifest.sha256 == digest
    finally:
        verifier.close()
