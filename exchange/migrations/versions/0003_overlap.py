"""overlap: the index of published versions' document hashes and sampled band keys

Tables of ``catalog.overlap_index``. The two big tables are keyed (and on SQLite clustered,
``WITHOUT ROWID``) by the value that is looked up: the document SHA-256, the band key.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "overlap_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.String(length=71), nullable=False),
        sa.Column("scheme", sa.String(length=64), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("documents", sa.BigInteger(), nullable=False),
        sa.Column("sample_level", sa.Integer(), nullable=False),
        sa.Column("level_counts", sa.JSON(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("sample_level >= 0", name="ck_overlap_version_sample_level"),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_version.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version_id"),
    )

    op.create_table(
        "overlap_document",
        sa.Column("sha256", sa.LargeBinary(), nullable=False),
        sa.Column("version_key", sa.Integer(), nullable=False),
        sa.CheckConstraint("length(sha256) = 32", name="ck_overlap_document_sha256"),
        sa.ForeignKeyConstraint(
            ["version_key"],
            ["overlap_version.id"],
        ),
        sa.PrimaryKeyConstraint("sha256", "version_key"),
        sqlite_with_rowid=False,
    )

    op.create_table(
        "overlap_band",
        sa.Column("band_key", sa.BigInteger(), nullable=False),
        sa.Column("version_key", sa.Integer(), nullable=False),
        sa.Column("record", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_key"],
            ["overlap_version.id"],
        ),
        sa.PrimaryKeyConstraint("band_key", "version_key", "record"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("overlap_band")
    op.drop_table("overlap_document")
    op.drop_table("overlap_version")
