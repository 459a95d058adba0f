"""A real anvil node (npm ``@foundry-rs/anvil``, installed by ``npm ci`` from package-lock.json),
started by the tests on a free loopback port.

The npm package ships the binary in a platform package
(``node_modules/@foundry-rs/anvil-<os>-<arch>/bin/anvil``); ``node_modules/.bin/anvil`` is a node
wrapper around it. If neither is there, the tests fail with what to run: they are never skipped.

:class:`Anvil` wraps the node and the mining controls the tests use: ``evm_mine`` / ``anvil_mine``,
``evm_setAutomine``, ``evm_snapshot`` / ``evm_revert`` (a reorg: blocks after the snapshot are
gone) and ``anvil_dropTransaction`` (a transaction evicted from the pool). ``stop()`` and
``start()`` make an outage; with ``state_file`` the chain survives it.
"""

from __future__ import annotations

import contextlib
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx

PROJECT = Path(__file__).resolve().parents[1]
#: anvil's default accounts (its well-known test mnemonic): public keys of a test chain only.
DEV_KEYS = (
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
)
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def anvil_binary() -> Path:
    """The anvil executable under node_modules, or RuntimeError saying how to install it."""
    system = {"linux": "linux", "darwin": "darwin"}.get(sys.platform, sys.platform)
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    modules = PROJECT / "node_modules"
    for candidate in (
        modules / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil",
        modules / ".bin" / "anvil",
    ):
        if candidate.exists():
            return candidate
    raise RuntimeError(
        f"anvil is not installed under {modules}: run `npm ci` at the project root "
        "(scripts/test does it); the chain tests need it"
    )


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Anvil:
    """One anvil process on a fixed loopback port (restartable there, for outages)."""

    def __init__(self, *, state_file: Path | None = None, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state_file = state_file
        self.extra = extra
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._http = httpx.Client(timeout=10)
        self._ids = 0

    # -- process ---------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        command = [str(anvil_binary()), "--port", str(self.port), "--silent", *self.extra]
        if self.state_file is not None:
            command += ["--state", str(self.state_file)]
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  (closed by stop())
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                output = self._tail()
                self.stop()
                raise RuntimeError(f"anvil did not start on port {self.port}:\n{output}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the node (SIGTERM, so that ``--state`` is written)."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        self.stop()
        self._http.close()

    def _answers(self) -> bool:
        try:
            self.rpc("eth_chainId")
            return True
        except (httpx.HTTPError, RuntimeError):
            return False

    def _tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    # -- JSON-RPC --------------------------------------------------------------------------

    def rpc(self, method: str, *params: Any) -> Any:
        self._ids += 1
        answer = self._http.post(
            self.url, json={"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params}
        ).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def set_automine(self, enabled: bool) -> None:
        self.rpc("evm_setAutomine", enabled)

    def snapshot(self) -> str:
        snapshot: str = self.rpc("evm_snapshot")
        return snapshot

    def revert(self, snapshot: str) -> None:
        assert self.rpc("evm_revert", snapshot) is True

    def drop(self, tx_hash: str) -> None:
        self.rpc("anvil_dropTransaction", tx_hash)


@contextlib.contextmanager
def running_anvil(
    *, state_file: Path | None = None, extra: tuple[str, ...] = ()
) -> Iterator[Anvil]:
    node = Anvil(state_file=state_file, extra=extra)
    node.start()
    try:
        yield node
    finally:
        node.close()
