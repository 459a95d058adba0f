"""witness cosignatures: each witness's verified cosignature of a checkpoint

Table of ``exchange.models.WitnessCosignature``, keyed by (checkpoint size, witness vkey); the
primary key's order also serves "newest cosigned checkpoints first".

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "witness_cosignature",
        sa.Column("checkpoint_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("witness", sa.String(length=400), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("timestamp >= 0", name="ck_witness_cosignature_time"),
        sa.ForeignKeyConstraint(["checkpoint_size"], ["ledger_checkpoint.size"]),
        sa.PrimaryKeyConstraint("checkpoint_size", "witness"),
    )


def downgrade() -> None:
    op.drop_table("witness_cosignature")
