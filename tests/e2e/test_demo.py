"""The newcomer's tour (`corpusx demo`, run by the README's first command) works end to end."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from exchange.demo import run_demo
from exchange.profile import Profile, save_profile
from tests.conftest import LiveServer


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the embedded defaults
def test_the_tour_runs_every_step_as_a_real_command(
    live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The operator's profile, as `corpusx init` leaves it for the person who ran it.
    config = tmp_path / "config"
    monkeypatch.setenv("CORPUSX_CONFIG_DIR", str(config))
    key_file = tmp_path / "operator.key"
    key_file.write_bytes(
        live_server.prepared.operator_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    save_profile(
        Profile(
            server=live_server.url,
            token=live_server.prepared.operator_token,
            member="operator",
            key_file=str(key_file),
        )
    )
    lines: list[str] = []
    tour = run_demo(live_server.url, tmp_path / "demo", echo=lines.append)

    commands = [line for line in lines if line.startswith("$ corpusx ")]
    for step in (
        "dataset publish",
        "offer create",
        "licence buy",
        "data fetch",
        "compliance check",
        "audit verify-attestation",
        "audit verify --server",
    ):
        assert any(step in command for command in commands), step
    members = json.loads((tmp_path / "demo" / "members.json").read_text())
    assert set(members) == {"acme", "bob", "audrey"} and members == tour.members
    assert stat.S_IMODE((tmp_path / "demo" / "members.json").stat().st_mode) == 0o600
    fetched = tmp_path / "demo" / "bob-data"
    corpus = tmp_path / "demo" / "cat-corpus"
    for name in ("web-0.jsonl", "books-0.parquet", "notes.txt"):
        assert (fetched / name).read_bytes() == (corpus / name).read_bytes()
    spdx = json.loads((tmp_path / "demo" / "bob-cats-1b.spdx.json").read_text())
    assert any(e.get("relationshipType") == "trainedOn" for e in spdx["@graph"])
    assert any("deny:" in line and "fine-tuning" in line for line in lines)
