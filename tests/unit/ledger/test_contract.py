"""The committed contract artifact is what the pinned solc-js makes of the committed source.

Runs ``node ledger/contracts/compile.mjs --stdout`` (solc from node_modules, installed by
``npm ci`` from package-lock.json) and compares the output with the committed JSON byte for byte.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[3]
CONTRACTS = PROJECT / "ledger" / "contracts"


def test_recompiling_the_source_reproduces_the_committed_artifact() -> None:
    node = shutil.which("node")
    if node is None or not (PROJECT / "node_modules" / "solc").is_dir():
        pytest.fail("node and node_modules/solc are needed: run `npm ci` (scripts/test does)")
    done = subprocess.run(
        [node, str(CONTRACTS / "compile.mjs"), "--stdout"],
        cwd=PROJECT,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == (CONTRACTS / "CheckpointAnchor.json").read_bytes()


def test_the_artifact_names_the_pinned_compiler() -> None:
    artifact = json.loads((CONTRACTS / "CheckpointAnchor.json").read_text())
    lock = json.loads((PROJECT / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/solc"]["version"]
    assert artifact["compiler"]["version"].startswith(pinned + "+commit.")
    assert f"pragma solidity {pinned};" in (CONTRACTS / "CheckpointAnchor.sol").read_text()
    package = json.loads((PROJECT / "package.json").read_text())
    assert package["devDependencies"]["solc"] == pinned  # exact, not a range
