"""verified files: the exchange's own derivation of each stored blob, per way of reading it

Table of ``exchange.verification``: the manifest and overlap sketch the server derived from a
blob's stored bytes, keyed by (SHA-256, media type, document rule, code version), so that
publishing compares claims with it instead of reading every byte again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "verified_file",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("document_rule", sa.String(length=300), nullable=False),
        sa.Column("derivation", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=500), nullable=False),
        sa.Column("manifest", sa.LargeBinary(), nullable=False),
        sa.Column("sketch", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("length(sha256) = 64", name="ck_verified_file_sha256"),
        sa.PrimaryKeyConstraint("sha256", "media_type", "document_rule", "derivation"),
    )


def downgrade() -> None:
    op.drop_table("verified_file")
