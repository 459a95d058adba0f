"""The whole journey, as the people involved run it: every step is the ``corpusx`` command line.

The exchange is deployed as an operator would: PostgreSQL, blobs on the S3 server, ``corpusx db
upgrade``, ``corpusx init``, ``corpusx serve --workers 2``. The operator registers a provider,
a model builder and an auditor, each with a key made on their own machine (their own home and
profile); the provider publishes a Parquet + JSONL corpus and offers it; the operator deposits
credits; the model builder buys, fetches the licensed files, keeps the delivery's receipt and
attests that a model's training data is covered; the auditor verifies the whole log and the
attestation offline; the operator checks the database tells one story.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledger.entry import format_time
from tests.deployment import Cli, Deployment

PRICE = 250
CREDITS = 1_000


def _person(deployment: Deployment, name: str, role: str) -> Cli:
    """Someone with a key made on their machine, registered by the operator, logged in."""
    person = Cli(deployment.cli.home.parent / name)
    person.home.mkdir()
    made = person.json("keys", "new", "--out", f"{name}.key")
    registered = deployment.cli.json(
        "member",
        "register",
        "--name",
        name,
        "--role",
        role,
        "--pubkey",
        str(person.home / f"{name}.key.pub"),
    )
    assert registered["member"]["roles"] == [role]
    login = person.json(
        "login", "--server", deployment.url, "--token", registered["token"], "--key", f"{name}.key"
    )
    assert login["member"] == name
    assert made["key_id"] in {k["key_id"] for k in registered["member"]["keys"]}
    return person


def _corpus(root: Path) -> dict[str, str]:
    """A Parquet file and a JSONL file; their SHA-256 by name."""
    root.mkdir()
    texts = [f"a news article, number {i}, about the harbour" for i in range(40)]
    pq.write_table(pa.table({"text": texts, "id": list(range(40))}), root / "articles.parquet")
    with (root / "letters.jsonl").open("w") as handle:
        for i in range(25):
            handle.write(json.dumps({"text": f"a letter to the editor, number {i}"}) + "\n")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.iterdir()}


@pytest.mark.slow
def test_provider_to_model_builder_to_auditor(deployment: Deployment) -> None:
    operator = deployment.cli
    acme = _person(deployment, "acme", "provider")
    bob = _person(deployment, "bob", "buyer")
    audrey = _person(deployment, "audrey", "auditor")

    # The provider publishes and offers.
    digests = _corpus(acme.home / "corpus")
    version = acme.json(
        "dataset",
        "publish",
        "corpus",
        "--dataset",
        "harbour-news",
        "--title",
        "Harbour news",
        "--language",
        "en",
    )
    assert version["id"].startswith("sha256:") and version["label"] == "v1"
    assert {f["name"]: f["sha256"] for f in version["files"]} == digests
    assert {f["name"]: f["records"] for f in version["files"]} == {
        "articles.parquet": 40,
        "letters.jsonl": 25,
    }
    offer = acme.json(
        "offer",
        "create",
        "--dataset",
        "harbour-news",
        "--version",
        version["id"],
        "--price",
        str(PRICE),
        "--purpose",
        "training",
        "--days",
        "30",
        "--attribution",
        "Harbour news (c) Acme",
    )
    assert offer["price"]["amount"] == PRICE and offer["open"]

    # The operator credits the model builder; the model builder buys.
    deposited = operator.json("account", "deposit", "bob", str(CREDITS), "--reference", "wire 7")
    assert deposited["balance"] == CREDITS
    assert [o["id"] for o in bob.json("offer", "list", "--dataset", "harbour-news")] == [
        offer["id"]
    ]
    licence = bob.json("licence", "buy", offer["id"])
    assert licence["target"] == version["id"] and licence["state"] == "active"
    assert bob.json("account", "show", "bob")["balance"] == CREDITS - PRICE

    # Fetch: every file verified against the manifest, a receipt kept.
    fetched = bob.json("data", "fetch", version["id"], "--out", "data", "--purpose", "training")
    assert sorted(fetched["files"]) == sorted(digests)
    for name, digest in digests.items():
        assert hashlib.sha256((bob.home / "data" / name).read_bytes()).hexdigest() == digest
    receipt = bob.json("data", "receipt", str(fetched["delivery"]), "--out", "receipt.json")
    assert receipt["verified"] and receipt["delivery"]["agreement"] == licence["id"]
    assert json.loads((bob.home / "receipt.json").read_text())["proof"] == receipt["proof"]
    refused = bob.fails("data", "fetch", version["id"], "--out", "x", "--purpose", "fine-tuning")
    assert "not licensed" in refused

    # The model builder attests what a model was trained on.
    (bob.home / "model.json").write_text(
        json.dumps(
            {
                "model": "bob-harbour-1b",
                "purpose": "training",
                "commercial": False,
                "date": format_time(datetime.now(UTC) + timedelta(minutes=1)),
                "data": [{"version": version["id"]}, {"file": digests["letters.jsonl"]}],
            }
        )
    )
    checked = bob.json("compliance", "check", "model.json", "--attest")
    assert checked["compliant"] and checked["counts"]["covered"] == 2
    assert sum(checked["counts"].values()) == 2
    seq = checked["attestation_seq"]
    assert isinstance(seq, int)

    # The auditor: the whole log from the server, then the attestation offline.
    bundle = audrey.json("compliance", "bundle", str(seq), "--out", "attestation.json")
    assert bundle["seq"] == seq
    audited = audrey.json("audit", "verify", "--server", deployment.url, "--vkey", deployment.vkey)
    assert audited["ok"] and audited["size"] > seq
    verified = audrey.json(
        "audit", "verify-attestation", "attestation.json", "--vkey", deployment.vkey
    )
    assert verified["ok"] and verified["member"] == "bob" and verified["items"] == 2
    assert verified["agreements"] == [licence["id"]]
    books = audrey.json("account", "books")
    assert books["total"] == 0 and books["unbalanced_transactions"] == 0
    assert books["accounts"]["member:bob"] == CREDITS - PRICE
    assert books["accounts"]["member:acme"] == PRICE

    # The operator, on the exchange's own machine.
    local = operator.json("audit", "verify", "--local", "--data-dir", "exchange-data")
    assert local["ok"]
    consistent = operator.json("db", "check", "--data-dir", "exchange-data")
    assert consistent["ok"] and consistent["problems"] == []
    assert consistent["entries"]["data.delivered"] == 1
    assert deployment.server.failures_logged() == []
