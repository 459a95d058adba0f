"""Witnesses as real processes (``python -m exchange witness serve``) on loopback ports."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from exchange.witness_store import WitnessStore, create_witness
from ledger.note import CosignatureVerifier
from ledger.witness import AddCheckpointRequest
from tests.conftest import PROJECT, free_port

CLI = (sys.executable, "-m", "exchange")


def corpusx(*args: str) -> str:
    """Run the command line; its stdout (a failure fails the test with its stderr)."""
    done = subprocess.run(
        [*CLI, *args], cwd=PROJECT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class WitnessProcess:
    """One witness: its data dir (made in-process), served by its own process."""

    data_dir: Path
    name: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls, data_dir: Path, name: str, *log_vkeys: str) -> WitnessProcess:
        create_witness(data_dir, name)
        store = WitnessStore(data_dir)
        try:
            for vkey in log_vkeys:
                store.add_log(vkey)
        finally:
            store.close()
        return cls(data_dir, name)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def verifier(self) -> CosignatureVerifier:
        store = WitnessStore(self.data_dir)
        try:
            return store.signer.verifier
        finally:
            store.close()

    @property
    def vkey(self) -> str:
        return self.verifier.vkey

    def spawn(self) -> None:
        log = (self.data_dir / "serve.log").open("ab")
        args = ("witness", "serve", "--data-dir", str(self.data_dir), "--port", str(self.port))
        self.process = subprocess.Popen(
            [*CLI, *args],
            cwd=PROJECT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None and self.process.poll() is None, self.log_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"witness {self.name} did not start:\n{self.log_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def log_text(self) -> str:
        path = self.data_dir / "serve.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def post(self, request: AddCheckpointRequest | bytes) -> httpx.Response:
        body = request if isinstance(request, bytes) else request.to_bytes()
        return httpx.post(f"{self.url}/add-checkpoint", content=body, timeout=10)

    def store(self) -> WitnessStore:
        return WitnessStore(self.data_dir)


def start_all(witnesses: Sequence[WitnessProcess]) -> None:
    """Spawn all first, then wait: the processes start in parallel."""
    for witness in witnesses:
        witness.spawn()
    for witness in witnesses:
        witness.wait_ready()


@contextmanager
def running(witnesses: Sequence[WitnessProcess]) -> Iterator[Sequence[WitnessProcess]]:
    try:
        start_all(witnesses)
        yield witnesses
    finally:
        for witness in witnesses:
            witness.stop()
