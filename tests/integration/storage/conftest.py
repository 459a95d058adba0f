"""Fixtures for tests against a real S3 server (moto's, started here): reuse them anywhere.

``moto_server`` is one server per test session; ``s3_bucket`` a fresh, empty bucket on it.
If the server cannot start, every test that needs it fails: none is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.storage.s3server import MotoServer, running_moto_server


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
