"""What a document is, and how a file's documents become one Merkle root.

A **document** is a byte string: the UTF-8 bytes of one record's text.

- Parquet (``.parquet``): the value of the top-level string column named by ``text_field``
  (default ``text``) in each row, in row order. Nulls are refused.
- JSON Lines (``.jsonl``, ``.ndjson``): each line that is not blank holds one JSON object; the
  document is the UTF-8 encoding of the string value of its member ``text_field``.
- Plain text (``.txt``): with ``text_unit="line"`` (the default) every non-empty line is one
  document (LF ends a line and is not part of it; a CR before the LF is dropped too); with
  ``text_unit="file"`` the whole file is one document (an empty file has none).

JSON Lines and text files may be stored gzip (``.gz``) or zstd (``.zst``) compressed; documents
are taken from the decompressed bytes, the file digest from the stored ones. A UTF-8 byte order
mark at the start of a JSON Lines or text file is not part of any document.

The **document hash** is SHA-256 of the document. The file's **document root** is the RFC 6962
Merkle tree hash over one leaf per document, in record order, whose leaf *data* is the 32-byte
document hash::

    leaf(i) = SHA-256(0x00 || SHA-256(document i))
    root    = MTH(leaf(0) .. leaf(n-1))        (SHA-256 of the empty string when n = 0)

so a document can be proven to belong to a file by anyone holding only its hash.
``docs/catalog.md`` is the normative description.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from catalog import native
from catalog.errors import IngestError
from ledger.merkle import EMPTY_ROOT, HASH_SIZE, frontier_root

_native = native.load("_digests")  # compiled inner loops, or None: see catalog.native

__all__ = [
    "DEFAULT_TEXT_FIELD",
    "MAX_DOCUMENT_BYTES",
    "Buffer",
    "DocumentTree",
    "Format",
    "IngestOptions",
    "SourceKind",
    "classify_name",
    "digest_leaves",
    "document_digests",
    "document_leaf",
    "document_leaves",
    "document_root",
    "document_sha256",
]

MAX_DOCUMENT_BYTES = 64 << 20
"""No document, JSON Lines line or text line may be longer than this (64 MiB)."""

DEFAULT_TEXT_FIELD = "text"

Buffer = bytes | memoryview
"""A document as the readers hand it over: bytes, or a zero-copy view into an Arrow buffer."""

TextUnit = Literal["line", "file"]


class Format(StrEnum):
    """The record format of a corpus file, decided by its name."""

    PARQUET = "parquet"
    JSONL = "jsonl"
    TEXT = "text"


_BASE_MEDIA_TYPES = {
    Format.PARQUET: "application/x-parquet",
    Format.JSONL: "application/jsonl",
    Format.TEXT: "text/plain",
}
_SUFFIXES = {
    ".parquet": Format.PARQUET,
    ".jsonl": Format.JSONL,
    ".ndjson": Format.JSONL,
    ".txt": Format.TEXT,
}
_COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}


@dataclass(frozen=True, slots=True)
class SourceKind:
    """Format and compression of a file, from its name: ``a/b.jsonl.zst`` is zstd JSON Lines."""

    format: Format
    compression: Literal["gzip", "zstd"] | None

    @property
    def media_type(self) -> str:
        """``application/jsonl``, ``application/jsonl+zstd``, ``text/plain+gzip``, ..."""
        base = _BASE_MEDIA_TYPES[self.format]
        return base if self.compression is None else f"{base}+{self.compression}"


def classify_name(name: str) -> SourceKind:
    """The kind of file ``name`` is, from its suffixes (case-insensitive); IngestError if none."""
    lower = name.lower()
    compression: Literal["gzip", "zstd"] | None = None
    for suffix, algorithm in _COMPRESSIONS.items():
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
            compression = "gzip" if algorithm == "gzip" else "zstd"
            break
    for suffix, fmt in _SUFFIXES.items():
        if lower.endswith(suffix) and len(lower) > len(suffix):
            if fmt is Format.PARQUET and compression is not None:
                raise IngestError(
                    "Parquet compresses its own pages; store .parquet files uncompressed",
                    file=name,
                )
            return SourceKind(fmt, compression)
    supported = ", ".join(sorted(_SUFFIXES))
    raise IngestError(
        f"unknown file type: expected one of {supported} (JSON Lines and text optionally "
        ".gz or .zst)",
        file=name,
    )


def logical_name(name: str) -> str:
    """``name`` without a compression suffix: ``a.jsonl.gz`` and ``a.jsonl`` clash."""
    lower = name.lower()
    for suffix in _COMPRESSIONS:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """How documents are taken from records. ``text_field`` and ``text_unit`` change the
    documents and are recorded per file as its ``document_rule``; the limit only refuses input.
    """

    text_field: str = DEFAULT_TEXT_FIELD
    text_unit: TextUnit = "line"
    max_document_bytes: int = MAX_DOCUMENT_BYTES

    def __post_init__(self) -> None:
        if not isinstance(self.text_field, str) or not self.text_field:
            raise IngestError("text_field must be a non-empty string")
        if self.text_unit not in ("line", "file"):
            raise IngestError(f"text_unit must be 'line' or 'file', not {self.text_unit!r}")
        if (
            isinstance(self.max_document_bytes, bool)
            or not isinstance(self.max_document_bytes, int)
            or self.max_document_bytes < 1
        ):
            raise IngestError("max_document_bytes must be a positive integer")

    def document_rule(self, fmt: Format) -> str:
        """``field:<name>`` for Parquet and JSON Lines, ``line`` or ``file`` for text."""
        return self.text_unit if fmt is Format.TEXT else f"field:{self.text_field}"

    @classmethod
    def for_rule(cls, rule: str, *, max_document_bytes: int = MAX_DOCUMENT_BYTES) -> IngestOptions:
        """The options that reproduce a recorded ``document_rule`` (to re-derive documents)."""
        if rule == "line":
            return cls(text_unit="line", max_document_bytes=max_document_bytes)
        if rule == "file":
            return cls(text_unit="file", max_document_bytes=max_document_bytes)
        if rule.startswith("field:") and len(rule) > len("field:"):
            return cls(text_field=rule[len("field:") :], max_document_bytes=max_document_bytes)
        raise IngestError(f"unknown document rule {rule!r}")


def document_sha256(document: Buffer) -> bytes:
    """SHA-256 of the document bytes."""
    return hashlib.sha256(document).digest()


def document_leaf(document_hash: bytes) -> bytes:
    """The Merkle leaf hash of a document given its SHA-256: SHA-256(0x00 || hash)."""
    if len(document_hash) != HASH_SIZE:
        raise IngestError(f"a document hash is {HASH_SIZE} bytes, not {len(document_hash)}")
    return hashlib.sha256(b"\x00" + document_hash).digest()


def document_digests(documents: Iterable[Buffer]) -> list[bytes]:
    """SHA-256 of each document: with :func:`digest_leaves`, the hot loop of ingestion."""
    if _native is not None:
        given = documents if type(documents) is list else [*documents]
        hashes: list[bytes] = _native.digests(given)
        return hashes
    sha256 = hashlib.sha256
    return [sha256(document).digest() for document in documents]


def digest_leaves(digests: Iterable[bytes]) -> list[bytes]:
    """Leaf hashes from document hashes: SHA-256(0x00 || hash) each."""
    if _native is not None:
        try:
            leaves: list[bytes] = _native.leaves(digests if type(digests) is list else [*digests])
        except ValueError:
            raise IngestError(f"a document hash is {HASH_SIZE} bytes") from None
        return leaves
    sha256 = hashlib.sha256
    return [sha256(b"\x00" + digest).digest() for digest in digests]


def document_leaves(documents: Iterable[Buffer]) -> list[bytes]:
    """Leaf hashes of documents."""
    return digest_leaves(document_digests(documents))


def document_root(documents: Iterable[Buffer]) -> bytes:
    """The document root of a sequence of documents (for tests and small inputs)."""
    tree = DocumentTree()
    tree.extend(document_leaves(documents))
    return tree.root()


_NODE_PREFIX = b"\x01"

_CHUNK_LEVEL = 10
_CHUNK = 1 << _CHUNK_LEVEL


def _perfect_root(leaves: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree (len(leaves) a power of two), one list pass per level."""
    if _native is not None:
        root: bytes = _native.perfect_root(leaves)
        return root
    sha256 = hashlib.sha256
    level = list(leaves)
    while len(level) > 1:
        pairs = iter(level)
        level = [
            sha256(_NODE_PREFIX + left + right).digest()
            for left, right in zip(pairs, pairs, strict=False)
        ]
    return level[0]


class DocumentTree:
    """RFC 6962 root over a stream of leaf hashes in O(log n) memory, fast for big batches.

    Leaves are reduced in aligned chunks of 2^10 into perfect subtree roots, kept as a frontier
    (one root per set bit of the chunk count, largest first). The final root folds that frontier
    and the perfect parts of the unfinished chunk with :func:`ledger.merkle.frontier_root`, which
    is exactly RFC 6962's MTH because the tree's perfect parts are cut at the same boundaries.
    """

    __slots__ = ("_chunks", "_frontier", "_pending")

    def __init__(self) -> None:
        self._frontier: list[bytes] = []
        self._chunks = 0
        self._pending: list[bytes] = []

    @property
    def size(self) -> int:
        return (self._chunks << _CHUNK_LEVEL) + len(self._pending)

    def extend(self, leaves: Sequence[bytes]) -> None:
        pending = self._pending
        pending.extend(leaves)
        if len(pending) < _CHUNK:
            return
        full = len(pending) - len(pending) % _CHUNK
        for start in range(0, full, _CHUNK):
            self._push(_perfect_root(pending[start : start + _CHUNK]))
        del pending[:full]

    def _push(self, root: bytes) -> None:
        frontier = self._frontier
        count = self._chunks
        node = root
        while count & 1:
            node = hashlib.sha256(_NODE_PREFIX + frontier.pop() + node).digest()
            count >>= 1
        frontier.append(node)
        self._chunks += 1

    def root(self) -> bytes:
        parts = list(self._frontier)
        pending = self._pending
        start = 0
        for bit in range(_CHUNK_LEVEL - 1, -1, -1):
            width = 1 << bit
            if len(pending) - start >= width:
                parts.append(_perfect_root(pending[start : start + width]))
                start += width
        return frontier_root(parts) if parts else EMPTY_ROOT
