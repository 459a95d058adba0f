"""The exchange deployed as an operator runs it, for end-to-end and load tests.

``Cli`` runs ``corpusx`` as a subprocess in a home folder with its own config dir (so a test's
profile, keys and audit pins are its own). ``ServerProcess`` runs ``corpusx serve`` in its own
process group, so that a test can SIGKILL the whole server — the uvicorn supervisor and every
worker — at once, as a power cut would, and start it again. ``deploy`` prepares the real thing:
a fresh PostgreSQL database, blobs in a fresh bucket of the S3 server, ``corpusx db upgrade`` and
``corpusx init``, then ``corpusx serve --workers N``; it checks that N distinct worker processes
answer requests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

CLIENT_VARIABLES = (
    "CORPUSX_SERVER",
    "CORPUSX_TOKEN",
    "CORPUSX_KEY",
    "CORPUSX_MEMBER",
    "CORPUSX_DATABASE_URL",
    "CORPUSX_DATA_DIR",
    "CORPUSX_BLOB_STORE",
)
# What a server log must never say: a request or the checkpoint schedule failing in a worker.
SERVER_FAILURES = ("Traceback", "unhandled error", "scheduled checkpoint failed")


class Cli:
    """``corpusx`` as a person runs it: a subprocess in ``home`` with its own config dir."""

    def __init__(self, home: Path, **env: str) -> None:
        self.home = home
        self.env = {**os.environ, "CORPUSX_CONFIG_DIR": str(home / "config")}
        for name in CLIENT_VARIABLES:
            self.env.pop(name, None)
        self.env.update(env)

    def run(
        self, *args: str, check: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "exchange", *args],
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert done.returncode == 0, f"corpusx {' '.join(args)}: {done.stderr}"
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def fails(self, *args: str) -> str:
        done = self.run(*args, check=False)
        assert done.returncode != 0, done.stdout
        assert "Traceback" not in done.stderr, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert not lines[0].startswith("internal error"), lines[0]  # a bug, not bad input
        return lines[0]


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(p) for p in (task / "children").read_text().split())
        except OSError:  # the thread ended meanwhile
            continue
    return found


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class ServerProcess:
    """``corpusx serve`` in its own process group, its output in ``log``."""

    cli: Cli
    port: int
    workers: int
    log: Path
    data_dir: str = "exchange-data"
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 180) -> None:
        assert self.process is None, "the server is already running"
        arguments = ["serve", "--data-dir", self.data_dir, "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "exchange", *arguments, "--workers", str(self.workers)],
                cwd=self.cli.home,
                env=self.cli.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed as one
            )
        self.starts += 1
        self._wait_until_it_answers(timeout)

    def _wait_until_it_answers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited:\n{self.log_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not start:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)

    def worker_pids(self) -> set[int]:
        """The uvicorn worker processes (the supervisor's spawned children)."""
        assert self.process is not None
        children = _children(self.process.pid)
        return {pid for pid in children if "spawn_main" in _command_line(pid)}

    def answering_workers(self, *, timeout: float = 60) -> set[int]:
        """The PIDs that answer ``/healthz``, asked concurrently until all workers have."""
        seen: set[int] = set()
        deadline = time.monotonic() + timeout

        def ask(_: int) -> int:
            with httpx.Client(timeout=10) as http:  # a new connection each time
                return int(http.get(self.url + "/healthz").json()["worker"])

        with ThreadPoolExecutor(max_workers=8) as pool:
            while len(seen) < self.workers and time.monotonic() < deadline:
                seen.update(pool.map(ask, range(16)))
        return seen

    def check_workers(self) -> set[int]:
        """Every worker process of the supervisor answers requests; their PIDs."""
        workers = self.worker_pids()
        assert len(workers) == self.workers, f"expected {self.workers} workers, found {workers}"
        answering = self.answering_workers()
        assert answering == workers, f"workers {workers}, answering {answering}"
        return workers

    def kill(self) -> None:
        """SIGKILL the supervisor and every worker at once: nothing gets to clean up."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._wait_for_group_to_die()
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        except ProcessLookupError:
            pass
        self._wait_for_group_to_die()
        self.process = None

    def _wait_for_group_to_die(self) -> None:
        """Workers are reparented when the supervisor dies; wait until none is left."""
        assert self.process is not None
        group = self.process.pid
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise AssertionError(f"process group {group} is still alive")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def failures_logged(self) -> list[str]:
        return [line for line in self.log_text().splitlines() if _is_failure(line)]


def _is_failure(line: str) -> bool:
    return any(marker in line for marker in SERVER_FAILURES)


@dataclass
class Deployment:
    """An initialised exchange served by ``corpusx serve --workers N``."""

    cli: Cli
    server: ServerProcess
    database_url: str
    operator_token: str
    operator_key: Path
    vkey: str
    init: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def data_dir(self) -> Path:
        return self.cli.home / self.server.data_dir


@contextmanager
def deploy(
    home: Path,
    *,
    database_url: str,
    s3: dict[str, str],
    port: int,
    workers: int = 2,
    checkpoint_interval: float = 1.0,
) -> Iterator[Deployment]:
    """Upgrade, init and serve an exchange on ``database_url`` with blobs on ``s3``."""
    home.mkdir(parents=True, exist_ok=True)
    cli = Cli(
        home,
        CORPUSX_DATABASE_URL=database_url,
        CORPUSX_BLOB_STORE=f"s3://{s3['bucket']}/blobs",
        CORPUSX_S3_ENDPOINT_URL=s3["endpoint_url"],
        CORPUSX_S3_REGION=s3["region"],
        CORPUSX_S3_ACCESS_KEY_ID=s3["access_key_id"],
        CORPUSX_S3_SECRET_ACCESS_KEY=s3["secret_access_key"],
        CORPUSX_CHECKPOINT_INTERVAL=str(checkpoint_interval),
        TMPDIR=str(home / "tmp"),  # what a killed server leaves in temp dirs stays in the test's
    )
    (home / "tmp").mkdir(exist_ok=True)
    server = ServerProcess(cli, port=port, workers=workers, log=home / "server.log")
    assert cli.json("db", "upgrade", "--data-dir", server.data_dir) == {"database": "upgraded"}
    init = cli.json("init", "--data-dir", server.data_dir, "--server-url", server.url)
    server.start()
    try:
        server.check_workers()
        yield Deployment(
            cli=cli,
            server=server,
            database_url=database_url,
            operator_token=str(init["token"]),
            operator_key=Path(str(init["key_file"])),
            vkey=str(init["vkey"]),
            init=init,
        )
    finally:
        server.stop()
