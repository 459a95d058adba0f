"""moto's standalone S3 server, started by the tests as a subprocess on a free loopback port.

``running_moto_server()`` starts ``python -m moto.server``, waits until it answers HTTP and
stops it at the end; if it cannot start, it raises ``RuntimeError`` with the server's output
(the fixtures turn that into a failure: these tests are never skipped). The server accepts
multipart parts from ``MIN_PART_SIZE`` bytes (real S3 wants 5 MiB) so tests stay small.
moto does not check signatures: a presigned URL can be fetched, not proven valid.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIN_PART_SIZE = 64 * 1024
REGION = "us-east-1"
CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}


@dataclass(frozen=True)
class MotoServer:
    endpoint_url: str

    @property
    def options(self) -> dict[str, Any]:
        """Options for ``S3Store.connect`` / ``open_store`` that reach this server."""
        return {"endpoint_url": self.endpoint_url, "region": REGION, **CREDENTIALS}

    def client(self) -> S3Client:
        """A new client (with its own event hooks) from one shared session: sessions are slow
        to make."""
        return _session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["access_key_id"],
            aws_secret_access_key=CREDENTIALS["secret_access_key"],
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"}, signature_version="s3v4"
            ),
        )

    def new_bucket(self) -> str:
        name = f"corpusx-test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name


@functools.cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]


@contextlib.contextmanager
def running_moto_server(*, attempts: int = 3, timeout: float = 30) -> Iterator[MotoServer]:
    """A moto S3 server for the duration of the block (fresh port; retried if it is taken)."""
    environment = {**os.environ, "S3_UPLOAD_PART_MIN_SIZE": str(MIN_PART_SIZE)}
    failures: list[str] = []
    for _ in range(attempts):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryFile() as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
            )
            try:
                deadline = time.monotonic() + timeout
                while process.poll() is None and time.monotonic() < deadline:
                    if _answers(url):
                        yield MotoServer(url)
                        return
                    time.sleep(0.1)
                failures.append(f"port {port}: exit code {process.poll()}\n{_tail(log)}")
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
    raise RuntimeError("moto's S3 server did not start:\n" + "\n".join(failures))
