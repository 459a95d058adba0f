"""Engines, sessions and the migration gate.

SQLite runs in WAL mode and opens every transaction with ``BEGIN IMMEDIATE``: writers queue on
the database lock (with a busy timeout) instead of failing when a read upgrades to a write, which
is what keeps ledger appends gapless across processes. PostgreSQL relies on row locks instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from exchange.errors import NotMigratedError


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 60}, **kwargs
        )
        _make_sqlite_serialisable(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _make_sqlite_serialisable(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Reads take no write lock: they see a consistent WAL snapshot and never block writers.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


READ_ONLY = "corpusx_read_only"


@contextmanager
def read_only(engine: Engine) -> Iterator[Session]:
    """A transaction that only reads (on SQLite it does not queue behind writers)."""
    # Closing (not rolling back) ends the transaction without expiring what was loaded.
    with Session(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False) as session:
        yield session


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One use case, one transaction: commit on success, roll back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str) -> Config:
    directory = Path(__file__).resolve().parent / "migrations"
    config = Config()
    config.set_main_option("script_location", str(directory))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")


def check_migrated(engine: Engine) -> None:
    """Refuse to run on a database that is not at the code's migration head."""
    script = ScriptDirectory.from_config(alembic_config(str(engine.url)))
    head = script.get_current_head()
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:  # no such file or server, refused, wrong password, ...
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
        raise NotMigratedError(
            f"cannot open the database at {engine.url.render_as_string(hide_password=True)}: "
            f"{reason} (is this a data dir made by `corpusx init`?)"
        ) from None
    if current != head:
        raise NotMigratedError(
            f"the database at {engine.url.render_as_string(hide_password=True)} is at migration "
            f"{current or 'none'}, the code needs {head}: run `corpusx db upgrade`"
        )
