"""Tampering with the database is caught by ``corpusx audit verify``, naming the first bad entry.

Each mutation is applied with SQL directly (as a rogue operator with database access would);
the audit must exit non-zero and name the first bad sequence number and what is wrong.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import rfc8785
from sqlalchemy import text
from sqlalchemy.engine import Connection

from exchange.db import make_engine
from ledger.merkle import leaf_hash
from tests.conftest import LiveServer, Prepared
from tests.integration.helpers import register

SIZE = 10


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exchange", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def build_log(live: LiveServer) -> None:
    """Ten entries from three members; a checkpoint at ten."""
    with live.operator() as operator:
        alice = register(operator, live.url, "alice", ["provider"])
        bob = register(operator, live.url, "bob", ["buyer"])
        for n in range(SIZE - 3):
            (alice if n % 2 else bob).client.attest("attest.note", {"n": n})
        assert "\n10\n" in operator.issue_checkpoint()


def data_of(connection: Connection, seq: int) -> dict[str, object]:
    raw = connection.execute(
        text("SELECT data FROM ledger_entry WHERE seq = :s"), {"s": seq}
    ).scalar_one()
    value: dict[str, object] = json.loads(raw)
    return value


def put(connection: Connection, seq: int, entry: dict[str, object]) -> None:
    connection.execute(
        text("UPDATE ledger_entry SET data = :d WHERE seq = :s"),
        {"d": rfc8785.dumps(entry), "s": seq},
    )


def edit_body(c: Connection) -> None:
    entry = data_of(c, 5)
    entry["statement"]["body"]["n"] = 999  # type: ignore[index]
    put(c, 5, entry)


def delete_entry(c: Connection) -> None:
    c.execute(text("DELETE FROM ledger_entry WHERE seq = 5"))


def insert_entry(c: Connection) -> None:
    forged = data_of(c, 3)  # a genuine, signed statement, replayed at position 5
    previous = c.execute(text("SELECT data FROM ledger_entry WHERE seq = 4")).scalar_one()
    forged.update(seq=5, prev=leaf_hash(previous).hex(), time=data_of(c, 4)["time"])
    c.execute(text("UPDATE ledger_entry SET seq = seq + 1000 WHERE seq >= 5"))
    c.execute(text("UPDATE ledger_entry SET seq = seq - 999 WHERE seq >= 1000"))
    c.execute(
        text(
            "INSERT INTO ledger_entry (seq, type, member, key_id, nonce, time, data) "
            "SELECT 5, type, member, key_id, 'forged-nonce-0000', time, :d "
            "FROM ledger_entry WHERE seq = 3"
        ),
        {"d": rfc8785.dumps(forged)},
    )


def reorder(c: Connection) -> None:
    four, six = data_of(c, 4), data_of(c, 6)
    put(c, 4, six)
    put(c, 6, four)


def truncate(c: Connection) -> None:
    c.execute(text("DELETE FROM ledger_entry WHERE seq >= 7"))


def swap_signature(c: Connection) -> None:
    five, six = data_of(c, 5), data_of(c, 6)
    five["signature"] = six["signature"]
    put(c, 5, five)


MUTATIONS: dict[str, tuple[Callable[[Connection], None], str]] = {
    "body edited": (edit_body, "entry 5: the actor signature does not verify"),
    "entry deleted": (delete_entry, "entry 5: entry at position 5 says it is entry 6"),
    "entry inserted": (insert_entry, "entry 5: nonce"),
    "entries reordered": (reorder, "entry 4: entry at position 4 says it is entry 6"),
    "log truncated": (truncate, "entry 7: entry is missing"),
    "signature swapped": (swap_signature, "entry 5: the actor signature does not verify"),
}


def audit_env(prepared: Prepared, config: Path) -> dict[str, str]:
    return {
        "CORPUSX_DATA_DIR": str(prepared.settings.data_dir),
        "CORPUSX_DATABASE_URL": prepared.settings.resolved_database_url,
        "CORPUSX_CONFIG_DIR": str(config),
    }


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_local_audit_names_the_first_bad_entry(
    live_server: LiveServer, tmp_path: Path, mutation: str
) -> None:
    build_log(live_server)
    env = audit_env(live_server.prepared, tmp_path / "config")
    clean = run_cli("audit", "verify", "--local", "--json", env=env)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["size"] == SIZE

    mutate, expected = MUTATIONS[mutation]
    engine = make_engine(live_server.prepared.settings.resolved_database_url)
    with engine.begin() as connection:
        mutate(connection)
    engine.dispose()

    tampered = run_cli("audit", "verify", "--local", env=env)
    assert tampered.returncode != 0
    lines = tampered.stderr.strip().splitlines()
    assert len(lines) == 1, tampered.stderr
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize("mutation", ["body edited", "log truncated"])
def test_remote_audit_sees_tampering_through_the_public_api(
    live_server: LiveServer, tmp_path: Path, mutation: str
) -> None:
    build_log(live_server)
    env = {"CORPUSX_CONFIG_DIR": str(tmp_path / "config")}
    clean = run_cli(
        "audit", "verify", "--server", live_server.url, "--vkey", live_server.prepared.vkey, env=env
    )
    assert clean.returncode == 0, clean.stderr
    engine = make_engine(live_server.prepared.settings.resolved_database_url)
    with engine.begin() as connection:
        MUTATIONS[mutation][0](connection)
    engine.dispose()
    tampered = run_cli("audit", "verify", "--server", live_server.url, env=env)
    assert tampered.returncode != 0
    expected = "entry 5: the actor signature" if mutation == "body edited" else "error: 404"
    assert expected in tampered.stderr, tampered.stderr
