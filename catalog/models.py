"""Catalogue tables: datasets, their immutable versions and files, labels for filtering.

Full-text search is kept by the database itself: on SQLite an FTS5 external-content table with
triggers, on PostgreSQL a GIN index over ``to_tsvector`` of the same columns (migration 0002).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"


class Dataset(SQLModel, table=True):
    __tablename__ = "dataset"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True)
    provider: str = Field(foreign_key="member.id", index=True, max_length=64)
    title: str = Field(max_length=300)
    description: str = Field(default="", sa_type=Text)
    card: str = Field(default="", sa_type=Text, description="Markdown dataset card")
    tags: str = Field(default="", max_length=2000, description="space-separated, for search")
    licence_summary: str = Field(default="", max_length=500)
    latest_version: str | None = Field(default=None, max_length=71)
    size_bytes: int = Field(default=0, sa_type=BigInteger)
    record_count: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime
    updated_at: datetime


class DatasetLabel(SQLModel, table=True):
    """A dataset's tags, languages and domains, one row each, for exact filters."""

    __tablename__ = "dataset_label"
    __table_args__ = (
        CheckConstraint("kind IN ('tag', 'language', 'domain')", name="ck_dataset_label_kind"),
        Index("ix_dataset_label_lookup", "kind", "value"),
    )

    dataset_id: int = Field(foreign_key="dataset.id", primary_key=True)
    kind: str = Field(max_length=16, primary_key=True)
    value: str = Field(max_length=100, primary_key=True)


class DatasetVersion(SQLModel, table=True):
    """An immutable version, named by the digest of its canonical manifest."""

    __tablename__ = "dataset_version"
    __table_args__ = (
        UniqueConstraint("dataset_id", "label", name="uq_dataset_version_label"),
        CheckConstraint("status IN ('published', 'flagged')", name="ck_dataset_version_status"),
    )

    id: str = Field(primary_key=True, max_length=71, description="sha256:<hex of the manifest>")
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    label: str = Field(max_length=100)
    manifest: bytes = Field(description="the canonical manifest bytes")
    manifest_root: str = Field(max_length=64)
    record_count: int = Field(sa_type=BigInteger)
    size_bytes: int = Field(sa_type=BigInteger)
    status: str = Field(default="published", max_length=16)
    published_seq: int = Field(sa_type=BigInteger)
    created_at: datetime
    stats: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class VersionFile(SQLModel, table=True):
    __tablename__ = "version_file"
    __table_args__ = (
        CheckConstraint("length(sha256) = 64", name="ck_version_file_sha256"),
        Index("ix_version_file_sha256", "sha256"),
    )

    version_id: str = Field(foreign_key="dataset_version.id", primary_key=True, max_length=71)
    name: str = Field(primary_key=True, max_length=1024)
    sha256: str = Field(max_length=64)
    size: int = Field(sa_type=BigInteger)
    media_type: str = Field(max_length=100)
    record_count: int = Field(sa_type=BigInteger)
    document_root: str = Field(max_length=64)
