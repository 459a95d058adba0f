"""Anchoring through the command line, as an operator and an outside auditor do it: a key, a
deployment saved in the data dir, a server that anchors, an anchor on demand, the audit."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.anvil import DEV_KEYS, Anvil
from tests.conftest import free_port
from tests.e2e.test_cli import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def serve(cli: Cli, port: int, **env: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "exchange", "serve", "--data-dir", "d", "--port", str(port)],
        cwd=cli.home,
        env=cli.env | env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)


@pytest.fixture
def anchoring_server(cli: Cli, anvil: Anvil) -> Iterator[str]:
    """``init``, ``chain deploy --data-dir``, then ``serve``: the contract comes from chain.json."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cli.json("init", "--data-dir", "d", "--server-url", url)
    key = cli.home / "operator-chain.key"
    key.write_text("0x" + DEV_KEYS[2] + "\n")
    key.chmod(0o600)
    deployed = cli.json("chain", "deploy", "--rpc", anvil.url, "--key", str(key), "--data-dir", "d")
    saved = json.loads((cli.home / "d" / "chain.json").read_text())
    assert saved["contract"] == deployed["contract"] and saved["chain_id"] == 31337
    env = {
        "CORPUSX_CHAIN_KEY_FILE": str(key),
        "CORPUSX_CHAIN_CONFIRMATIONS": "1",
        "CORPUSX_CHAIN_POLL_INTERVAL": "0.2",
        "CORPUSX_ANCHOR_EVERY_ENTRIES": "1000",
        "CORPUSX_ANCHOR_INTERVAL": "0",
    }
    process = serve(cli, port, **env)
    yield url
    process.terminate()
    process.wait(timeout=20)


def test_keys_for_the_chain_are_private_and_a_bad_one_is_one_line(cli: Cli, anvil: Anvil) -> None:
    made = cli.json("chain", "new-key", "--out", "fresh.key")
    assert str(made["address"]).startswith("0x") and len(str(made["address"])) == 42
    assert stat.S_IMODE((cli.home / "fresh.key").stat().st_mode) == 0o600
    assert DEV_KEYS[0] not in (cli.home / "fresh.key").read_text()
    # A key nobody funded cannot pay for the deployment: one line, the node's reason.
    assert "error:" in cli.fails("chain", "deploy", "--rpc", anvil.url, "--key", "fresh.key")
    (cli.home / "fresh.key").chmod(0o644)
    assert "chmod 600" in cli.fails("chain", "deploy", "--rpc", anvil.url, "--key", "fresh.key")


def test_an_operator_anchors_on_demand_and_an_auditor_checks_it(
    cli: Cli, anvil: Anvil, anchoring_server: str
) -> None:
    done = cli.json("ledger", "anchor", "--wait", "--timeout", "60")
    anchor = done["anchor"]
    assert isinstance(anchor, dict) and anchor["state"] == "final" and anchor["size"] == 1
    cli.run("ledger", "checkpoint", "--issue")  # cover the checkpoint.anchored entry
    audited = cli.json("audit", "anchors", "--rpc", anvil.url)
    (check,) = audited["anchors"]  # type: ignore[misc]
    assert audited["ok"] is True and check["ok"] and check["size"] == 1
