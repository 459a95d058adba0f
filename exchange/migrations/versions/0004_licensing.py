"""licensing, settlement, delivery: offers, agreements, lineage, listing licences, accounts,
journal, deliveries, training attestations

Balances are kept by the database's own CHECK constraints from going below zero (except the one
``external`` account, the other side of deposits and withdrawals), and an offer can be accepted
for a version once per buyer (a unique constraint).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 17:51:12.432183
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "journal_transaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('deposit', 'withdrawal', 'purchase')", name="ck_journal_transaction_kind"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("seq"),
    )
    op.create_table(
        "account",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=True),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kind = 'external' OR balance >= 0", name="ck_account_no_overdraft"),
        sa.CheckConstraint("kind IN ('member', 'fees', 'external')", name="ck_account_kind"),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("member_id"),
    )
    # The exchange's own accounts, and one account for every member admitted before this revision.
    for account_id, kind in (("exchange:fees", "fees"), ("external", "external")):
        op.execute(
            "INSERT INTO account (id, kind, member_id, balance) "
            f"VALUES ('{account_id}', '{kind}', NULL, 0)"
        )
    op.execute(
        "INSERT INTO account (id, kind, member_id, balance) "
        "SELECT 'member:' || id, 'member', id, 0 FROM member"
    )
    op.create_table(
        "journal_posting",
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=80), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount <> 0", name="ck_journal_posting_amount"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["journal_transaction.id"],
        ),
        sa.PrimaryKeyConstraint("transaction_id", "account_id"),
    )
    op.create_index(
        "ix_journal_posting_account",
        "journal_posting",
        ["account_id", "transaction_id"],
        unique=False,
    )
    op.create_table(
        "listing_licence",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=300), nullable=False),
        sa.Column("licences", sa.JSON(), nullable=False),
        sa.Column("creators", sa.JSON(), nullable=False),
        sa.Column("use_class", sa.String(length=32), nullable=False),
        sa.Column("inherited_use_class", sa.String(length=32), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset.id"],
        ),
        sa.PrimaryKeyConstraint("dataset_id"),
    )
    op.create_index(
        op.f("ix_listing_licence_external_id"), "listing_licence", ["external_id"], unique=False
    )
    op.create_table(
        "listing_source",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("source_dataset_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset.id"],
        ),
        sa.ForeignKeyConstraint(
            ["source_dataset_id"],
            ["dataset.id"],
        ),
        sa.PrimaryKeyConstraint("dataset_id", "position"),
    )
    op.create_table(
        "offer",
        sa.Column("id", sa.String(length=28), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.String(length=71), nullable=True),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("buyer", sa.String(length=64), nullable=True),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("terms_sha256", sa.String(length=64), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("published_seq", sa.BigInteger(), nullable=False),
        sa.Column("withdrawn_seq", sa.BigInteger(), nullable=True),
        sa.Column("withdrawn_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open', 'withdrawn')", name="ck_offer_status"),
        sa.CheckConstraint("length(terms_sha256) = 64", name="ck_offer_terms_sha256"),
        sa.CheckConstraint("price >= 0", name="ck_offer_price"),
        sa.ForeignKeyConstraint(
            ["buyer"],
            ["member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["dataset.id"],
        ),
        sa.ForeignKeyConstraint(
            ["provider"],
            ["member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_version.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_offer_dataset_status", "offer", ["dataset_id", "status"], unique=False)
    op.create_index(op.f("ix_offer_provider"), "offer", ["provider"], unique=False)
    op.create_table(
        "training_attestation",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("member", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("report_sha256", sa.String(length=64), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("length(manifest_sha256) = 64", name="ck_training_attestation_manifest"),
        sa.CheckConstraint("length(report_sha256) = 64", name="ck_training_attestation_report"),
        sa.ForeignKeyConstraint(["member"], ["member.id"]),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(
        op.f("ix_training_attestation_member"), "training_attestation", ["member"], unique=False
    )
    op.create_index(
        op.f("ix_training_attestation_model"), "training_attestation", ["model"], unique=False
    )
    op.create_table(
        "version_lineage",
        sa.Column("version_id", sa.String(length=71), nullable=False),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("inherited_terms", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_version.id"],
        ),
        sa.PrimaryKeyConstraint("version_id"),
    )
    op.create_table(
        "agreement",
        sa.Column("id", sa.String(length=28), nullable=False),
        sa.Column("offer_id", sa.String(length=28), nullable=False),
        sa.Column("assigner", sa.String(length=64), nullable=False),
        sa.Column("assignee", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.String(length=71), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("terms_sha256", sa.String(length=64), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("granted_seq", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_seq", sa.BigInteger(), nullable=True),
        sa.Column("revocation_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("length(terms_sha256) = 64", name="ck_agreement_terms_sha256"),
        sa.CheckConstraint("price >= 0 AND fee >= 0 AND fee <= price", name="ck_agreement_money"),
        sa.ForeignKeyConstraint(
            ["assignee"],
            ["member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["assigner"],
            ["member.id"],
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["offer.id"],
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_version.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("offer_id", "assignee", "version_id", name="uq_agreement_acceptance"),
    )
    op.create_index(
        "ix_agreement_assignee_version", "agreement", ["assignee", "version_id"], unique=False
    )
    op.create_index(op.f("ix_agreement_assigner"), "agreement", ["assigner"], unique=False)
    op.create_index(op.f("ix_agreement_offer_id"), "agreement", ["offer_id"], unique=False)
    op.create_index(op.f("ix_agreement_version_id"), "agreement", ["version_id"], unique=False)
    op.create_table(
        "version_source",
        sa.Column("version_id", sa.String(length=71), nullable=False),
        sa.Column("source_id", sa.String(length=71), nullable=False),
        sa.Column("agreement_id", sa.String(length=28), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["agreement.id"],
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["dataset_version.id"],
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_version.id"],
        ),
        sa.PrimaryKeyConstraint("version_id", "source_id"),
    )
    op.create_index(
        op.f("ix_version_source_source_id"), "version_source", ["source_id"], unique=False
    )

    op.create_table(
        "delivery",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("agreement_id", sa.String(length=28), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.String(length=71), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agreement_id"], ["agreement.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.ForeignKeyConstraint(["version_id"], ["dataset_version.id"]),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(op.f("ix_delivery_agreement_id"), "delivery", ["agreement_id"], unique=False)
    op.create_index(op.f("ix_delivery_member_id"), "delivery", ["member_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_delivery_member_id"), table_name="delivery")
    op.drop_index(op.f("ix_delivery_agreement_id"), table_name="delivery")
    op.drop_table("delivery")
    op.drop_index(op.f("ix_version_source_source_id"), table_name="version_source")
    op.drop_table("version_source")
    op.drop_index(op.f("ix_agreement_version_id"), table_name="agreement")
    op.drop_index(op.f("ix_agreement_offer_id"), table_name="agreement")
    op.drop_index(op.f("ix_agreement_assigner"), table_name="agreement")
    op.drop_index("ix_agreement_assignee_version", table_name="agreement")
    op.drop_table("agreement")
    op.drop_table("version_lineage")
    op.drop_index(op.f("ix_training_attestation_model"), table_name="training_attestation")
    op.drop_index(op.f("ix_training_attestation_member"), table_name="training_attestation")
    op.drop_table("training_attestation")
    op.drop_index(op.f("ix_offer_provider"), table_name="offer")
    op.drop_index("ix_offer_dataset_status", table_name="offer")
    op.drop_table("offer")
    op.drop_table("listing_source")
    op.drop_index(op.f("ix_listing_licence_external_id"), table_name="listing_licence")
    op.drop_table("listing_licence")
    op.drop_index("ix_journal_posting_account", table_name="journal_posting")
    op.drop_table("journal_posting")
    op.drop_table("account")
    op.drop_table("journal_transaction")
