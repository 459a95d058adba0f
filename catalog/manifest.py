"""Version manifests: what a dataset version is, byte for byte, and how its files are proven.

A :class:`VersionManifest` lists every file of a version in name order. Its JSON is::

    {"format": "corpusx/version-manifest@v1",
     "files": [{"name", "size", "media_type", "sha256", "records", "document_root",
                "document_rule", "stats": {...}, "schema": [...]}, ...]}

- **Canonical bytes**: RFC 8785 (JCS) of that JSON (:func:`ledger.canonical.canonical_bytes`).
- **Version id**: ``"sha256:" + hex(SHA-256(canonical bytes))``. Everything in the manifest,
  statistics included, is claimed by the provider and recomputed by the exchange.
- **Manifest root**: the RFC 6962 root over one leaf per file, in manifest (name) order; the leaf
  data is the canonical JSON of the file's :class:`FileEntry` (the seven fields above that
  define the file and its documents, without statistics or schema)::

      leaf(file) = SHA-256(0x00 || JCS({"name", "size", "media_type", "sha256", "records",
                                        "document_root", "document_rule"}))

  so :func:`file_inclusion_proof` proves a file (name, bytes and documents) in a version with
  O(log n) hashes. ``docs/catalog.md`` is the normative description.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from catalog.documents import IngestOptions, classify_name
from catalog.errors import IngestError, ManifestError, ProofError
from ledger.canonical import canonical_bytes, parse_json
from ledger.errors import FormatError, LedgerError
from ledger.merkle import NodeID, inclusion_proof, leaf_hash, tree_root, verify_inclusion

__all__ = [
    "MANIFEST_FORMAT",
    "FileChange",
    "FileEntry",
    "FileManifest",
    "FileProof",
    "ManifestDiff",
    "SchemaField",
    "TextStats",
    "VersionManifest",
    "diff",
    "estimate_tokens",
    "file_inclusion_proof",
    "is_version_id",
    "manifest_differences",
    "validate_name",
    "verify_file_inclusion",
]

MANIFEST_FORMAT = "corpusx/version-manifest@v1"
VERSION_PREFIX = "sha256:"

MAX_NAME_BYTES = 1024
MAX_SEGMENT_BYTES = 255

_HEX64 = re.compile(r"[0-9a-f]{64}")
_VERSION_ID = re.compile(r"sha256:[0-9a-f]{64}")
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:-[A-Z][a-z]{3})?|und-[A-Z][a-z]{3}")


def validate_name(name: str) -> str:
    """Check that ``name`` is a safe relative file name; return it, or raise IngestError.

    A name is NFC-normalised UTF-8 of at most 1024 bytes, ``/``-separated segments of at most
    255 bytes, none empty, ``.`` or ``..``; no backslash, no control characters, no leading ``/``.
    Names come from the provider's manifest too, so the server relies on this before it uses one.
    """
    if not isinstance(name, str) or not name:
        raise IngestError("a file name must be a non-empty string", file=repr(name))
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise IngestError("file name is not valid UTF-8", file=repr(name)) from None
    problem = None
    if len(encoded) > MAX_NAME_BYTES:
        problem = f"file name is longer than {MAX_NAME_BYTES} bytes"
    elif unicodedata.normalize("NFC", name) != name:
        problem = "file name is not in Unicode NFC form"
    elif "\\" in name:
        problem = "file name contains a backslash; use / between folders"
    elif any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
        problem = "file name contains a control character"
    elif name.startswith("/"):
        problem = "file name must be relative (it starts with /)"
    else:
        for segment in name.split("/"):
            if segment in ("", ".", ".."):
                problem = f"file name has a {segment or 'empty'!r} segment (path traversal)"
                break
            if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
                problem = f"a segment of the file name is longer than {MAX_SEGMENT_BYTES} bytes"
                break
    if problem is not None:
        raise IngestError(problem, file=repr(name))
    return name


# -- strict JSON helpers -----------------------------------------------------------------------


def _object(value: object, what: str, keys: Sequence[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(f"{what} must be a JSON object")
    if set(value) != set(keys):
        missing = sorted(set(keys) - set(value))
        extra = sorted(set(value) - set(keys))
        raise ManifestError(f"{what}: missing fields {missing}, unexpected fields {extra}")
    return value


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ManifestError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def _str(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _hex64(value: object, what: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise ManifestError(f"{what} must be 64 lowercase hex digits, got {value!r}")
    return value


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ManifestError(message)


# -- files -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileEntry:
    """The part of a file's manifest that the manifest root commits to, one leaf per file."""

    name: str
    size: int
    media_type: str
    sha256: str
    records: int
    document_root: str
    document_rule: str

    KEYS = ("name", "size", "media_type", "sha256", "records", "document_root", "document_rule")

    def __post_init__(self) -> None:
        try:
            validate_name(self.name)
            kind = classify_name(self.name)
            IngestOptions.for_rule(self.document_rule)
        except IngestError as exc:
            raise ManifestError(str(exc)) from None
        _int(self.size, f"{self.name}: size")
        _int(self.records, f"{self.name}: records")
        _hex64(self.sha256, f"{self.name}: sha256")
        _hex64(self.document_root, f"{self.name}: document_root")
        _check(
            self.media_type == kind.media_type,
            f"{self.name}: media_type must be {kind.media_type!r} for this name, "
            f"got {self.media_type!r}",
        )
        expects_field = kind.format.value != "text"
        _check(
            self.document_rule.startswith("field:") == expects_field,
            f"{self.name}: document_rule {self.document_rule!r} does not fit a "
            f"{kind.format.value} file",
        )

    def to_json(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.KEYS}

    @classmethod
    def from_json(cls, value: object) -> FileEntry:
        data = _object(value, "file entry", cls.KEYS)
        return cls(
            name=_str(data["name"], "file name"),
            size=_int(data["size"], "size"),
            media_type=_str(data["media_type"], "media_type"),
            sha256=_hex64(data["sha256"], "sha256"),
            records=_int(data["records"], "records"),
            document_root=_hex64(data["document_root"], "document_root"),
            document_rule=_str(data["document_rule"], "document_rule"),
        )

    def leaf_data(self) -> bytes:
        """The manifest tree's leaf data for this file: JCS of :meth:`to_json`."""
        return canonical_bytes(self.to_json())


@dataclass(frozen=True, slots=True)
class SchemaField:
    """A field of the records: Parquet column with its Arrow type, or JSON Lines member with the
    JSON kinds of its non-null values (``"number|string"``; ``"null"`` if only ever null)."""

    name: str
    type: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type}

    @classmethod
    def from_json(cls, value: object) -> SchemaField:
        data = _object(value, "schema field", ("name", "type"))
        if not isinstance(data["name"], str):
            raise ManifestError("schema field name must be a string")
        return cls(data["name"], _str(data["type"], "schema field type"))


@dataclass(frozen=True, slots=True)
class TextStats:
    """Text statistics of a file's documents (rules in ``docs/catalog.md``).

    ``estimated_tokens`` is ``ceil(document_bytes / 4)``; ``languages`` counts the documents of
    the deterministic sample per language code, ``language_sample`` is the sample's size.
    """

    characters: int
    document_bytes: int
    estimated_tokens: int
    languages: tuple[tuple[str, int], ...]
    language_sample: int

    KEYS = ("characters", "document_bytes", "estimated_tokens", "languages", "language_sample")

    def __post_init__(self) -> None:
        codes = [code for code, _ in self.languages]
        _check(codes == sorted(set(codes)), "stats languages must be unique and sorted")
        for code, count in self.languages:
            _check(bool(_LANGUAGE_CODE.fullmatch(code)), f"bad language code {code!r}")
            _check(_int(count, "language count") > 0, "language counts must be positive")
        _check(
            sum(count for _, count in self.languages) == self.language_sample,
            "stats language counts must add up to language_sample",
        )
        _check(
            self.estimated_tokens == estimate_tokens(self.document_bytes),
            "estimated_tokens must be ceil(document_bytes / 4)",
        )
        _check(self.characters <= self.document_bytes, "more characters than document bytes")

    @property
    def language_counts(self) -> dict[str, int]:
        return dict(self.languages)

    def to_json(self) -> dict[str, Any]:
        return {
            "characters": self.characters,
            "document_bytes": self.document_bytes,
            "estimated_tokens": self.estimated_tokens,
            "languages": dict(self.languages),
            "language_sample": self.language_sample,
        }

    @classmethod
    def from_json(cls, value: object) -> TextStats:
        data = _object(value, "stats", cls.KEYS)
        languages = data["languages"]
        if not isinstance(languages, dict):
            raise ManifestError("stats languages must be an object of counts")
        return cls(
            characters=_int(data["characters"], "characters"),
            document_bytes=_int(data["document_bytes"], "document_bytes"),
            estimated_tokens=_int(data["estimated_tokens"], "estimated_tokens"),
            languages=tuple(sorted((k, _int(v, "language count")) for k, v in languages.items())),
            language_sample=_int(data["language_sample"], "language_sample"),
        )


def estimate_tokens(document_bytes: int) -> int:
    """ceil(bytes / 4): the usual rule of thumb for BPE tokenisers on English web text."""
    return (document_bytes + 3) // 4


@dataclass(frozen=True, slots=True)
class FileManifest:
    """One file of a version: its committed :class:`FileEntry`, statistics and schema."""

    entry: FileEntry
    stats: TextStats
    schema: tuple[SchemaField, ...]

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def size(self) -> int:
        return self.entry.size

    @property
    def sha256(self) -> str:
        return self.entry.sha256

    @property
    def records(self) -> int:
        return self.entry.records

    @property
    def document_root(self) -> str:
        return self.entry.document_root

    @property
    def media_type(self) -> str:
        return self.entry.media_type

    @property
    def document_rule(self) -> str:
        return self.entry.document_rule

    def to_json(self) -> dict[str, Any]:
        return {
            **self.entry.to_json(),
            "stats": self.stats.to_json(),
            "schema": [f.to_json() for f in self.schema],
        }

    @classmethod
    def from_json(cls, value: object) -> FileManifest:
        data = _object(value, "file", (*FileEntry.KEYS, "stats", "schema"))
        schema = data["schema"]
        if not isinstance(schema, list):
            raise ManifestError("file schema must be a list")
        entry = FileEntry.from_json({key: data[key] for key in FileEntry.KEYS})
        return cls(
            entry=entry,
            stats=TextStats.from_json(data["stats"]),
            schema=tuple(SchemaField.from_json(f) for f in schema),
        )


# -- versions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionManifest:
    """An immutable dataset version: its files in name order (code point order of the names)."""

    files: tuple[FileManifest, ...]

    def __post_init__(self) -> None:
        names = [f.name for f in self.files]
        if names != sorted(names):
            raise ManifestError("manifest files must be sorted by name")
        for before, after in itertools.pairwise(names):
            if before == after:
                raise ManifestError(f"manifest names file {before!r} twice")

    @classmethod
    def build(cls, files: Sequence[FileManifest]) -> VersionManifest:
        """A manifest of ``files`` in any order."""
        return cls(tuple(sorted(files, key=lambda f: f.name)))

    def to_json(self) -> dict[str, Any]:
        return {"format": MANIFEST_FORMAT, "files": [f.to_json() for f in self.files]}

    @classmethod
    def from_json(cls, value: object) -> VersionManifest:
        data = _object(value, "manifest", ("format", "files"))
        if data["format"] != MANIFEST_FORMAT:
            raise ManifestError(
                f"manifest format must be {MANIFEST_FORMAT!r}, not {data['format']!r}"
            )
        files = data["files"]
        if not isinstance(files, list):
            raise ManifestError("manifest files must be a list")
        return cls(tuple(FileManifest.from_json(f) for f in files))

    @classmethod
    def from_bytes(cls, data: bytes) -> VersionManifest:
        """Parse manifest JSON strictly (no duplicate keys, no NaN)."""
        try:
            return cls.from_json(parse_json(data, what="manifest"))
        except FormatError as exc:
            raise ManifestError(str(exc)) from None

    @cached_property
    def canonical(self) -> bytes:
        """The RFC 8785 bytes that the version id names."""
        return canonical_bytes(self.to_json())

    @cached_property
    def version_id(self) -> str:
        return VERSION_PREFIX + hashlib.sha256(self.canonical).hexdigest()

    @cached_property
    def _leaves(self) -> tuple[bytes, ...]:
        return tuple(leaf_hash(f.entry.leaf_data()) for f in self.files)

    @cached_property
    def manifest_root(self) -> str:
        """Hex RFC 6962 root over the files' entries in manifest order."""
        return tree_root(self._leaves).hex()

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def document_bytes(self) -> int:
        return sum(f.stats.document_bytes for f in self.files)

    @property
    def estimated_tokens(self) -> int:
        return sum(f.stats.estimated_tokens for f in self.files)

    def file(self, name: str) -> FileManifest:
        """The file named ``name``; ManifestError if the version has none."""
        index = self.index_of(name)
        return self.files[index]

    def index_of(self, name: str) -> int:
        for index, f in enumerate(self.files):
            if f.name == name:
                return index
        raise ManifestError(f"version {self.version_id} has no file {name!r}")


def is_version_id(value: object) -> bool:
    return isinstance(value, str) and bool(_VERSION_ID.fullmatch(value))


# -- file proofs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileProof:
    """RFC 9162 inclusion proof of one file's entry in a manifest root."""

    entry: FileEntry
    index: int
    size: int
    proof: tuple[bytes, ...]

    def verify(self, manifest_root: str | bytes) -> None:
        verify_file_inclusion(
            self.entry, index=self.index, size=self.size, proof=self.proof, root=manifest_root
        )


def file_inclusion_proof(manifest: VersionManifest, name: str) -> FileProof:
    """Prove that the file ``name`` (its entry) is in ``manifest.manifest_root``."""
    index = manifest.index_of(name)
    leaves = manifest._leaves

    def read(ids: Sequence[NodeID]) -> list[bytes]:
        return [tree_root(leaves[node.start : node.end]) for node in ids]

    proof = inclusion_proof(index, len(leaves), read)
    return FileProof(manifest.files[index].entry, index, len(leaves), tuple(proof))


def verify_file_inclusion(
    entry: FileEntry, *, index: int, size: int, proof: Sequence[bytes], root: str | bytes
) -> None:
    """Raise ProofError unless ``entry`` is leaf ``index`` of the manifest tree with ``root``."""
    root_bytes = bytes.fromhex(root) if isinstance(root, str) else root
    try:
        verify_inclusion(
            leaf_hash=leaf_hash(entry.leaf_data()),
            index=index,
            size=size,
            proof=proof,
            root=root_bytes,
        )
    except LedgerError as exc:
        raise ProofError(f"file {entry.name!r} is not in the manifest: {exc}") from None


# -- diff --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileChange:
    """A file present in both versions under the same name whose bytes or documents differ."""

    old: FileManifest
    new: FileManifest

    @property
    def name(self) -> str:
        return self.new.name

    @property
    def record_delta(self) -> int:
        return self.new.records - self.old.records


@dataclass(frozen=True, slots=True)
class ManifestDiff:
    """What changed from one version to another, by file name.

    ``renamed`` pairs (old, new) of a removed and an added file with the same bytes; those files
    are not also listed as added or removed.
    """

    added: tuple[FileManifest, ...]
    removed: tuple[FileManifest, ...]
    changed: tuple[FileChange, ...]
    renamed: tuple[tuple[FileManifest, FileManifest], ...]
    unchanged: tuple[str, ...]

    @property
    def records_added(self) -> int:
        """Documents in added files plus growth of changed files."""
        return sum(f.records for f in self.added) + sum(
            max(c.record_delta, 0) for c in self.changed
        )

    @property
    def records_removed(self) -> int:
        return sum(f.records for f in self.removed) + sum(
            max(-c.record_delta, 0) for c in self.changed
        )

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.renamed)


def diff(old: VersionManifest, new: VersionManifest) -> ManifestDiff:
    """Files added, removed, changed (same name, other bytes) and renamed, ``old`` to ``new``."""
    before = {f.name: f for f in old.files}
    after = {f.name: f for f in new.files}
    added = [f for name, f in after.items() if name not in before]
    removed = [f for name, f in before.items() if name not in after]
    changed = tuple(
        FileChange(before[name], f)
        for name, f in after.items()
        if name in before and before[name].entry != f.entry
    )
    unchanged = tuple(
        name for name, f in after.items() if name in before and before[name].entry == f.entry
    )
    renamed: list[tuple[FileManifest, FileManifest]] = []
    by_digest: dict[str, list[FileManifest]] = {}
    for f in removed:
        by_digest.setdefault(f.sha256, []).append(f)
    for f in list(added):
        candidates = by_digest.get(f.sha256)
        if candidates:
            source = candidates.pop(0)
            renamed.append((source, f))
            added.remove(f)
            removed.remove(source)
    return ManifestDiff(tuple(added), tuple(removed), changed, tuple(renamed), unchanged)


def manifest_differences(
    claimed: FileManifest, found: FileManifest
) -> dict[str, tuple[object, object]]:
    """Field-by-field differences between a claimed and a recomputed file manifest."""
    claimed_json, found_json = claimed.to_json(), found.to_json()
    return {
        key: (claimed_json[key], found_json.get(key))
        for key in claimed_json
        if claimed_json[key] != found_json.get(key)
    }
