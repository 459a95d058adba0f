"""The CLI starts without the server's heavy libraries: a client command (search, buy, fetch)
loads neither the database layer nor pyarrow nor boto3, which took most of two seconds."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "sqlmodel", "alembic", "pyarrow", "boto3", "numpy", "web3", "fastapi")


def _loaded_after(statement: str) -> list[str]:
    probe = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    modules: list[str] = json.loads(done.stdout)
    return [name for name in HEAVY if name in modules]


def test_the_cli_and_the_client_load_no_server_library() -> None:
    assert _loaded_after("import exchange.cli, exchange.client") == []


def test_publishing_loads_the_catalogue_but_not_the_database() -> None:
    """``corpusx dataset publish`` needs pyarrow and numpy to read the corpus, but not the
    exchange's own database layer: that import (~0.4 s) came before the first file was read."""
    loaded = _loaded_after("import exchange.cli, exchange.publisher, exchange.published")
    assert loaded == ["pyarrow", "numpy"]


def test_the_stores_and_the_statement_bodies_load_without_boto3_or_the_database() -> None:
    assert _loaded_after("import storage, licensing.statements") == []


def test_s3store_still_resolves_from_the_package() -> None:
    import storage
    import storage.s3

    assert storage.S3Store is storage.s3.S3Store
    assert "boto3" in _loaded_after("from storage import S3Store")
    with pytest.raises(AttributeError, match="no_such_name"):
        storage.no_such_name  # noqa: B018
