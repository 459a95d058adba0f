"""overlap segments: each indexed version's entries as one row of two sorted arrays

``catalog.overlap_index`` no longer keeps a row per document hash and per band key: writing
those B-tree rows and looking keys up in them was most of a large publish's request. Each
version's entries become one ``overlap_segment`` row (its distinct document hashes, ascending,
32 bytes each; its (band key, record) pairs, ascending, as little-endian int64 pairs; the
SHA-256 naming both), and lookups run in memory. Existing rows are converted, version by
version; the downgrade converts back.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 14:30:00.000000
"""

import hashlib
import struct
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _digest(documents: bytes, bands: bytes) -> str:
    """catalog.overlap_index.segment_digest, restated: a migration must not change with it."""
    hasher = hashlib.sha256(len(documents).to_bytes(8, "big"))
    hasher.update(documents)
    hasher.update(bands)
    return hasher.hexdigest()


def upgrade() -> None:
    op.create_table(
        "overlap_segment",
        sa.Column("version_key", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("documents", sa.LargeBinary(), nullable=False),
        sa.Column("bands", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("length(documents) % 32 = 0", name="ck_overlap_segment_documents"),
        sa.CheckConstraint("length(bands) % 16 = 0", name="ck_overlap_segment_bands"),
        sa.ForeignKeyConstraint(["version_key"], ["overlap_version.id"]),
        sa.PrimaryKeyConstraint("version_key"),
    )
    connection = op.get_bind()
    keys = connection.execute(sa.text("SELECT id FROM overlap_version ORDER BY id")).scalars()
    for key in list(keys):
        hashes = connection.execute(
            sa.text("SELECT sha256 FROM overlap_document WHERE version_key = :k ORDER BY sha256"),
            {"k": key},
        ).scalars()
        documents = b"".join(bytes(h) for h in hashes)
        rows = connection.execute(
            sa.text(
                "SELECT band_key, record FROM overlap_band WHERE version_key = :k "
                "ORDER BY band_key, record"
            ),
            {"k": key},
        ).all()
        bands = b"".join(struct.pack("<qq", band, record) for band, record in rows)
        connection.execute(
            sa.text(
                "INSERT INTO overlap_segment (version_key, digest, documents, bands) "
                "VALUES (:k, :digest, :documents, :bands)"
            ),
            {"k": key, "digest": _digest(documents, bands), "documents": documents, "bands": bands},
        )
    op.drop_table("overlap_band")
    op.drop_table("overlap_document")


def downgrade() -> None:
    op.create_table(
        "overlap_document",
        sa.Column("sha256", sa.LargeBinary(), nullable=False),
        sa.Column("version_key", sa.Integer(), nullable=False),
        sa.CheckConstraint("length(sha256) = 32", name="ck_overlap_document_sha256"),
        sa.ForeignKeyConstraint(["version_key"], ["overlap_version.id"]),
        sa.PrimaryKeyConstraint("sha256", "version_key"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "overlap_band",
        sa.Column("band_key", sa.BigInteger(), nullable=False),
        sa.Column("version_key", sa.Integer(), nullable=False),
        sa.Column("record", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["version_key"], ["overlap_version.id"]),
        sa.PrimaryKeyConstraint("band_key", "version_key", "record"),
        sqlite_with_rowid=False,
    )
    connection = op.get_bind()
    segments = connection.execute(
        sa.text("SELECT version_key, documents, bands FROM overlap_segment ORDER BY version_key")
    ).all()
    for key, documents, bands in segments:
        documents, bands = bytes(documents), bytes(bands)
        hashes = [{"h": documents[i : i + 32], "k": key} for i in range(0, len(documents), 32)]
        if hashes:
            connection.execute(
                sa.text("INSERT INTO overlap_document (sha256, version_key) VALUES (:h, :k)"),
                hashes,
            )
        pairs = [
            {"b": band, "k": key, "r": record} for band, record in struct.iter_unpack("<qq", bands)
        ]
        if pairs:
            connection.execute(
                sa.text(
                    "INSERT INTO overlap_band (band_key, version_key, record) VALUES (:b, :k, :r)"
                ),
                pairs,
            )
    op.drop_table("overlap_segment")
