"""The newcomer's tour: the whole journey of the three users, as the commands they would type.

``corpusx demo`` runs against a running exchange (``scripts/start`` starts one and runs this
once). Every step is a real ``corpusx`` command run in a subprocess, printed first, with the
environment a person would export for that member: a provider publishes a sample corpus and
offers it, the operator credits a model builder, who buys a licence, fetches exactly the
licensed files, checks its training manifest against its licences and attests it; an auditor
verifies the attestation offline and the whole log online. The members' keys and tokens are
kept (0600) in the demo folder so a person can carry on from where the tour stops.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SUBJECTS = ("The cat", "A kitten", "The old tomcat", "Our neighbour's cat", "A barn cat")
VERBS = ("watches", "chases", "ignores", "sleeps beside", "stares at", "purrs near")
OBJECTS = ("the window", "a moth", "the radiator", "a paper bag", "the garden", "a sunbeam")
ENDINGS = ("all afternoon.", "before dawn.", "with great patience.", "as if nothing happened.")
MEMBERS = (("acme", "provider"), ("bob", "buyer"), ("audrey", "auditor"))


class DemoError(Exception):
    """A step of the tour failed; the message names the command and its error."""


def write_sample_corpus(root: Path, *, documents: int = 3_000, seed: int = 7) -> Path:
    """A small, deterministic corpus in the three formats the exchange ingests."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    rng = random.Random(seed)

    def sentence() -> str:
        parts = (SUBJECTS, VERBS, OBJECTS, ENDINGS)
        return " ".join(rng.choice(p) for p in parts)

    def document() -> str:
        return " ".join(sentence() for _ in range(rng.randint(3, 9)))

    root.mkdir(parents=True, exist_ok=True)
    with (root / "web-0.jsonl").open("w", encoding="utf-8") as handle:
        for i in range(documents):
            handle.write(json.dumps({"id": i, "text": document()}) + "\n")
    rows = [document() for _ in range(documents // 2)]
    pq.write_table(pa.table({"text": rows}), root / "books-0.parquet")
    (root / "notes.txt").write_text("\n".join(sentence() for _ in range(200)) + "\n")
    return root


@dataclass
class Tour:
    server: str
    folder: Path
    echo: Callable[[str], None]
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    members: dict[str, dict[str, str]] = field(default_factory=dict)

    def say(self, text: str) -> None:
        self.echo(f"\n\033[1m# {text}\033[0m")

    def run(self, *args: str, member: str | None = None, expect_exit: int = 0) -> Any:
        """Run ``corpusx ARGS --json`` as ``member`` (the operator's profile if None)."""
        env = dict(self.env, CORPUSX_SERVER=self.server, NO_COLOR="1")
        shown = ["corpusx", *args]
        if member is not None:
            who = self.members[member]
            env.update(CORPUSX_TOKEN=who["token"], CORPUSX_KEY=who["key"], CORPUSX_MEMBER=member)
            self.echo(f"$ {shlex.join(shown)}        \033[2m# as {member}\033[0m")
        else:
            self.echo(f"$ {shlex.join(shown)}")
        done = subprocess.run(
            [sys.executable, "-m", "exchange", *args, "--json"],
            env=env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != expect_exit:
            message = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise DemoError(f"`{shlex.join(shown)}` failed: {message}")
        return json.loads(done.stdout) if done.stdout.strip() else None

    def show(self, text: str) -> None:
        self.echo(f"  {text}")


def run_demo(server: str, folder: Path, *, echo: Callable[[str], None] = print) -> Tour:
    folder.mkdir(parents=True, exist_ok=True)
    tour = Tour(server, folder.resolve(), echo)
    _members(tour)
    version, offer = _provider(tour)
    _buyer(tour, version, offer)
    _audit(tour)
    _save(tour)
    return tour


def _members(tour: Tour) -> None:
    tour.say("The operator admits a provider, a model builder and an auditor; each keeps its key.")
    for member, role in MEMBERS:
        key = f"{member}.key"
        tour.run("keys", "new", "--out", key)
        made = tour.run(
            "member", "register", "--name", member, "--role", role, "--pubkey", f"{key}.pub"
        )
        tour.members[member] = {"token": made["token"], "key": str(tour.folder / key)}
        tour.show(f"{member} ({role}) is ledger entry {made['seq']}; its token is shown once")


def _provider(tour: Tour) -> tuple[str, str]:
    tour.say("acme publishes a corpus: hashed per document, uploaded once, signed, recorded.")
    write_sample_corpus(tour.folder / "cat-corpus")
    published = tour.run(
        "dataset",
        "publish",
        "cat-corpus",
        "--dataset",
        "cat-sentences",
        "--title",
        "Cat sentences",
        "--description",
        "Synthetic English sentences about cats, for the tour.",
        "--language",
        "en",
        "--tag",
        "demo",
        member="acme",
    )
    version = published["id"]
    tour.show(f"version {version} ({published['records']:,} documents)")
    tour.say("acme offers it: training and evaluation, non-commercial, a year, with attribution.")
    offer = tour.run(
        "offer",
        "create",
        "--dataset",
        "cat-sentences",
        "--version",
        version,
        "--price",
        "250",
        "--purpose",
        "training",
        "--purpose",
        "evaluation",
        "--days",
        "365",
        "--attribution",
        "Cat sentences (c) Acme Corpora",
        member="acme",
    )
    tour.show(f"offer {offer['id']}, ledger entry {offer['published_seq']}")
    return version, offer["id"]


def _buyer(tour: Tour, version: str, offer: str) -> None:
    tour.say("The operator credits bob; bob finds the corpus, buys a licence and fetches it.")
    tour.run("account", "deposit", "bob", "1000", "--reference", "demo-transfer-1")
    found = tour.run("catalog", "search", "cats", member="bob")
    tour.show(f"search 'cats': {found['total']} dataset(s)")
    bought = tour.run("licence", "buy", offer, member="bob")
    tour.show(f"licence {bought['id']}: bob paid {bought['price']['amount']} credits")
    fetched = tour.run("data", "fetch", version, "--out", "bob-data", member="bob")
    tour.show(
        f"{len(fetched['files'])} files, every SHA-256 and document root checked; "
        f"delivery receipt {fetched['receipt']}"
    )
    tour.run("data", "receipt", str(fetched["delivery"]), member="bob")
    tour.say("May bob use it to fine-tune? The exchange answers with the rule behind it.")
    denied = tour.run(
        "licence", "check", version, "--purpose", "fine-tuning", member="bob", expect_exit=3
    )
    tour.show(f"deny: {denied['reasons'][0]['message']}")
    tour.say("bob checks its training data against its licences, and attests it on the ledger.")
    manifest = {
        "model": "bob-cats-1b",
        "purpose": "training",
        "commercial": False,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "data": [{"version": version}],
    }
    (tour.folder / "training-manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    checked = tour.run(
        "compliance",
        "check",
        "training-manifest.json",
        "--attest",
        "--spdx",
        "bob-cats-1b.spdx.json",
        member="bob",
    )
    tour.show(
        f"compliant: {checked['compliant']}; attestation entry {checked['attestation_seq']}; "
        "SPDX 3.0 AI package in bob-cats-1b.spdx.json"
    )
    tour.members["bob"]["attestation"] = str(checked["attestation_seq"])


def _audit(tour: Tour) -> None:
    tour.say("audrey, an auditor, verifies the attestation offline, then the whole log.")
    seq = tour.members["bob"]["attestation"]
    tour.run("compliance", "bundle", seq, "--out", "attestation.json", member="audrey")
    vkey = tour.run("ledger", "vkey", "--server", tour.server)["vkey"]
    verified = tour.run("audit", "verify-attestation", "attestation.json", "--vkey", vkey)
    tour.show(
        f"{verified['items']} item(s) re-checked against {len(verified['agreements'])} licence"
    )
    audited = tour.run("audit", "verify", "--server", tour.server, "--vkey", vkey, member="audrey")
    tour.show(
        f"{audited['size']} entries: every signature, chain link and role checked, "
        f"root {audited['root'][:16]}… matches the signed checkpoint"
    )


def _save(tour: Tour) -> None:
    path = tour.folder / "members.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(tour.members, handle, indent=2)
    tour.say("Carry on as any of them, for example as bob:")
    bob = tour.members["bob"]
    tour.echo(
        f"export CORPUSX_SERVER={tour.server} CORPUSX_MEMBER=bob "
        f"CORPUSX_KEY={bob['key']} CORPUSX_TOKEN={bob['token']}"
    )
    tour.echo("corpusx licence list; corpusx data list; corpusx offer list")
    tour.echo(f"(all three members' tokens are in {path}; the API is at {tour.server}/docs)")
