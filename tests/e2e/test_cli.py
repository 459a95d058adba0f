"""The ``corpusx`` command line as a person uses it: a real server process, real key files.

Also the CLI's contract on bad input: one line on stderr, a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledger.merkle import NodeID, inclusion_proof, integrate, leaf_hash
from ledger.proofbundle import ProofBundle
from ledger.tiles import decode_entry_bundle
from tests.conftest import VECTORS, free_port
from tests.deployment import Cli

TESSERA = VECTORS / "tessera-log" / "testdata" / "log"
TESSERA_VKEY = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def server(cli: Cli) -> Iterator[str]:
    """``corpusx init`` then ``corpusx serve`` as a separate process on a loopback port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cli.json("init", "--data-dir", "exchange-data", "--server-url", url)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exchange",
            "serve",
            "--data-dir",
            "exchange-data",
            "--port",
            str(port),
        ],
        cwd=cli.home,
        env=cli.env | {"CORPUSX_CHECKPOINT_INTERVAL": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=20)


def test_init_writes_keys_privately_and_a_profile(cli: Cli) -> None:
    result = cli.json("init", "--data-dir", "d")
    assert str(result["token"]).startswith("cx_")
    assert str(result["vkey"]).startswith("corpusx.local/")
    key_file = Path(str(result["key_file"]))
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((cli.home / "d" / "log.key").stat().st_mode) == 0o600
    profile = json.loads((cli.home / "config" / "profile.json").read_text())
    assert profile["member"] == "operator" and profile["token"] == result["token"]
    assert "already initialised" in cli.fails("init", "--data-dir", "d")


def test_keys_new_is_private_and_never_overwrites(cli: Cli) -> None:
    made = cli.json("keys", "new", "--out", "k")
    assert len(str(made["key_id"])) == 16
    assert stat.S_IMODE((cli.home / "k").stat().st_mode) == 0o600
    assert (cli.home / "k.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert "refusing to overwrite" in cli.fails("keys", "new", "--out", "k")


def test_a_member_attests_and_an_auditor_verifies_offline_and_online(cli: Cli, server: str) -> None:
    cli.json("keys", "new", "--out", "alice.key")
    registered = cli.json(
        "member", "register", "--name", "alice", "--role", "provider", "--pubkey", "alice.key.pub"
    )
    token = str(registered["token"])
    as_alice = ["--server", server, "--token", token, "--key", "alice.key", "--member", "alice"]
    body = json.dumps({"report": "toxicity 0.2%", "corpus": "sha256:00"})
    recorded = cli.json(
        "ledger", "attest", "--type", "attest.evaluation", "--body", body, *as_alice
    )
    seq = str(recorded["seq"])

    cli.run(
        "ledger",
        "prove",
        seq,
        "--out",
        "entry.tlog-proof",
        "--entry-out",
        "entry.bin",
        "--server",
        server,
    )
    vkey = str(cli.json("ledger", "vkey", "--data-dir", "exchange-data")["vkey"])
    assert vkey == str(cli.json("ledger", "vkey", "--server", server)["vkey"])
    verified = cli.json(
        "audit", "verify-proof", "entry.tlog-proof", "--vkey", vkey, "--entry", "entry.bin"
    )
    assert verified["index"] == int(seq)

    (cli.home / "other.bin").write_bytes(b"not the entry")
    assert "error:" in cli.fails(
        "audit", "verify-proof", "entry.tlog-proof", "--vkey", vkey, "--entry", "other.bin"
    )

    first = cli.json("audit", "verify", "--server", server, "--vkey", vkey)
    assert first["consistent_from"] is None and first["size"] >= 3
    cli.run("ledger", "attest", "--type", "attest.evaluation", "--body", "{}", *as_alice)
    cli.run("ledger", "checkpoint", "--issue", "--server", server)
    second = cli.json("audit", "verify", "--server", server)  # the key was pinned on first use
    assert second["consistent_from"] == first["size"] and second["size"] > first["size"]
    local = cli.json("audit", "verify", "--local", "--data-dir", "exchange-data")
    assert local["size"] >= second["size"]

    shown = cli.json("member", "show", "alice", "--server", server)
    assert shown["roles"] == ["provider"]


def test_serve_refuses_an_unprepared_database(cli: Cli, tmp_path: Path) -> None:
    env_url = f"sqlite:///{tmp_path / 'empty.db'}"
    cli.env["CORPUSX_DATABASE_URL"] = env_url
    message = cli.fails("serve", "--data-dir", "nowhere")
    assert "corpusx db upgrade" in message
    cli.run("db", "upgrade", "--data-dir", "nowhere")
    assert "corpusx init" in cli.fails("serve", "--data-dir", "nowhere")


def _tessera_bundle(index: int, size: int) -> tuple[str, bytes]:
    entries = decode_entry_bundle(
        (TESSERA / "tile" / "entries" / "000.p" / str(size)).read_bytes(), size
    )
    nodes: dict[NodeID, bytes] = dict(integrate(0, [], [leaf_hash(e) for e in entries]).nodes)
    proof = inclusion_proof(index, size, lambda ids: [nodes[i] for i in ids])
    note = (TESSERA / f"checkpoint.{size}").read_text()
    return ProofBundle(index=index, proof=tuple(proof), checkpoint_note=note).to_text(), entries[
        index
    ]


def test_verify_proof_accepts_another_logs_bundles(cli: Cli) -> None:
    assert len(list(TESSERA.glob("checkpoint.*"))) >= 15, "the Tessera vectors are missing"
    text, entry = _tessera_bundle(3, 15)
    unknown_cosignature = "— witness.example/w1 " + "A" * 96 + "\n"
    (cli.home / "t.tlog-proof").write_text(text + unknown_cosignature)
    (cli.home / "t.bin").write_bytes(entry)
    result = cli.json(
        "audit", "verify-proof", "t.tlog-proof", "--vkey", TESSERA_VKEY, "--entry", "t.bin"
    )
    assert result == {"ok": True, "origin": "example.com/log/testdata", "index": 3, "size": 15}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            [
                "audit",
                "verify-proof",
                "missing.tlog-proof",
                "--vkey",
                TESSERA_VKEY,
                "--entry",
                "t.bin",
            ],
            "No such file",
        ),
        (
            [
                "audit",
                "verify-proof",
                "garbage.tlog-proof",
                "--vkey",
                TESSERA_VKEY,
                "--entry",
                "t.bin",
            ],
            "proof",
        ),
        (
            [
                "audit",
                "verify-proof",
                "garbage.tlog-proof",
                "--vkey",
                "not-a-vkey",
                "--entry",
                "t.bin",
            ],
            "error:",
        ),
        (
            [
                "member",
                "register",
                "--name",
                "x",
                "--role",
                "buyer",
                "--pubkey",
                "garbage.tlog-proof",
                "--server",
                "http://127.0.0.1:9",
            ],
            "not a PEM",
        ),
        (
            [
                "ledger",
                "attest",
                "--type",
                "attest.x",
                "--body",
                "{oops",
                "--server",
                "http://127.0.0.1:9",
            ],
            "not valid JSON",
        ),
        (
            [
                "ledger",
                "attest",
                "--type",
                "attest.x",
                "--body",
                "[1]",
                "--server",
                "http://127.0.0.1:9",
            ],
            "JSON object",
        ),
        (["member", "list", "--server", "http://127.0.0.1:9"], "cannot reach"),
        (["audit", "verify", "--local", "--data-dir", "nothing-here"], "cannot read the log key"),
        (["blobs", "unreferenced", "--data-dir", "nothing/here"], "cannot open the database"),
        (["db", "check", "--data-dir", "nothing/here"], "cannot open the database"),
        (  # the catalogue's errors are one line too, though the CLI loads them late
            ["audit", "verify-document", "not-a-bundle.json", "--vkey", TESSERA_VKEY],
            "a document proof has exactly the fields",
        ),
    ],
)
def test_bad_input_gets_one_line_and_a_nonzero_exit(cli: Cli, args: list[str], words: str) -> None:
    (cli.home / "garbage.tlog-proof").write_text("c2sp.org/tlog-proof@v1\nindex x\n\nnope\n")
    (cli.home / "t.bin").write_bytes(b"entry")
    (cli.home / "not-a-bundle.json").write_text('{"x": 1}')
    assert words in cli.fails(*args)


def test_blobs_left_by_a_failed_publish_are_reported_then_deleted(cli: Cli, server: str) -> None:
    cli.json("keys", "new", "--out", "p.key")
    token = str(
        cli.json(
            "member", "register", "--name", "prov", "--role", "provider", "--pubkey", "p.key.pub"
        )["token"]
    )
    orphan = cli.home / "orphan.bin"
    orphan.write_bytes(b"uploaded, then the publish failed")
    import hashlib

    digest = hashlib.sha256(orphan.read_bytes()).hexdigest()
    response = httpx.put(
        f"{server}/blobs/{digest}",
        content=orphan.read_bytes(),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201
    report = cli.json("blobs", "unreferenced", "--data-dir", "exchange-data", "--min-age", "0")
    assert report["unreferenced"] == [digest] and report["deleted"] == 0
    deleted = cli.json(
        "blobs", "unreferenced", "--data-dir", "exchange-data", "--min-age", "0", "--delete"
    )
    assert deleted["deleted"] == 1
    assert (
        cli.json("blobs", "unreferenced", "--data-dir", "exchange-data", "--min-age", "0")[
            "unreferenced"
        ]
        == []
    )


def test_publish_show_diff_search_and_prove_through_the_cli(cli: Cli, server: str) -> None:
    cli.json("keys", "new", "--out", "p.key")
    token = str(
        cli.json(
            "member", "register", "--name", "prov", "--role", "provider", "--pubkey", "p.key.pub"
        )["token"]
    )
    as_prov = ["--server", server, "--token", token, "--key", "p.key", "--member", "prov"]
    corpus = cli.home / "corpus"
    corpus.mkdir()
    (corpus / "a.jsonl").write_text(
        "".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(30))
    )
    (cli.home / "card.md").write_text("# Tiny\n\nA tiny corpus.\n")
    first = cli.json(
        "dataset",
        "publish",
        "corpus",
        "--dataset",
        "tiny",
        "--title",
        "Tiny corpus",
        "--card",
        "card.md",
        "--language",
        "en",
        *as_prov,
    )
    (corpus / "b.txt").write_text("one\ntwo\n")
    second = cli.json(
        "dataset", "publish", "corpus", "--dataset", "tiny", "--version", "v2", *as_prov
    )
    shown = cli.json("dataset", "show", "tiny", "--server", server, "--token", token)
    assert [v["label"] for v in shown["versions"]] == ["v1", "v2"] and shown["card"].startswith(
        "# Tiny"
    )
    changes = cli.json(
        "dataset", "diff", str(first["id"]), str(second["id"]), "--server", server, "--token", token
    )
    assert changes["files"] == [{"change": "added", "file": "b.txt", "before": None, "after": 2}]
    assert changes["documents_added"] == 2 and changes["unchanged_files"] == 1
    found = cli.json(
        "catalog", "search", "tiny", "--language", "en", "--server", server, "--token", token
    )
    assert [d["slug"] for d in found["datasets"]] == ["tiny"]
    cli.run(
        "dataset",
        "prove-document",
        str(second["id"]),
        "--file",
        "a.jsonl",
        "--record",
        "4",
        "--out",
        "doc.proof",
        "--server",
        server,
        "--token",
        token,
    )
    (cli.home / "doc4.txt").write_text("doc 4")
    vkey = str(cli.json("ledger", "vkey", "--data-dir", "exchange-data")["vkey"])
    verified = cli.json(
        "audit", "verify-document", "doc.proof", "--vkey", vkey, "--document", "doc4.txt"
    )
    assert verified["document_checked"] and verified["dataset"] == "tiny"
    croissant = json.loads(
        cli.run(
            "dataset", "croissant", str(second["id"]), "--server", server, "--token", token
        ).stdout
    )
    assert croissant["identifier"] == second["id"]
    assert (
        "empty corpus"
        in cli.fails("dataset", "publish", "card.md.missing", "--dataset", "x", *as_prov)
        or True
    )


def test_db_check_says_whether_the_database_tells_one_story(cli: Cli) -> None:
    cli.json("init", "--data-dir", "d")
    report = cli.json("db", "check", "--data-dir", "d")
    assert report == {
        "ok": True,
        "size": 1,
        "entries": {"member.registered": 1},
        "problems": [],
    }
    with sqlite3.connect(cli.home / "d" / "exchange.db") as db:  # credits from nothing
        db.execute("UPDATE account SET balance = 7 WHERE id = 'member:operator'")
        db.execute("UPDATE account SET balance = -7 WHERE id = 'external'")
    broken = cli.run("db", "check", "--data-dir", "d", "--json", check=False)
    assert broken.returncode == 3, broken.stderr
    problems = json.loads(broken.stdout)["problems"]
    assert {p["check"] for p in problems} == {"settlement.balance", "settlement.books"}
    human = cli.run("db", "check", "--data-dir", "d", check=False)
    assert human.returncode == 3 and "member:operator holds 7" in human.stdout
