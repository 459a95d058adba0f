"""Fixtures shared by the suite: databases (SQLite and the real PostgreSQL), data dirs, servers,
and a real anvil chain node (``tests/anvil.py``) with a freshly deployed anchor contract.

PostgreSQL tests use the server on 127.0.0.1:5432 (user postgres). Each run migrates one template
database and clones it per test (``CREATE DATABASE ... TEMPLATE``), then drops them all. If the
server is not there, those tests fail loudly: they are never skipped.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from exchange.app import create_app
from exchange.client import ExchangeClient
from exchange.db import upgrade
from exchange.settings import Settings
from exchange.setup import initialise
from tests.anvil import DEV_KEYS, Anvil, running_anvil
from tests.deployment import Deployment, deploy
from tests.integration.storage.s3server import MotoServer, running_moto_server

TEST_ORIGIN = "corpusx.test/ledger"
PG_ADMIN = os.environ.get("CORPUSX_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PROJECT = Path(__file__).resolve().parents[1]
VECTORS = PROJECT.parent / "shared" / "vectors"


def pg_url(database: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{database}"


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as connection:
        connection.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database for this run (fails loudly if PostgreSQL is not there)."""
    name = f"corpusx_test_tpl_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is needed on {PG_ADMIN} for these tests: {exc}")
    upgrade(pg_url(name))
    yield name
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


DATABASES = ["sqlite", "postgres"]


@contextmanager
def fresh_database(request: pytest.FixtureRequest, kind: str, directory: Path) -> Iterator[str]:
    """A fresh, migrated database of ``kind``; SQLite lives under ``directory``.

    Shared by the per-test ``database_url`` and by module-scoped fixtures that build one market
    for many tests.
    """
    if kind == "sqlite":
        url = f"sqlite:///{directory / 'data' / 'exchange.db'}"
        upgrade(url)
        yield url
        return
    with cloned_database(request.getfixturevalue("pg_template")) as url:
        yield url


@contextmanager
def cloned_database(template: str) -> Iterator[str]:
    """A fresh PostgreSQL database cloned from the migrated template, dropped afterwards."""
    name = f"corpusx_test_{os.getpid()}_{secrets.token_hex(4)}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield pg_url(name)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database of each kind; SQLite lives in the test's tmp dir."""
    with fresh_database(request, request.param, tmp_path) as url:
        yield url


@dataclass
class Prepared:
    """An initialised exchange: settings, the operator's key and token."""

    settings: Settings
    operator_key: Ed25519PrivateKey
    operator_token: str
    vkey: str


def prepare(database_url: str, directory: Path) -> Prepared:
    """Initialise an exchange on ``database_url`` with its data dir under ``directory``."""
    settings = Settings(
        data_dir=directory / "data",
        database_url=database_url,
        checkpoint_interval=0,
        log_origin=TEST_ORIGIN,
    )
    key = Ed25519PrivateKey.generate()
    done = initialise(settings, operator="operator", operator_name="Operator", operator_key=key)
    return Prepared(settings, key, done.token, done.vkey)


@pytest.fixture
def prepared(database_url: str, tmp_path: Path) -> Prepared:
    return prepare(database_url, tmp_path)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    try:
        with running_moto_server() as server:
            yield server
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def s3_bucket(moto_server: MotoServer) -> str:
    return moto_server.new_bucket()


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """One anvil node for the session (each test deploys its own contract on it)."""
    try:
        with running_anvil() as node:
            yield node
    except RuntimeError as exc:
        pytest.fail(str(exc))


@dataclass
class ChainSetup:
    """A CheckpointAnchor contract on the test node, and the owning account's key file."""

    node: Anvil
    contract: str
    key_file: Path
    key: bytes

    def settings(self, **overrides: object) -> dict[str, object]:
        """Exchange settings that anchor here: quick polls, 3 confirmations, no time trigger."""
        return {
            "chain_rpc_url": self.node.url,
            "chain_contract": self.contract,
            "chain_key_file": self.key_file,
            "chain_confirmations": 3,
            "chain_poll_interval": 0.05,
            "chain_backoff_max": 0.4,
            "chain_timeout": 2.0,
            "anchor_every_entries": 5,
            "anchor_interval": 0.0,
            **overrides,
        }


@pytest.fixture
def chain(anvil: Anvil, tmp_path: Path) -> Iterator[ChainSetup]:
    """A fresh contract owned by anvil's first account (mining restored to automine after)."""
    from exchange.chainkey import write_chain_key  # web3 loads only for the chain tests
    from ledger.anchor import contract_artifact
    from ledger.anchor_evm import EvmChain

    key = bytes.fromhex(DEV_KEYS[0])
    key_file = tmp_path / "chain.key"
    write_chain_key(key_file, key)
    deployment = EvmChain(anvil.url, private_key=key).deploy(contract_artifact().bytecode)
    yield ChainSetup(anvil, deployment.contract, key_file, key)
    anvil.set_automine(True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class LiveServer:
    url: str
    prepared: Prepared
    app: FastAPI

    def client(
        self,
        *,
        token: str | None = None,
        member: str | None = None,
        key: Ed25519PrivateKey | None = None,
    ) -> ExchangeClient:
        return ExchangeClient(self.url, token=token, member=member, key=key)

    def operator(self) -> ExchangeClient:
        p = self.prepared
        return self.client(token=p.operator_token, member="operator", key=p.operator_key)


@pytest.fixture
def live_server(prepared: Prepared, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """The real app under uvicorn on a loopback port, in this process.

    ``@pytest.mark.checkpoint_interval(seconds)`` turns the checkpoint schedule on;
    ``@pytest.mark.s3_store`` keeps blobs in a fresh bucket on the test S3 server;
    ``@pytest.mark.exchange_settings(name=value, ...)`` overrides settings.
    ``@pytest.mark.anchoring(**settings)`` anchors to the ``chain`` fixture's contract.
    """
    marker = request.node.get_closest_marker("checkpoint_interval")
    settings = prepared.settings
    if marker is not None:
        settings = settings.model_copy(update={"checkpoint_interval": marker.args[0]})
    overrides = request.node.get_closest_marker("exchange_settings")
    if overrides is not None:
        settings = settings.model_copy(update=overrides.kwargs)
    if request.node.get_closest_marker("s3_store") is not None:
        moto: MotoServer = request.getfixturevalue("moto_server")
        options = moto.options
        settings = settings.model_copy(
            update={
                "blob_store": f"s3://{moto.new_bucket()}/blobs",
                "s3_endpoint_url": options["endpoint_url"],
                "s3_region": options["region"],
                "s3_access_key_id": options["access_key_id"],
                "s3_secret_access_key": options["secret_access_key"],
            }
        )
    anchoring = request.node.get_closest_marker("anchoring")
    if anchoring is not None:
        setup: ChainSetup = request.getfixturevalue("chain")
        settings = settings.model_copy(update=setup.settings(**anchoring.kwargs))
    with serve(settings, prepared) as server:
        yield server


@pytest.fixture(scope="module", params=DATABASES)
def module_live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One live exchange per database kind, shared by all the tests of a module.

    For modules that build an expensive market once and whose tests only read it or add fresh
    resources of their own (so that they do not depend on each other's order).
    """
    directory = tmp_path_factory.mktemp(f"{request.module.__name__.rsplit('.', 1)[-1]}-")
    with fresh_database(request, request.param, directory) as url:
        prepared = prepare(url, directory)
        with serve(prepared.settings, prepared) as server:
            yield server


@contextmanager
def serve(settings: Settings, prepared: Prepared) -> Iterator[LiveServer]:
    """The real app under uvicorn on a loopback port, in a thread of this process."""
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", prepared, app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def deployment(
    request: pytest.FixtureRequest, pg_template: str, moto_server: MotoServer, tmp_path: Path
) -> Iterator[Deployment]:
    """``corpusx serve --workers 2`` as a subprocess on PostgreSQL, blobs on the S3 server.

    A fresh database (cloned from the template), a fresh bucket, ``corpusx db upgrade`` and
    ``corpusx init``; the checkpoint schedule runs in every worker (``CORPUSX_CHECKPOINT_INTERVAL``
    is 1 s, or ``@pytest.mark.checkpoint_interval(seconds)``).
    """
    marker = request.node.get_closest_marker("checkpoint_interval")
    interval = marker.args[0] if marker is not None else 1.0
    s3 = {"bucket": moto_server.new_bucket(), **moto_server.options}
    with (
        cloned_database(pg_template) as url,
        deploy(
            tmp_path / "deployment",
            database_url=url,
            s3=s3,
            port=free_port(),
            workers=2,
            checkpoint_interval=interval,
        ) as deployed,
    ):
        yield deployed
