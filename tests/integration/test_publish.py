"""Publishing versions end to end against a live server, on SQLite and PostgreSQL.

The provider's client ingests and signs; the exchange re-derives every claim from the uploaded
bytes before one transaction writes the catalogue rows and the ledger entry.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import httpx
import pytest

from catalog.ingest import ingest
from exchange.client import ClientError
from exchange.published import statement_body
from exchange.publisher import publish_corpus
from ledger.entry import Entry
from tests.conftest import LiveServer
from tests.integration.helpers import Member, register


def write_corpus(root: Path, *, documents: int = 200, topic: str = "cats") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "part-0.jsonl").open("w") as handle:
        for i in range(documents):
            handle.write(json.dumps({"text": f"{topic} document {i}", "id": i}) + "\n")
    with gzip.open(root / "part-1.jsonl.gz", "wt") as handle:
        for i in range(documents // 2):
            handle.write(json.dumps({"text": f"mehr über {topic} {i}"}) + "\n")
    (root / "notes.txt").write_text("first line\nsecond line\n")
    return root


@pytest.fixture
def provider(live_server: LiveServer) -> Member:
    with live_server.operator() as operator:
        return register(operator, live_server.url, "acme", ["provider"])


def size(live: LiveServer) -> int:
    return int(httpx.get(live.url + "/healthz").json()["size"])


def test_publish_records_version_files_and_a_signed_entry(
    live_server: LiveServer, provider: Member, tmp_path: Path
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    meta = {
        "title": "Cat facts",
        "tags": ["animals"],
        "languages": ["en", "de"],
        "domains": ["web"],
    }
    first = publish_corpus(provider.client, [corpus], slug="cat-facts", meta=meta, workers=1)
    version = first.version
    assert version["id"] == first.manifest.version_id and first.label == "v1"
    assert version["records"] == 200 + 100 + 2 and len(version["files"]) == 3
    assert first.uploaded == 3

    entry = Entry.from_bytes(
        base64.b64decode(provider.client.entry(version["published_seq"])["canonical"])
    )
    assert entry.statement.type == "dataset.version.published"
    assert entry.statement.member == "acme"
    assert entry.statement.body == statement_body("cat-facts", "v1", first.manifest)

    manifest_bytes = provider.client.manifest_bytes(version["id"])
    assert manifest_bytes == first.manifest.canonical

    (corpus / "part-2.jsonl").write_text(json.dumps({"text": "one more cat"}) + "\n")
    second = publish_corpus(provider.client, [corpus], slug="cat-facts", workers=2)
    assert second.label == "v2" and second.uploaded == 1 and second.already_stored == 3
    shown = provider.client.dataset("cat-facts")
    assert [v["label"] for v in shown["versions"]] == ["v1", "v2"]
    assert shown["latest_version"] == second.manifest.version_id
    assert shown["languages"] == ["de", "en"]


def test_claims_that_the_bytes_do_not_support_are_refused(
    live_server: LiveServer, provider: Member, tmp_path: Path
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    manifest = ingest([corpus], workers=1)
    for file in manifest.files:
        provider.client.upload_blob(file.sha256, corpus / file.name)
    forged = manifest.to_json()
    forged["files"][0]["records"] += 1  # a document that is not there
    before = size(live_server)
    from catalog.manifest import VersionManifest

    lie = VersionManifest.from_json(forged)
    signed = provider.client.sign("dataset.version.published", statement_body("lies", "v1", lie))
    with pytest.raises(ClientError) as refused:
        provider.client.publish_version(
            "lies", {"label": "v1", "manifest": forged, "signed": signed.to_json()}
        )
    assert refused.value.status == 422 and "do not match the manifest" in str(refused.value)
    assert size(live_server) == before
    with pytest.raises(ClientError) as absent:
        provider.client.dataset("lies")
    assert absent.value.status == 404


def test_statement_must_name_the_manifest_and_blobs_must_be_there(
    live_server: LiveServer, provider: Member, tmp_path: Path
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    manifest = ingest([corpus], workers=1)
    body = statement_body("cats", "v1", manifest) | {"records": 1}
    signed = provider.client.sign("dataset.version.published", body)
    request = {"label": "v1", "manifest": manifest.to_json(), "signed": signed.to_json()}
    with pytest.raises(ClientError) as wrong:
        provider.client.publish_version("cats", request)
    assert wrong.value.status == 422 and "does not name this manifest" in str(wrong.value)

    signed = provider.client.sign(
        "dataset.version.published", statement_body("cats", "v1", manifest)
    )
    request["signed"] = signed.to_json()
    with pytest.raises(ClientError) as missing:
        provider.client.publish_version("cats", request)
    assert missing.value.status == 409 and "not uploaded" in str(missing.value)


def test_roles_and_ownership(live_server: LiveServer, provider: Member, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    publish_corpus(provider.client, [corpus], slug="owned", workers=1)
    with live_server.operator() as operator:
        rival = register(operator, live_server.url, "rival", ["provider"])
        buyer = register(operator, live_server.url, "buyer", ["buyer"])
    with pytest.raises(ClientError) as not_provider:
        publish_corpus(buyer.client, [corpus], slug="mine", workers=1)
    assert not_provider.value.status == 403
    (corpus / "extra.txt").write_text("rival text\n")
    with pytest.raises(ClientError) as not_owner:
        publish_corpus(rival.client, [corpus], slug="owned", workers=1)
    assert not_owner.value.status == 403 and "belongs to acme" in str(not_owner.value)
    with pytest.raises(ClientError) as edit:
        rival.client.request("PATCH", "/datasets/owned", json={"title": "Mine now"})
    assert edit.value.status == 403


def test_same_version_twice_is_a_conflict(
    live_server: LiveServer, provider: Member, tmp_path: Path
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    publish_corpus(provider.client, [corpus], slug="once", workers=1)
    before = size(live_server)
    with pytest.raises(ClientError) as again:
        publish_corpus(provider.client, [corpus], slug="once", label="v2", workers=1)
    assert again.value.status == 409 and "immutable" in str(again.value)
    assert size(live_server) == before


def test_uploads_that_do_not_match_their_digest_are_refused(
    live_server: LiveServer, provider: Member
) -> None:
    digest = "0" * 64
    response = httpx.put(
        f"{live_server.url}/blobs/{digest}",
        content=b"not those bytes",
        headers={"Authorization": f"Bearer {provider.token}"},
    )
    assert response.status_code == 422 and "do not match" in response.json()["detail"]
    assert provider.client.missing_blobs([digest]) == [digest]


def test_search_finds_by_text_with_filters_and_pages(
    live_server: LiveServer, provider: Member, tmp_path: Path
) -> None:
    specs = [
        ("felines", "Felines of the world", ["en"], ["biology"]),
        ("canines", "Canine behaviour studies", ["en", "fr"], ["biology"]),
        ("recipes", "French cooking recipes", ["fr"], ["food"]),
    ]
    for slug, title, languages, domains in specs:
        corpus = write_corpus(tmp_path / slug, topic=slug)
        meta = {
            "title": title,
            "languages": languages,
            "domains": domains,
            "description": f"A corpus about {slug}.",
        }
        publish_corpus(provider.client, [corpus], slug=slug, meta=meta, workers=1)
    client = provider.client
    assert [d["slug"] for d in client.search(q="canine")["datasets"]] == ["canines"]
    assert [d["slug"] for d in client.search(q="feli")["datasets"]] == ["felines"]  # prefixes
    assert {d["slug"] for d in client.search(language=["fr"])["datasets"]} == {"canines", "recipes"}
    assert [d["slug"] for d in client.search(q="corpus", domain=["food"])["datasets"]] == [
        "recipes"
    ]
    assert client.search(q="corpus", provider="nobody")["total"] == 0
    assert client.search(q='"; DROP TABLE dataset; --')["total"] == 0
    pages = [client.search(per_page=2, page=p) for p in (1, 2)]
    assert (
        pages[0]["total"] == 3 and len(pages[0]["datasets"]) == 2 and len(pages[1]["datasets"]) == 1
    )
    smallest = min(d["size_bytes"] for d in pages[0]["datasets"] + pages[1]["datasets"])
    assert client.search(max_bytes=smallest)["total"] >= 1
    assert client.search(min_bytes=10**12)["total"] == 0


def test_a_document_is_proven_down_to_the_publishing_entry(
    live_server: LiveServer, provider: Member, tmp_path: Path
) -> None:
    from catalog.errors import ProofError
    from catalog.proofs import DocumentBundle, verify_document_bundle

    corpus = write_corpus(tmp_path / "corpus", documents=50)
    published = publish_corpus(provider.client, [corpus], slug="provable", workers=1)
    version = published.version["id"]
    vkey = live_server.prepared.vkey
    by_record = provider.client.document_proof(version, file="part-1.jsonl.gz", record=7)
    document = "mehr über cats 7".encode()
    verified = verify_document_bundle(
        DocumentBundle.from_json(by_record), document=document, log_key=vkey, require_ledger=True
    )
    assert (verified.dataset, verified.file, verified.record) == ("provable", "part-1.jsonl.gz", 7)
    assert verified.document_checked

    import hashlib

    by_hash = provider.client.document_proof(
        version, file="part-1.jsonl.gz", document=hashlib.sha256(document).hexdigest()
    )
    assert by_hash == by_record

    with pytest.raises(ProofError):
        verify_document_bundle(
            DocumentBundle.from_json(by_record), document=b"forged", log_key=vkey
        )
    tampered = dict(by_record, record=8)
    with pytest.raises(ProofError):
        verify_document_bundle(
            DocumentBundle.from_json(tampered), log_key=vkey, require_ledger=True
        )
    with pytest.raises(ClientError) as missing:
        provider.client.document_proof(version, file="nope.jsonl", record=0)
    assert missing.value.status == 404


@pytest.mark.s3_store
def test_publishing_and_proofs_with_blobs_on_s3(
    live_server: LiveServer, provider: Member, tmp_path: Path
) -> None:
    corpus = write_corpus(tmp_path / "corpus", documents=40)
    published = publish_corpus(provider.client, [corpus], slug="on-s3", workers=1)
    assert published.uploaded == 3
    (corpus / "more.txt").write_text("another line\n")
    again = publish_corpus(provider.client, [corpus], slug="on-s3-more", workers=1)
    assert again.uploaded == 1 and again.already_stored == 3
    bundle = provider.client.document_proof(published.version["id"], file="part-0.jsonl", record=3)
    assert bundle["record"] == 3


def test_croissant_export_through_the_api(
    live_server: LiveServer, provider: Member, tmp_path: Path
) -> None:
    import mlcroissant

    corpus = write_corpus(tmp_path / "corpus", documents=20)
    published = publish_corpus(
        provider.client,
        [corpus],
        slug="described",
        workers=1,
        meta={"title": "Described", "description": "A small corpus."},
    )
    document = provider.client.croissant(published.version["id"])
    assert document["identifier"] == published.version["id"]
    digests = {d["name"]: d["sha256"] for d in document["distribution"] if "sha256" in d}
    assert digests == {f.name: f.sha256 for f in published.manifest.files}
    dataset = mlcroissant.Dataset(jsonld=json.loads(json.dumps(document)))
    assert dataset.metadata.name


def test_a_copied_corpus_is_flagged_until_an_operator_clears_it(
    live_server: LiveServer, provider: Member, tmp_path: Path
) -> None:
    import subprocess
    import sys

    original = tmp_path / "original"
    original.mkdir()
    with (original / "data.jsonl").open("w") as handle:
        for i in range(300):
            handle.write(
                json.dumps({"text": f"Original essay {i} on the migration of birds across oceans."})
                + "\n"
            )
    publish_corpus(provider.client, [original], slug="birds", workers=1)
    with live_server.operator() as operator:
        copier = register(operator, live_server.url, "copier", ["provider"])
    copied = tmp_path / "copied"
    copied.mkdir()
    (copied / "mine.jsonl").write_text((original / "data.jsonl").read_text())
    flagged = publish_corpus(copier.client, [copied], slug="my-birds", workers=1).version
    assert flagged["status"] == "flagged"
    report = flagged["stats"]["overlap"]
    assert (
        report["overlaps"][0]["provider"] == "acme"
        and report["overlaps"][0]["exact"]["fraction"] == 1.0
    )
    flag_entry = Entry.from_bytes(
        base64.b64decode(provider.client.entry(flagged["published_seq"] + 1)["canonical"])
    )
    assert flag_entry.statement.type == "dataset.version.flagged"
    assert flag_entry.statement.member == "exchange"

    (original / "more.txt").write_text("a new line of the provider's own\n")
    own = publish_corpus(provider.client, [original], slug="birds", workers=1).version
    assert own["status"] == "published"  # overlapping one's own corpus is no one's loss
    with pytest.raises(ClientError) as not_operator:
        copier.client.clear_version(flagged["id"], "it is mine")
    assert not_operator.value.status == 403
    with live_server.operator() as operator:
        cleared = operator.clear_version(flagged["id"], "licensed from acme, contract 42")
    assert cleared["status"] == "published"

    audit = subprocess.run(
        [
            sys.executable,
            "-m",
            "exchange",
            "audit",
            "verify",
            "--server",
            live_server.url,
            "--vkey",
            live_server.prepared.vkey,
            "--json",
        ],
        capture_output=True,
        text=True,
        env={"CORPUSX_CONFIG_DIR": str(tmp_path / "auditor"), "PATH": ""},
    )
    assert audit.returncode == 0, audit.stderr


def test_a_damaged_overlap_index_stops_publishing_as_the_exchanges_fault(
    live_server: LiveServer, provider: Member, tmp_path: Path
) -> None:
    """A segment that no longer matches its digest is a 500 with a problem that says so, and
    the version that needed the lookup is not published (no row, no entry)."""
    from sqlalchemy import text

    from exchange.db import make_engine

    publish_corpus(provider.client, [write_corpus(tmp_path / "one")], slug="cats", workers=1)
    engine = make_engine(live_server.prepared.settings.resolved_database_url)
    try:
        with engine.begin() as connection:  # a digest that names nothing in memory, nor the bytes
            connection.execute(text("UPDATE overlap_segment SET digest = :d"), {"d": "0" * 64})
    finally:
        engine.dispose()
    with live_server.operator() as operator:
        other = register(operator, live_server.url, "other", ["provider"])
    before = size(live_server)
    corpus = write_corpus(tmp_path / "two", topic="dogs")
    with pytest.raises(ClientError, match="the overlap index is damaged") as refused:
        publish_corpus(other.client, [corpus], slug="dogs", workers=1)
    assert refused.value.status == 500
    assert size(live_server) == before
    with pytest.raises(ClientError) as missing:
        other.client.dataset("dogs")
    assert missing.value.status == 404
