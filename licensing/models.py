"""Licensing tables: offers, agreements, the lineage of derived versions, imported licences.

Every row here indexes a signed ledger entry (``offer.published``, ``offer.withdrawn``,
``licence.granted``, ``licence.revoked``, ``dataset.version.published`` with sources), written in
the same transaction; the terms are stored as their canonical JSON so that what is evaluated is
byte for byte what was signed. Catalogue tables are referred to by name only: this package does
not import ``catalog``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

OFFER_ID = r"^off_[0-9a-f]{24}$"
AGREEMENT_ID = r"^agr_[0-9a-f]{24}$"


class Offer(SQLModel, table=True):
    """A provider's signed offer of a dataset (any of its versions) or of one version."""

    __tablename__ = "offer"
    __table_args__ = (
        CheckConstraint("price >= 0", name="ck_offer_price"),
        CheckConstraint("status IN ('open', 'withdrawn')", name="ck_offer_status"),
        CheckConstraint("length(terms_sha256) = 64", name="ck_offer_terms_sha256"),
        Index("ix_offer_dataset_status", "dataset_id", "status"),
    )

    id: str = Field(primary_key=True, max_length=28)
    dataset_id: int = Field(foreign_key="dataset.id")
    version_id: str | None = Field(default=None, foreign_key="dataset_version.id", max_length=71)
    provider: str = Field(foreign_key="member.id", index=True, max_length=64)
    buyer: str | None = Field(
        default=None, foreign_key="member.id", max_length=64, description="private offers"
    )
    terms: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    terms_sha256: str = Field(max_length=64)
    price: int = Field(sa_type=BigInteger)
    valid_from: datetime
    valid_until: datetime | None = None
    status: str = Field(default="open", max_length=16)
    published_seq: int = Field(sa_type=BigInteger)
    withdrawn_seq: int | None = Field(default=None, sa_type=BigInteger)
    withdrawn_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime


class Agreement(SQLModel, table=True):
    """A licence: a buyer's signed acceptance of an offer for one exact version."""

    __tablename__ = "agreement"
    __table_args__ = (
        # Accepting the same offer twice for the same version is refused by the database itself.
        UniqueConstraint("offer_id", "assignee", "version_id", name="uq_agreement_acceptance"),
        CheckConstraint("price >= 0 AND fee >= 0 AND fee <= price", name="ck_agreement_money"),
        CheckConstraint("length(terms_sha256) = 64", name="ck_agreement_terms_sha256"),
        Index("ix_agreement_assignee_version", "assignee", "version_id"),
    )

    id: str = Field(primary_key=True, max_length=28)
    offer_id: str = Field(foreign_key="offer.id", index=True, max_length=28)
    assigner: str = Field(foreign_key="member.id", index=True, max_length=64)
    assignee: str = Field(foreign_key="member.id", max_length=64)
    version_id: str = Field(foreign_key="dataset_version.id", index=True, max_length=71)
    terms: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    terms_sha256: str = Field(max_length=64)
    price: int = Field(sa_type=BigInteger)
    fee: int = Field(sa_type=BigInteger)
    valid_from: datetime
    valid_until: datetime | None = None
    granted_seq: int = Field(sa_type=BigInteger)
    revoked_at: datetime | None = None
    revoked_seq: int | None = Field(default=None, sa_type=BigInteger)
    revocation_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime


class VersionLineage(SQLModel, table=True):
    """How a derived version was made, and the terms it inherits from its sources."""

    __tablename__ = "version_lineage"

    version_id: str = Field(foreign_key="dataset_version.id", primary_key=True, max_length=71)
    method: str = Field(max_length=100)
    inherited_terms: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class VersionSource(SQLModel, table=True):
    """One source of a derived version, and the agreement under which it was used (if any)."""

    __tablename__ = "version_source"

    version_id: str = Field(foreign_key="dataset_version.id", primary_key=True, max_length=71)
    source_id: str = Field(
        foreign_key="dataset_version.id", primary_key=True, index=True, max_length=71
    )
    agreement_id: str | None = Field(default=None, foreign_key="agreement.id", max_length=28)
    position: int


class ListingLicence(SQLModel, table=True):
    """The licences declared for a dataset listing (e.g. imported from a DPI dataset card)."""

    __tablename__ = "listing_licence"

    dataset_id: int = Field(foreign_key="dataset.id", primary_key=True)
    origin: str = Field(max_length=32, description="'dpi' for Data Provenance Initiative cards")
    external_id: str = Field(max_length=300, index=True)
    licences: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    creators: list[str] = Field(sa_column=Column(JSON, nullable=False))
    use_class: str = Field(max_length=32)
    inherited_use_class: str = Field(max_length=32)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ListingSource(SQLModel, table=True):
    """A ``Derived from`` link of a listing: resolved to a listed dataset, or kept as written."""

    __tablename__ = "listing_source"

    dataset_id: int = Field(foreign_key="dataset.id", primary_key=True)
    position: int = Field(primary_key=True)
    name: str = Field(max_length=500)
    source_dataset_id: int | None = Field(default=None, foreign_key="dataset.id")


class TrainingAttestation(SQLModel, table=True):
    """A ``model.training.attested`` entry's documents: the manifest and the compliance report
    whose digests the member signed (kept so that anyone can fetch the offline bundle)."""

    __tablename__ = "training_attestation"
    __table_args__ = (
        CheckConstraint("length(manifest_sha256) = 64", name="ck_training_attestation_manifest"),
        CheckConstraint("length(report_sha256) = 64", name="ck_training_attestation_report"),
    )

    seq: int = Field(
        sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    member: str = Field(foreign_key="member.id", index=True, max_length=64)
    model: str = Field(max_length=200, index=True)
    manifest_sha256: str = Field(max_length=64)
    report_sha256: str = Field(max_length=64)
    manifest: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    report: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime
