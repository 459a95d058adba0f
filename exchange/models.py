"""Tables of the exchange application (members, keys, tokens, witness cosignatures).

Every table module is imported here so that ``SQLModel.metadata`` is complete for Alembic.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, LargeBinary, Text
from sqlmodel import Field, SQLModel

import catalog.models
import catalog.overlap_index  # noqa: F401  (registers the overlap index tables)
import ledger.sql  # noqa: F401  (registers the ledger tables in SQLModel.metadata)


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
