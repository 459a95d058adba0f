"""anchoring: one row per anchored checkpoint, and the lease row of the anchoring worker

Tables of ``exchange.anchor_models``. The single ``anchor_state`` row exists from the start, so
workers only ever compare-and-swap it and never race to create it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    state = op.create_table(
        "anchor_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("holder", sa.String(length=120), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("retry_at", sa.Float(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("requested_at", sa.Float(), nullable=True),
        sa.Column("last_submitted_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(
        state,
        [
            {
                "id": 1,
                "holder": None,
                "lease_until": 0.0,
                "failures": 0,
                "retry_at": 0.0,
                "last_error": None,
                "requested_at": None,
                "last_submitted_at": 0.0,
            }
        ],
    )
    op.create_table(
        "chain_anchor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("raw_tx", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("resubmissions", sa.Integer(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("included_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("final_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("entry_seq", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "state IN ('submitted', 'included', 'dropped', 'final', 'reverted')",
            name="ck_chain_anchor_state",
        ),
        sa.CheckConstraint("length(root) = 32", name="ck_chain_anchor_root"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("chain_id", "contract", "size", name="uq_chain_anchor_checkpoint"),
    )
    with op.batch_alter_table("chain_anchor", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chain_anchor_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_chain_anchor_tx_hash"), ["tx_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("chain_anchor", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_anchor_tx_hash"))
        batch_op.drop_index(batch_op.f("ix_chain_anchor_state"))
    op.drop_table("chain_anchor")
    op.drop_table("anchor_state")
