"""Datasets, immutable versions, ingestion, search and metadata export.

The ingestion core is pure (no database, HTTP or blob store): :func:`scan` and :func:`ingest`
turn a folder of Parquet, JSON Lines and text files into a :class:`VersionManifest` whose
``version_id`` names it; :func:`prove_document` and :func:`verify_document_bundle` prove single
documents in a version. ``docs/catalog.md`` defines documents, manifests and proofs.
"""

import os

# numpy's OpenBLAS starts a spinning thread per core at import; nothing here calls BLAS, and on
# a machine whose cores parse corpora those threads only take cycles (~0.13 s of CPU for every
# process, workers included, that imports numpy). A value the user set is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


from catalog.documents import (
    MAX_DOCUMENT_BYTES,
    Format,
    IngestOptions,
    SourceKind,
    classify_name,
    document_leaf,
    document_root,
    document_sha256,
)
from catalog.errors import (
    CatalogError,
    ClaimMismatchError,
    FileChangedError,
    IngestError,
    ManifestError,
    ProofError,
)
from catalog.ingest import (
    IngestProgress,
    SourceFile,
    ingest,
    ingest_file,
    scan,
    verify_file,
)
from catalog.manifest import (
    MANIFEST_FORMAT,
    FileChange,
    FileEntry,
    FileManifest,
    FileProof,
    ManifestDiff,
    SchemaField,
    TextStats,
    VersionManifest,
    diff,
    file_inclusion_proof,
    validate_name,
    verify_file_inclusion,
)
from catalog.proofs import (
    PROOF_FORMAT,
    DocumentBundle,
    LedgerLink,
    VerifiedDocument,
    prove_document,
    verify_document_bundle,
)

__all__ = [
    "MANIFEST_FORMAT",
    "MAX_DOCUMENT_BYTES",
    "PROOF_FORMAT",
    "CatalogError",
    "ClaimMismatchError",
    "DocumentBundle",
    "FileChange",
    "FileChangedError",
    "FileEntry",
    "FileManifest",
    "FileProof",
    "Format",
    "IngestError",
    "IngestOptions",
    "IngestProgress",
    "LedgerLink",
    "ManifestDiff",
    "ManifestError",
    "ProofError",
    "SchemaField",
    "SourceFile",
    "SourceKind",
    "TextStats",
    "VerifiedDocument",
    "VersionManifest",
    "classify_name",
    "diff",
    "document_leaf",
    "document_root",
    "document_sha256",
    "file_inclusion_proof",
    "ingest",
    "ingest_file",
    "prove_document",
    "scan",
    "validate_name",
    "verify_document_bundle",
    "verify_file",
    "verify_file_inclusion",
]
