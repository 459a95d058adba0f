"""``corpusx witness`` and ``audit verify --witness`` as a person uses them: real processes.

The README's witness tour, then the CLI's contract on bad input (one line, non-zero exit).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.test_cli import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@contextmanager
def serving(cli: Cli, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """``corpusx <args> --port P`` as a process; yields its URL once /healthz answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "exchange", *args, "--port", str(port)],
        cwd=cli.home,
        env=cli.env | (env or {}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, f"{args[0]} did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_the_witness_tour(cli: Cli) -> None:
    cli.json("init", "--data-dir", "exchange-data")
    log_vkey = cli.run("ledger", "vkey", "--data-dir", "exchange-data").stdout.strip()
    made = cli.json("witness", "init", "--data-dir", "w1", "--name", "witness.example.org/w1")
    witness_vkey = str(made["vkey"])
    assert witness_vkey.startswith("witness.example.org/w1+")
    assert cli.run("witness", "vkey", "--data-dir", "w1").stdout.strip() == witness_vkey
    assert cli.json("witness", "add-log", "--data-dir", "w1", "--vkey", log_vkey)["added"]
    with serving(cli, "witness", "serve", "--data-dir", "w1") as witness_url:
        env = {
            "CORPUSX_WITNESSES": f"{witness_vkey}={witness_url}",
            "CORPUSX_CHECKPOINT_INTERVAL": "0.5",
        }
        with serving(cli, "serve", "--data-dir", "exchange-data", env=env) as url:
            cli.run("ledger", "attest", "--server", url, "--type", "attest.tour", "--body", "{}")
            deadline = time.monotonic() + 30
            while "\n2\n" not in httpx.get(url + "/ledger/checkpoint").text:
                assert time.monotonic() < deadline, "the entry's checkpoint was never cosigned"
                time.sleep(0.1)
            served = cli.run("ledger", "checkpoint", "--server", url).stdout
            assert "\n\u2014 witness.example.org/w1 " in served
            report = cli.json(
                "audit", "verify", "--server", url, "--vkey", log_vkey, "--witness", witness_vkey
            )
            assert report["size"] == 2 and report["witnesses"] == ["witness.example.org/w1"]
            other = cli.json("witness", "init", "--data-dir", "w2", "--name", "witness.example/w2")
            error = cli.fails(
                "audit", "verify", "--server", url, "--witness", witness_vkey,
                "--witness", str(other["vkey"]),
            )  # fmt: skip
            assert error.startswith("error: the checkpoint of size 2 does not satisfy")
            assert "needs 2 of (witness.example.org/w1, witness.example/w2)" in error
            one_of_two = cli.json(
                "audit", "verify", "--server", url, "--witness", witness_vkey,
                "--witness", str(other["vkey"]), "--quorum", "1",
            )  # fmt: skip
            assert one_of_two["witnesses"] == ["witness.example.org/w1"]
    logs = cli.json("witness", "logs", "--data-dir", "w1")
    assert logs == [  # type: ignore[comparison-overlap]
        {
            "origin": log_vkey.split("+")[0],
            "vkeys": [log_vkey],
            "size": 2,
            "root": report["root"],
            "cosigned_at": logs[0]["cosigned_at"],  # type: ignore[index]
        }
    ]
    assert cli.json("witness", "evidence", "--data-dir", "w1") == {"count": 0, "evidence": []}
    assert "0 refused checkpoint(s)" in cli.run("witness", "evidence", "--data-dir", "w1").stdout


def test_witness_commands_fail_in_one_line(cli: Cli) -> None:
    assert cli.fails("witness", "vkey", "--data-dir", "nowhere").startswith(
        "error: cannot read the witness key"
    )
    assert "give the witness a name" in cli.fails("witness", "init", "--data-dir", "w")
    assert "bad witness name" in cli.fails("witness", "init", "--data-dir", "w", "--name", "a b")
    cli.json("witness", "init", "--data-dir", "w", "--name", "witness.example/w")
    assert "already has a witness key" in cli.fails(
        "witness", "init", "--data-dir", "w", "--name", "witness.example/w"
    )
    assert cli.fails("witness", "add-log", "--data-dir", "w", "--vkey", "nope").startswith(
        "error: not a log vkey"
    )
    witness_vkey = cli.run("witness", "vkey", "--data-dir", "w").stdout.strip()
    assert "signature type 0x04, expected 0x01" in cli.fails(
        "witness", "add-log", "--data-dir", "w", "--vkey", witness_vkey
    )
    wrong_kind = cli.fails("witness", "evidence", "--data-dir", "w", "--kind", "x")
    assert "--kind must be one of" in wrong_kind
    assert "cannot read the witness key" in cli.fails("witness", "serve", "--data-dir", "nowhere")
    assert "--quorum needs the witnesses" in cli.fails("audit", "verify", "--quorum", "1")
    (cli.home / "p.policy").write_text("quorum none\n")
    assert "not both" in cli.fails(
        "audit", "verify", "--policy", "p.policy", "--witness", witness_vkey
    )
    (cli.home / "bad.policy").write_text("quorum nobody\n")
    assert "policy line 1" in cli.fails("audit", "verify", "--policy", "bad.policy")
    assert "outside 0..1" in cli.fails(
        "audit", "verify", "--witness", witness_vkey, "--quorum", "2"
    )


def test_the_exchange_refuses_bad_witness_settings(cli: Cli) -> None:
    cli.json("init", "--data-dir", "exchange-data")
    env = cli.env | {"CORPUSX_WITNESSES": "not-a-vkey=http://x"}
    done = subprocess.run(
        [sys.executable, "-m", "exchange", "serve", "--data-dir", "exchange-data"],
        cwd=cli.home, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: CORPUSX_WITNESSES: expected VKEY=URL, got 'not-a-vkey=http://x'"
    )
