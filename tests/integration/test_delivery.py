"""Licence-gated delivery against a live exchange: fetch, resume, verify, receipts, refusals."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from exchange.client import ClientError
from exchange.delivery import DownloadClaims, token_key
from exchange.fetcher import fetch_version
from exchange.logkey import load_log_key
from exchange.publisher import publish_corpus
from ledger.entry import EXCHANGE, Entry
from ledger.note import Ed25519Verifier
from ledger.proofbundle import ProofBundle, verify_proof_bundle
from licensing.terms import Terms
from tests.conftest import LiveServer
from tests.integration.market import TRAINING_NC, Market, open_market, write_corpus


@pytest.fixture
def market(live_server: LiveServer, tmp_path: Path) -> Market:
    return open_market(live_server, tmp_path)


def _licensed(market: Market, terms: Terms = TRAINING_NC) -> dict[str, object]:
    agreement: dict[str, object] = market.bob.client.buy(market.offer(terms, 100)["id"])
    return agreement


def test_a_licensed_buyer_fetches_verified_files_with_a_receipt(
    market: Market, tmp_path: Path
) -> None:
    agreement = _licensed(market)
    out = tmp_path / "download"
    result = fetch_version(market.bob.client, market.version, out, purpose="training")
    corpus = tmp_path / "corpus"
    for name in ("part-0.jsonl", "notes.txt"):
        assert (out / name).read_bytes() == (corpus / name).read_bytes()
    assert sorted(result.files) == ["notes.txt", "part-0.jsonl"]
    assert not list(out.glob("*.part"))

    entry = market.entry(result.delivery)
    assert entry.statement.type == "data.delivered" and entry.statement.member == EXCHANGE
    body = entry.statement.body
    assert body["agreement"] == agreement["id"] and body["buyer"] == "bob"
    assert body["version"] == market.version and body["purpose"] == "training"
    files = {f["name"]: f["sha256"] for f in market.published.version["files"]}
    assert {f["name"]: f["sha256"] for f in body["files"]} == files

    # The receipt proves the entry offline, with the log's key alone.
    assert result.receipt is not None
    import json

    receipt = json.loads(result.receipt.read_text())
    signed = verify_proof_bundle(
        ProofBundle.from_text(receipt["proof"]),
        entry=base64.b64decode(receipt["entry"]),
        log_verifier=Ed25519Verifier.from_vkey(market.operator.vkey()),
    )
    assert signed.checkpoint.size > result.delivery

    # Fetching again finds the files complete and downloads nothing.
    again = fetch_version(market.bob.client, market.version, out, purpose="training")
    assert again.downloaded_bytes == 0 and sorted(again.already_present) == sorted(result.files)


def test_an_interrupted_download_resumes_with_range(market: Market, tmp_path: Path) -> None:
    _licensed(market)
    original = (tmp_path / "corpus" / "part-0.jsonl").read_bytes()
    out = tmp_path / "download"
    out.mkdir()
    (out / "part-0.jsonl.part").write_bytes(original[: len(original) // 2])
    result = fetch_version(
        market.bob.client, market.version, out, purpose="training", files=["part-0.jsonl"]
    )
    assert result.resumed_bytes == len(original) // 2
    assert result.downloaded_bytes == len(original) - len(original) // 2
    assert (out / "part-0.jsonl").read_bytes() == original


def test_a_download_whose_bytes_are_wrong_is_not_accepted(market: Market, tmp_path: Path) -> None:
    _licensed(market)
    original = (tmp_path / "corpus" / "part-0.jsonl").read_bytes()
    out = tmp_path / "download"
    out.mkdir()
    (out / "part-0.jsonl.part").write_bytes(b"X" * 10)  # not a prefix of the real file
    with pytest.raises(ClientError, match="do not hash"):
        fetch_version(
            market.bob.client, market.version, out, purpose="training", files=["part-0.jsonl"]
        )
    assert not (out / "part-0.jsonl").exists()
    assert (out / "part-0.jsonl.bad").read_bytes()[:10] == b"X" * 10
    assert len(original) > 10


def test_ranges_are_served_exactly(market: Market, tmp_path: Path) -> None:
    _licensed(market)
    delivery = market.bob.client.request_delivery(market.version, purpose="training")
    link = next(f for f in delivery["files"] if f["name"] == "part-0.jsonl")
    original = (tmp_path / "corpus" / "part-0.jsonl").read_bytes()
    # The URL is a capability: no API token is sent.
    part = httpx.get(link["url"], headers={"Range": "bytes=5-9"})
    assert part.status_code == 206 and part.content == original[5:10]
    assert part.headers["content-range"] == f"bytes 5-9/{len(original)}"
    tail = httpx.get(link["url"], headers={"Range": "bytes=-4"})
    assert tail.content == original[-4:]
    whole = httpx.get(link["url"])
    assert whole.status_code == 200 and whole.content == original
    bad = httpx.get(link["url"], headers={"Range": f"bytes={len(original)}-"})
    assert bad.status_code == 416


def _refused_delivery(market: Market, status: int, words: str, **request: object) -> None:
    size = market.size()
    params = {"purpose": "training", **request}
    version = str(params.pop("version", market.version))
    with pytest.raises(ClientError) as refused:
        market.bob.client.request_delivery(version, **params)  # type: ignore[arg-type]
    assert refused.value.status == status, str(refused.value)
    assert words in str(refused.value)
    assert market.size() == size  # nothing recorded


def test_no_valid_agreement_no_delivery(
    market: Market, live_server: LiveServer, tmp_path: Path
) -> None:
    _refused_delivery(market, 403, "no agreement")
    agreement = _licensed(market)
    _refused_delivery(market, 403, "fine-tuning", purpose="fine-tuning")
    _refused_delivery(market, 403, "commercial", commercial=True)
    _refused_delivery(market, 422, "purpose", purpose="espionage")
    _refused_delivery(market, 422, "no file", files=["secret.txt"])
    # Another version of the same dataset is not covered by this agreement.
    corpus = write_corpus(tmp_path / "corpus-v2", documents=70)
    v2 = publish_corpus(market.acme.client, [corpus], slug="cat-facts", workers=1)
    _refused_delivery(market, 403, "no agreement", version=v2.manifest.version_id)
    # Another buyer, and a provider, get nothing.
    with pytest.raises(ClientError) as other:
        market.carol.client.request_delivery(market.version, purpose="training")
    assert other.value.status == 403
    with pytest.raises(ClientError) as provider:
        market.acme.client.request_delivery(market.version, purpose="training")
    assert provider.value.status == 403

    # A delivery made before a revocation: its links stop working when the licence is revoked.
    delivery = market.bob.client.request_delivery(market.version, purpose="training")
    market.acme.client.revoke_licence(str(agreement["id"]), "unpaid invoice")
    _refused_delivery(market, 403, "revoked")
    refused = httpx.get(delivery["files"][0]["url"])
    assert refused.status_code == 403 and "revoked" in refused.json()["detail"]


def test_download_tokens_are_checked(market: Market, live_server: LiveServer) -> None:
    agreement = _licensed(market)
    delivery = market.bob.client.request_delivery(market.version, purpose="training")
    url = delivery["files"][0]["url"]
    token = url.rsplit("/", 1)[1]
    payload, mac = token.split(".")
    forged = httpx.get(f"{live_server.url}/downloads/{payload}.{mac[:-2]}AA")
    assert forged.status_code == 401 and "not issued" in forged.json()["detail"]
    assert httpx.get(f"{live_server.url}/downloads/garbage").status_code == 401

    settings = live_server.prepared.settings
    key = token_key(load_log_key(settings.resolved_log_key_file, settings.log_origin))
    file = delivery["files"][0]
    claims = DownloadClaims(
        delivery=delivery["seq"],
        agreement=str(agreement["id"]),
        version=market.version,
        name=file["name"],
        sha256=file["sha256"],
        size=file["size"],
        expires=int(time.time()) - 1,
    )
    expired = httpx.get(f"{live_server.url}/downloads/{claims.to_token(key)}")
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    # A genuine token for a file that is not in the licensed version is refused too.
    other = DownloadClaims(
        **{**claims.__dict__, "sha256": "ab" * 32, "expires": claims.expires + 60}
    )
    assert httpx.get(f"{live_server.url}/downloads/{other.to_token(key)}").status_code == 403
    assert datetime.now(UTC).timestamp() > claims.expires


@pytest.mark.s3_store
def test_with_the_s3_store_the_exchange_hands_out_presigned_urls(
    market: Market, tmp_path: Path
) -> None:
    _licensed(market)
    delivery = market.bob.client.request_delivery(market.version, purpose="training")
    assert all("X-Amz-Signature" in f["url"] for f in delivery["files"])
    out = tmp_path / "download"
    result = fetch_version(market.bob.client, market.version, out, purpose="training")
    for name in result.files:
        assert (out / name).read_bytes() == (tmp_path / "corpus" / name).read_bytes()
    entry = Entry.from_bytes(base64.b64decode(market.operator.entry(result.delivery)["canonical"]))
    assert entry.statement.type == "data.delivered"
