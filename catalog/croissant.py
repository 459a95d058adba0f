"""Croissant 1.1 metadata (JSON-LD) for one published dataset version.

:func:`croissant` is pure: it gets plain values (:class:`DatasetInfo`, :class:`VersionInfo`, the
version's :class:`~catalog.manifest.VersionManifest` and the exchange's public base URL) and
returns a JSON-serialisable dict, the same for the same input. It never touches a database, the
network or a clock.

What the document holds, and why:

- **Context**: the JSON-LD ``@context`` of the Croissant 1.1 specification (appendix 1) with the
  ``rai`` and ``dct`` prefixes, plus the terms ``mlcroissant`` (the reference implementation)
  expects, plus ``corpusx`` for our provenance terms. schema.org is ``https://schema.org/``: the
  1.1 text prints ``http://schema.org/`` in its appendix, but the 1.0 specification, every 1.1
  example dataset and ``mlcroissant`` use ``https`` (the maintainers chose it, mlcommons/croissant
  issue 884), and ``mlcroissant`` 1.1 rejects a document whose ``@vocab`` is ``http``: it finds no
  ``https://schema.org/Dataset`` node.
- **Conformance**: ``conformsTo`` is ``http://mlcommons.org/croissant/1.1``; when the document
  carries Responsible-AI properties it is a list that adds ``http://mlcommons.org/croissant/RAI/1.0``,
  as the RAI specification requires of documents that use its vocabulary.
- **Files**: one ``cr:FileObject`` per file, ``@id`` ``files/<name>`` (percent-encoded, so
  IRIs never hold spaces or colons), ``contentUrl`` ``<base>/versions/<id>/files/<name>``,
  ``sha256`` of the stored bytes, ``contentSize`` in bytes. ``encodingFormat`` names the format
  of the records first, in the words Croissant tools know (``application/jsonlines``,
  ``application/x-parquet``, ``text/plain``); a compressed file adds the registered type of its
  stored bytes (``application/gzip``, RFC 6713; ``application/zstd``, RFC 8878), so
  ``["application/jsonlines", "application/gzip"]`` reads "gzip-compressed JSON Lines". The record
  format comes first because readers pick the first format they can read (``mlcroissant``
  recognises gzip by its magic bytes). Our own media types (``application/jsonl+gzip``) are not
  registered and no Croissant tool knows them, so they are not used here.
- **Documents**: one ``cr:RecordSet`` per distinct document rule, with one ``cr:Field`` ``text``
  (``sc:Text``). Its ``source`` extracts the documents exactly as the rule defines them
  (``docs/catalog.md``): ``field:<name>`` is ``extract.column`` (a Parquet column, or the member of
  each JSON Lines object: a JSON Lines file is a table with one row per line), ``line`` is
  ``extract.fileProperty: lines`` and ``file`` is ``extract.fileProperty: content``. A rule that
  covers one file takes it as ``fileObject``; a rule over several files takes a ``cr:FileSet``
  ``containedIn`` those files, which Croissant defines as the union of their contents (a Field
  has one source). The record set's documents are those of its files in manifest (name) order.
- **Responsible AI**: only what the provider wrote. Sections of the Markdown dataset card whose
  heading names an RAI topic (for example "Data Collection and Processing", "Personal and
  Sensitive Information", "Bias, Risks, and Limitations") become the matching ``rai:``
  property; nothing is guessed and nothing is filled with placeholders (the RAI vocabulary
  requires none of its properties).
- **Licence**: required by Croissant (``license``: a URL or a ``CreativeWork``). A summary that
  is a URL is given as that URL; other text as a ``CreativeWork`` named by the summary (with its
  one URL, if it holds exactly one); no summary as a ``CreativeWork`` that says no licence was
  stated.
- **Provenance** (``corpusx:``, ``https://corpusx.dev/ns#``): the version id (also the
  ``identifier``), the manifest root and the sequence number of the ledger entry that published
  the version, the manifest's URL and format, the version's status; per file the document rule,
  record count and document root, so each FileObject can be checked against the manifest.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from catalog.documents import Format, SourceKind, classify_name
from catalog.manifest import MANIFEST_FORMAT, FileManifest, VersionManifest
from catalog.models import Dataset, DatasetVersion

__all__ = [
    "CONFORMS_TO",
    "CONTEXT",
    "CORPUSX_NS",
    "RAI_CONFORMS_TO",
    "DatasetInfo",
    "VersionInfo",
    "card_rai_sections",
    "croissant",
    "encoding_formats",
]

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
RAI_CONFORMS_TO = "http://mlcommons.org/croissant/RAI/1.0"
CORPUSX_NS = "https://corpusx.dev/ns#"
SCHEMA_ORG = "https://schema.org/"

CONTEXT: Mapping[str, Any] = {
    "@language": "en",
    "@vocab": SCHEMA_ORG,
    "sc": SCHEMA_ORG,
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/",
    "corpusx": CORPUSX_NS,
    "annotation": "cr:annotation",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "description": {"@container": "@language"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "excludes": "cr:excludes",
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "name": {"@container": "@language"},
    "parentField": "cr:parentField",
    "path": "cr:path",
    "readLines": "cr:readLines",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sdVersion": "cr:sdVersion",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
    "unArchive": "cr:unArchive",
    "value": "cr:value",
}
"""The document's ``@context``: the 1.1 appendix's terms, ``mlcroissant``'s and ``corpusx``.

``name`` and ``description`` are language containers as in ``mlcroissant``'s 1.1 context (so a
value may be a map of language tags); a plain string stays a plain string in language ``en``.
"""

_RECORD_FORMATS = {
    Format.JSONL: "application/jsonlines",
    Format.PARQUET: "application/x-parquet",
    Format.TEXT: "text/plain",
}
_COMPRESSION_TYPES = {"gzip": "application/gzip", "zstd": "application/zstd"}

NO_LICENCE = {
    "@type": "sc:CreativeWork",
    "name": "No licence stated",
    "description": "The provider has not stated a licence for this dataset.",
}


# -- inputs ------------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime (as SQLite returns them) is taken to be UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """What the export needs of a dataset: its catalogue entry and labels, as plain values.

    ``provider`` is the provider's member id, ``provider_name`` its display name (the id if
    unknown). ``languages`` are the languages the provider declared; when there are none, the
    languages measured in the version's documents are used. ``updated_at`` is when the dataset's
    description (title, card, licence, labels) last changed.
    """

    slug: str
    title: str
    provider: str
    provider_name: str | None = None
    description: str = ""
    card: str = ""
    licence_summary: str = ""
    tags: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    updated_at: datetime | None = None

    @classmethod
    def from_row(
        cls,
        dataset: Dataset,
        *,
        languages: Iterable[str] = (),
        provider_name: str | None = None,
    ) -> DatasetInfo:
        """From a :class:`~catalog.models.Dataset` row and its ``language`` labels."""
        return cls(
            slug=dataset.slug,
            title=dataset.title,
            provider=dataset.provider,
            provider_name=provider_name,
            description=dataset.description,
            card=dataset.card,
            licence_summary=dataset.licence_summary,
            tags=tuple(dataset.tags.split()),
            languages=tuple(languages),
            updated_at=dataset.updated_at,
        )


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """What the export needs of a version besides its manifest.

    ``published_seq`` is the ledger sequence number of the entry that published the version,
    ``published_at`` when it was published.
    """

    label: str
    published_seq: int
    published_at: datetime
    status: str = "published"

    @classmethod
    def from_row(cls, version: DatasetVersion) -> VersionInfo:
        """From a :class:`~catalog.models.DatasetVersion` row."""
        return cls(
            label=version.label,
            published_seq=version.published_seq,
            published_at=version.created_at,
            status=version.status,
        )


# -- the document ------------------------------------------------------------------------------


def croissant(
    *,
    dataset: DatasetInfo,
    version: VersionInfo,
    manifest: VersionManifest,
    base_url: str,
) -> dict[str, Any]:
    """The Croissant 1.1 JSON-LD of ``version`` of ``dataset``, whose files ``manifest`` lists.

    ``base_url`` is the exchange's public URL (``https://exchange.example``); file URLs are
    ``<base_url>/versions/<version id>/files/<name>``, the dataset's page
    ``<base_url>/datasets/<slug>``. The result is deterministic and JSON-serialisable.
    """
    base = base_url.rstrip("/")
    version_id = manifest.version_id
    version_url = f"{base}/versions/{version_id}"
    published = _utc(version.published_at)
    modified = published
    if dataset.updated_at is not None:
        modified = max(published, _utc(dataset.updated_at))

    rai = card_rai_sections(dataset.card)
    doc: dict[str, Any] = {
        "@context": copy.deepcopy(dict(CONTEXT)),
        "@type": "sc:Dataset",
        "conformsTo": [CONFORMS_TO, RAI_CONFORMS_TO] if rai else CONFORMS_TO,
        "name": dataset.title,
        "alternateName": dataset.slug,
        "description": _description(dataset),
        "url": f"{base}/datasets/{quote(dataset.slug, safe='')}",
        "identifier": version_id,
        "version": version.label,
        "license": _licence(dataset.licence_summary),
        "creator": {
            "@type": "sc:Organization",
            "name": dataset.provider_name or dataset.provider,
            "identifier": dataset.provider,
        },
        "datePublished": _timestamp(published),
        "dateModified": _timestamp(modified),
    }
    keywords = sorted(set(dataset.tags))
    if keywords:
        doc["keywords"] = keywords
    languages = _languages(dataset, manifest)
    if languages:
        doc["inLanguage"] = languages
    doc.update(rai)
    doc.update(
        {
            "corpusx:versionId": version_id,
            "corpusx:manifestRoot": manifest.manifest_root,
            "corpusx:manifestFormat": MANIFEST_FORMAT,
            "corpusx:manifest": f"{version_url}/manifest",
            "corpusx:publishedSeq": version.published_seq,
            "corpusx:status": version.status,
        }
    )

    distribution: list[dict[str, Any]] = [_file_object(f, version_url) for f in manifest.files]
    record_sets: list[dict[str, Any]] = []
    by_rule: dict[str, list[FileManifest]] = {}
    for f in manifest.files:
        by_rule.setdefault(f.document_rule, []).append(f)
    for rule in sorted(by_rule):
        files = by_rule[rule]
        record_set_id = _record_set_id(rule)
        if len(files) == 1:
            source: dict[str, Any] = {"fileObject": {"@id": _file_id(files[0].name)}}
        else:
            file_set_id = f"file-sets/{record_set_id}"
            distribution.append(_file_set(file_set_id, rule, files))
            source = {"fileSet": {"@id": file_set_id}}
        source["extract"] = _extract(rule)
        record_sets.append(_record_set(record_set_id, rule, files, source))
    doc["distribution"] = distribution
    doc["recordSet"] = record_sets
    return doc


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _description(dataset: DatasetInfo) -> str:
    """Croissant requires a description: the provider's, else its card, else a plain statement."""
    for text in (dataset.description, dataset.card):
        if text.strip():
            return text.strip()
    return "The provider has not described this dataset."


_URL = re.compile(r"https?://[^\s<>\"'()\[\]]+[^\s<>\"'()\[\].,;:!?]")


def _licence(summary: str) -> str | dict[str, Any]:
    """A licence URL, a CreativeWork naming the licence, or one saying none was stated."""
    text = summary.strip()
    if not text:
        return copy.deepcopy(NO_LICENCE)
    if _URL.fullmatch(text):
        return text
    work: dict[str, Any] = {"@type": "sc:CreativeWork", "name": text}
    urls = sorted(set(_URL.findall(text)))
    if len(urls) == 1:
        work["url"] = urls[0]
    return work


def _languages(dataset: DatasetInfo, manifest: VersionManifest) -> list[str]:
    """Declared languages, else those measured in the documents (not ``zxx`` nor ``und-*``)."""
    declared = {code for code in dataset.languages if code}
    if declared:
        return sorted(declared)
    measured = {code for f in manifest.files for code, _ in f.stats.languages}
    return sorted(code for code in measured if code != "zxx" and not code.startswith("und"))


# -- files -------------------------------------------------------------------------------------


def _file_id(name: str) -> str:
    """``files/<name>``, percent-encoded: no whitespace (``mlcroissant`` refuses it in ids) and
    no colon (which would make the IRI absolute); relative to the document's URL
    ``<base>/versions/<id>/croissant`` it resolves to the file's own URL."""
    return "files/" + quote(name, safe="/")


def encoding_formats(kind: SourceKind) -> list[str]:
    """The Croissant ``encodingFormat`` of a file: its record format, then its compression."""
    formats = [_RECORD_FORMATS[kind.format]]
    if kind.compression is not None:
        formats.append(_COMPRESSION_TYPES[kind.compression])
    return formats


def _one_or_many(values: Sequence[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else list(values)


def _file_object(f: FileManifest, version_url: str) -> dict[str, Any]:
    kind = classify_name(f.name)
    return {
        "@type": "cr:FileObject",
        "@id": _file_id(f.name),
        "name": f.name,
        "contentUrl": f"{version_url}/files/{quote(f.name, safe='/')}",
        "contentSize": f"{f.size} B",
        "encodingFormat": _one_or_many(encoding_formats(kind)),
        "sha256": f.sha256,
        "corpusx:documentRule": f.document_rule,
        "corpusx:records": f.records,
        "corpusx:documentRoot": f.document_root,
    }


def _file_set(file_set_id: str, rule: str, files: Sequence[FileManifest]) -> dict[str, Any]:
    formats: list[str] = []
    for f in files:
        for fmt in encoding_formats(classify_name(f.name)):
            if fmt not in formats:
                formats.append(fmt)
    return {
        "@type": "cr:FileSet",
        "@id": file_set_id,
        "name": file_set_id,
        "description": (
            f"The {len(files)} files whose documents follow the rule {rule!r}, in name order."
        ),
        "containedIn": [{"@id": _file_id(f.name)} for f in files],
        "encodingFormat": _one_or_many(formats),
        "includes": "*",
    }


# -- documents ---------------------------------------------------------------------------------


def _record_set_id(rule: str) -> str:
    """``documents-line``, ``documents-file``, ``documents-field-<name, percent-encoded>``."""
    if rule.startswith("field:"):
        return "documents-field-" + quote(rule[len("field:") :], safe="")
    return f"documents-{rule}"


def _extract(rule: str) -> dict[str, str]:
    if rule.startswith("field:"):
        return {"column": rule[len("field:") :]}
    if rule == "line":
        return {"fileProperty": "lines"}
    return {"fileProperty": "content"}


def _rule_text(rule: str) -> str:
    if rule.startswith("field:"):
        name = rule[len("field:") :]
        return (
            f"the string value of the top-level column (Parquet) or member (JSON Lines) {name!r} "
            "of each record, in record order"
        )
    if rule == "line":
        return "each non-empty line of the text, without its line ending (LF, or CR LF), in order"
    return "the whole text of each file (an empty file has none)"


def _record_set(
    record_set_id: str, rule: str, files: Sequence[FileManifest], source: dict[str, Any]
) -> dict[str, Any]:
    records = sum(f.records for f in files)
    return {
        "@type": "cr:RecordSet",
        "@id": record_set_id,
        "name": record_set_id,
        "description": (
            f"The documents of the files with the document rule {rule!r}: {_rule_text(rule)}; "
            f"{records} documents in {len(files)} file{'s' if len(files) != 1 else ''}. "
            "Compressed files are read decompressed; a UTF-8 byte order mark is not part of a "
            "document."
        ),
        "corpusx:documentRule": rule,
        "corpusx:records": records,
        "field": [
            {
                "@type": "cr:Field",
                "@id": f"{record_set_id}/text",
                "name": "text",
                "description": "The document: UTF-8 text.",
                "dataType": "sc:Text",
                "source": source,
            }
        ],
    }


# -- Responsible AI from the dataset card --------------------------------------------------------

_RAI_HEADINGS: Mapping[str, tuple[str, ...]] = {
    "rai:dataCollection": (
        "collection",
        "collection process",
        "data collection",
        "data collection and processing",
        "data collection process",
    ),
    "rai:dataPreprocessingProtocol": (
        "data pre processing",
        "data preprocessing",
        "pre processing",
        "preprocessing",
    ),
    "rai:dataBiases": ("bias", "biases", "data biases", "discussion of biases", "known biases"),
    "rai:dataLimitations": (
        "bias risks and limitations",
        "data limitations",
        "known limitations",
        "limitations",
        "other known limitations",
        "risks and limitations",
    ),
    "rai:personalSensitiveInformation": (
        "personal and sensitive information",
        "personal information",
        "sensitive information",
    ),
    "rai:dataUseCases": (
        "direct use",
        "intended use",
        "intended uses",
        "recommended uses",
        "use cases",
    ),
    "rai:dataSocialImpact": (
        "social impact",
        "social impact of dataset",
        "social impact of the dataset",
    ),
    "rai:dataReleaseMaintenancePlan": (
        "dataset maintenance",
        "maintenance",
        "maintenance plan",
    ),
}
_HEADING_TO_RAI = {
    heading: prop for prop, headings in _RAI_HEADINGS.items() for heading in headings
}

_ATX_HEADING = re.compile(r" {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_PLACEHOLDER = re.compile(r"\[more information needed\]", re.IGNORECASE)


def _normalise_heading(title: str) -> str:
    """``"2.1 Bias, Risks, and Limitations:"`` -> ``"bias risks and limitations"``."""
    text = re.sub(r"^\d+(?:\.\d+)*\.?\s+", "", title.strip())
    text = re.sub(r"[^\w\s]|_", " ", text.lower())
    return " ".join(text.split())


def card_rai_sections(card: str) -> dict[str, str]:
    """RAI properties from a Markdown dataset card: each section whose heading names an RAI
    topic, its text up to the next heading of the same or a higher level.

    Headings inside fenced code blocks are not headings; HTML comments and the Hugging Face
    template's ``[More Information Needed]`` are dropped, and a section left empty gives nothing.
    A section nested in another one mapped to the same property is part of that one; several
    separate sections for one property are joined by a blank line.
    """
    lines = card.splitlines()
    headings: list[tuple[int, int, str]] = []  # (line index, level, normalised title)
    fence: str | None = None
    for index, line in enumerate(lines):
        marker = _FENCE.match(line)
        if marker:
            chars = marker.group(1)
            if fence is None:
                fence = chars
            elif chars[0] == fence[0] and len(chars) >= len(fence):
                fence = None
            continue
        if fence is not None:
            continue
        heading = _ATX_HEADING.fullmatch(line)
        if heading:
            headings.append((index, len(heading.group(1)), _normalise_heading(heading.group(2))))
    found: dict[str, list[str]] = {}
    covered_until: dict[str, int] = {}
    for position, (index, level, title) in enumerate(headings):
        prop = _HEADING_TO_RAI.get(title)
        if prop is None or index < covered_until.get(prop, -1):
            continue
        end = len(lines)
        for next_index, next_level, _ in headings[position + 1 :]:
            if next_level <= level:
                end = next_index
                break
        covered_until[prop] = end
        body = _PLACEHOLDER.sub("", _COMMENT.sub("", "\n".join(lines[index + 1 : end]))).strip()
        if _has_words(body):
            found.setdefault(prop, []).append(body)
    return {prop: "\n\n".join(found[prop]) for prop in _RAI_HEADINGS if prop in found}


def _has_words(markdown: str) -> bool:
    """Whether a section holds text beyond headings and markup (a bare ``###`` tree is empty)."""
    for line in markdown.splitlines():
        if _ATX_HEADING.fullmatch(line):
            continue
        if re.search(r"\w", line):
            return True
    return False
