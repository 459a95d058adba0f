"""Tables of the exchange application (members, keys, tokens, witness cosignatures).

Every table module is imported here so that ``SQLModel.metadata`` is complete for Alembic.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel

import catalog.models
import catalog.overlap_index  # noqa: F401  (registers the overlap index tables)
import exchange.anchor_models
import exchange.verification  # noqa: F401  (registers the verified-file cache)
import ledger.sql  # noqa: F401  (registers the ledger tables in SQLModel.metadata)
import licensing.models  # noqa: F401  (offers, agreements, lineage, listing licences)


class Member(SQLModel, table=True):
    __tablename__ = "member"

    id: str = Field(primary_key=True, max_length=64)
    display_name: str = Field(max_length=200)
    roles: str = Field(max_length=100, description="comma-separated, sorted")
    registered_seq: int = Field(sa_type=BigInteger)
    created_at: datetime

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(self.roles.split(",")) if self.roles else frozenset()


class MemberKey(SQLModel, table=True):
    __tablename__ = "member_key"
    __table_args__ = (CheckConstraint("length(public_key) = 32", name="ck_member_key_length"),)

    key_id: str = Field(primary_key=True, max_length=16)
    member_id: str = Field(foreign_key="member.id", index=True, max_length=64)
    public_key: bytes = Field(sa_type=LargeBinary)
    added_seq: int = Field(sa_type=BigInteger)
    added_at: datetime
    revoked_seq: int | None = Field(default=None, sa_type=BigInteger)
    revoked_at: datetime | None = None


class ApiToken(SQLModel, table=True):
    """A bearer token; only its SHA-256 is stored (tokens are 256-bit random, not passwords)."""

    __tablename__ = "api_token"
    __table_args__ = (CheckConstraint("length(token_hash) = 64", name="ck_api_token_hash"),)

    id: str = Field(primary_key=True, max_length=16)
    member_id: str = Field(foreign_key="member.id", index=True, max_length=64)
    token_hash: str = Field(unique=True, max_length=64)
    label: str = Field(default="", max_length=100)
    created_at: datetime
    revoked_at: datetime | None = None


# -- settlement: a double-entry journal in exchange credits ------------------------------------

MEMBER_ACCOUNT, FEES_ACCOUNT, EXTERNAL_ACCOUNT = "member", "fees", "external"


class Account(SQLModel, table=True):
    """A balance in exchange credits. Members' and the fee account never go below zero (the
    database refuses it); the one ``external`` account is the other side of every deposit and
    withdrawal, so the sum of all balances is always zero."""

    __tablename__ = "account"
    __table_args__ = (
        CheckConstraint("kind IN ('member', 'fees', 'external')", name="ck_account_kind"),
        CheckConstraint("kind = 'external' OR balance >= 0", name="ck_account_no_overdraft"),
    )

    id: str = Field(primary_key=True, max_length=80)
    kind: str = Field(max_length=16)
    member_id: str | None = Field(default=None, foreign_key="member.id", unique=True, max_length=64)
    balance: int = Field(default=0, sa_type=BigInteger)


class JournalTransaction(SQLModel, table=True):
    """One movement of money: its postings sum to zero; ``seq`` is the ledger entry behind it."""

    __tablename__ = "journal_transaction"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('deposit', 'withdrawal', 'purchase')", name="ck_journal_transaction_kind"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    reference: str = Field(max_length=200)
    seq: int = Field(sa_type=BigInteger, unique=True)
    created_at: datetime


class JournalPosting(SQLModel, table=True):
    __tablename__ = "journal_posting"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="ck_journal_posting_amount"),
        Index("ix_journal_posting_account", "account_id", "transaction_id"),
    )

    transaction_id: int = Field(foreign_key="journal_transaction.id", primary_key=True)
    account_id: str = Field(foreign_key="account.id", primary_key=True, max_length=80)
    amount: int = Field(sa_type=BigInteger)


class Delivery(SQLModel, table=True):
    """A ``data.delivered`` entry's index: which member fetched which files under which licence."""

    __tablename__ = "delivery"

    seq: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    agreement_id: str = Field(foreign_key="agreement.id", index=True, max_length=28)
    member_id: str = Field(foreign_key="member.id", index=True, max_length=64)
    version_id: str = Field(foreign_key="dataset_version.id", max_length=71)
    purpose: str = Field(max_length=32)
    files: list[dict[str, object]] = Field(sa_column=Column(JSON, nullable=False))
    expires_at: datetime
    created_at: datetime


class WitnessCosignature(SQLModel, table=True):
    """A witness's verified cosignature of one checkpoint (docs/ledger.md 8.7)."""

    __tablename__ = "witness_cosignature"
    __table_args__ = (CheckConstraint("timestamp >= 0", name="ck_witness_cosignature_time"),)

    checkpoint_size: int = Field(
        sa_type=BigInteger,
        primary_key=True,
        foreign_key="ledger_checkpoint.size",
        sa_column_kwargs={"autoincrement": False},
    )
    witness: str = Field(primary_key=True, max_length=400, description="the witness's vkey")
    signature: str = Field(sa_type=Text, description="the note signature line, no newline")
    timestamp: int = Field(sa_type=BigInteger, description="the cosignature's POSIX time")
    received_at: datetime
