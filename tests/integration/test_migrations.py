"""The migrations build exactly the tables the models describe, on both databases.

Several changes add tables at once; a model edited without its migration (or the reverse) would
otherwise show up only as a failure on a real database later.
"""

from __future__ import annotations

import dataclasses
import random

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import Session, SQLModel

import exchange.models  # noqa: F401  (fills SQLModel.metadata)
from catalog.overlap_index import OverlapSegment, segment_digest, segment_of
from exchange.db import alembic_config, make_engine
from exchange.models import Member
from tests.integration.test_overlap_index import NOW, publish, sketch_of
from tests.unit.catalog.test_overlap import article

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


def test_overlap_rows_become_segments_and_back(database_url: str) -> None:
    """0008 turns each version's document and band rows into its segment, exactly the one
    index_version writes now; its downgrade gives the rows back."""
    rng = random.Random(21)
    documents = [article(rng, 40).encode() for _ in range(120)]
    sketch = sketch_of(documents)
    keys = sketch.sample_keys.copy()
    keys[0, :2] = [-(2**63), 2**63 - 1]
    sketch = dataclasses.replace(sketch, sample_keys=keys)
    config = alembic_config(database_url)
    command.downgrade(config, "0007")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            with Session(bind=connection) as session:
                session.add(
                    Member(
                        id="bob",
                        display_name="Bob",
                        roles="provider",
                        registered_seq=0,
                        created_at=NOW,
                    )
                )
                version = publish(session, "bob", "bobs-news", "v1")
            connection.execute(
                text(
                    "INSERT INTO overlap_version (id, version_id, scheme, records, documents, "
                    "sample_level, level_counts, indexed_at) VALUES (7, :v, :s, 1, 1, 0, '[]', "
                    ":t)"
                ),
                {"v": version, "s": sketch.scheme, "t": NOW},
            )
            connection.execute(
                text("INSERT INTO overlap_document (sha256, version_key) VALUES (:h, 7)"),
                [{"h": h} for h in sketch.documents],
            )
            rows = [
                {"b": int(band), "r": int(record)}
                for row, record in zip(keys, sketch.sample_records, strict=True)
                for band in row
            ]
            connection.execute(
                text("INSERT INTO overlap_band (band_key, version_key, record) VALUES (:b, 7, :r)"),
                rows,
            )
        command.upgrade(config, "head")
        with Session(engine) as session:
            segment = session.get(OverlapSegment, 7)
            assert segment is not None
            assert (bytes(segment.documents), bytes(segment.bands)) == segment_of(sketch)
            assert segment.digest == segment_digest(*segment_of(sketch))
        command.downgrade(config, "0007")
        with engine.connect() as connection:
            hashes = connection.execute(text("SELECT sha256 FROM overlap_document")).scalars()
            bands = connection.execute(text("SELECT band_key, record FROM overlap_band")).all()
        assert sorted(bytes(h) for h in hashes) == sorted(sketch.documents)
        assert sorted((b, r) for b, r in bands) == sorted((x["b"], x["r"]) for x in rows)
        command.upgrade(config, "head")
    finally:
        engine.dispose()
