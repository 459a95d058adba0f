"""The migrations build exactly the tables the models describe, on both databases.

Several changes add tables at once; a model edited without its migration (or the reverse) would
otherwise show up only as a failure on a real database later.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import exchange.models  # noqa: F401  (fills SQLModel.metadata)
from exchange.db import make_engine

# Objects the migrations create that no model can describe: the full-text indexes.
DATABASE_ONLY = {"ix_dataset_fulltext", "dataset_fts"}


def _name(difference: object) -> str:
    item = difference[1] if isinstance(difference, tuple) else difference[0][1]
    return str(getattr(item, "name", item))


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    unexpected = [d for d in differences if not _name(d).startswith(tuple(DATABASE_ONLY))]
    assert unexpected == []
