"""catalogue: datasets, versions, files, labels and the full-text index

SQLite keeps an FTS5 external-content table in step with ``dataset`` through triggers;
PostgreSQL indexes the same text with a GIN index over ``to_tsvector`` (the expression must
stay identical to ``catalog.search.PG_DOCUMENT``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 16:22:01.165475
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Frozen copy of catalog.search.PG_DOCUMENT as of this revision (a test keeps them equal: a
# change to the search expression needs a migration that rebuilds the index).
PG_DOCUMENT = (
    "setweight(to_tsvector('simple', coalesce(dataset.title, '')), 'A') || "
    "setweight(to_tsvector('simple', coalesce(dataset.tags, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(dataset.description, '')), 'B') || "
    "setweight(to_tsvector('english', coalesce(dataset.card, '')), 'C')"
)

FTS_COLUMNS = "title, description, card, tags"
SQLITE_FTS = [
    f"CREATE VIRTUAL TABLE dataset_fts USING fts5({FTS_COLUMNS}, content='dataset', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    f"""CREATE TRIGGER dataset_fts_insert AFTER INSERT ON dataset BEGIN
        INSERT INTO dataset_fts(rowid, {FTS_COLUMNS})
        VALUES (new.id, new.title, new.description, new.card, new.tags); END""",
    f"""CREATE TRIGGER dataset_fts_delete AFTER DELETE ON dataset BEGIN
        INSERT INTO dataset_fts(dataset_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.id, old.title, old.description, old.card, old.tags); END""",
    f"""CREATE TRIGGER dataset_fts_update AFTER UPDATE ON dataset BEGIN
        INSERT INTO dataset_fts(dataset_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.id, old.title, old.description, old.card, old.tags);
        INSERT INTO dataset_fts(rowid, {FTS_COLUMNS})
        VALUES (new.id, new.title, new.description, new.card, new.tags); END""",
]


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "dataset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("tags", sa.String(length=2000), nullable=False),
        sa.Column("licence_summary", sa.String(length=500), nullable=False),
        sa.Column("latest_version", sa.String(length=71), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("record_count", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    with op.batch_alter_table("dataset", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dataset_provider"), ["provider"], unique=False)

    op.create_table(
        "dataset_label",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=100), nullable=False),
        sa.CheckConstraint("kind IN ('tag', 'language', 'domain')", name="ck_dataset_label_kind"),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset.id"],
        ),
        sa.PrimaryKeyConstraint("dataset_id", "kind", "value"),
    )
    with op.batch_alter_table("dataset_label", schema=None) as batch_op:
        batch_op.create_index("ix_dataset_label_lookup", ["kind", "value"], unique=False)

    op.create_table(
        "dataset_version",
        sa.Column("id", sa.String(length=71), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("manifest", sa.LargeBinary(), nullable=False),
        sa.Column("manifest_root", sa.String(length=64), nullable=False),
        sa.Column("record_count", sa.BigInteger(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("published_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.CheckConstraint("status IN ('published', 'flagged')", name="ck_dataset_version_status"),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "label", name="uq_dataset_version_label"),
    )
    with op.batch_alter_table("dataset_version", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dataset_version_dataset_id"), ["dataset_id"], unique=False
        )

    op.create_table(
        "version_file",
        sa.Column("version_id", sa.String(length=71), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("record_count", sa.BigInteger(), nullable=False),
        sa.Column("document_root", sa.String(length=64), nullable=False),
        sa.CheckConstraint("length(sha256) = 64", name="ck_version_file_sha256"),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_version.id"],
        ),
        sa.PrimaryKeyConstraint("version_id", "name"),
    )
    with op.batch_alter_table("version_file", schema=None) as batch_op:
        batch_op.create_index("ix_version_file_sha256", ["sha256"], unique=False)

    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
    else:
        op.execute(f"CREATE INDEX ix_dataset_fulltext ON dataset USING GIN (({PG_DOCUMENT}))")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER dataset_fts_{name}")
        op.execute("DROP TABLE dataset_fts")
    else:
        op.execute("DROP INDEX ix_dataset_fulltext")

    with op.batch_alter_table("version_file", schema=None) as batch_op:
        batch_op.drop_index("ix_version_file_sha256")

    op.drop_table("version_file")
    with op.batch_alter_table("dataset_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_version_dataset_id"))

    op.drop_table("dataset_version")
    with op.batch_alter_table("dataset_label", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_label_lookup")

    op.drop_table("dataset_label")
    with op.batch_alter_table("dataset", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_provider"))

    op.drop_table("dataset")
