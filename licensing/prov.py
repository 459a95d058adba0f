"""Lineage of derived dataset versions as W3C PROV (PROV-JSON and PROV-O Turtle).

Each :class:`LineageRecord` says that a provider derived one version from source versions, each
used under an agreement (or none, for the provider's own data). In PROV terms::

    version (entity)  prov:wasDerivedFrom   each source version
                      prov:wasGeneratedBy   the derivation (activity), prov:generatedAtTime `at`
                      prov:specializationOf its dataset (entity)
                      prov:wasAttributedTo  the provider (agent)
    derivation        prov:used             each source version and each agreement (entities)
                      prov:wasAssociatedWith the provider; cx:method the method
    agreement         cx:covers             the source version it licensed

Identifiers are the exchange's URNs (:mod:`licensing.iris`). ``docs/licensing.md`` section 6 is
normative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import rdflib
from prov.identifier import Identifier, Namespace
from prov.model import ProvDocument, QualifiedName
from rdflib.namespace import PROV, XSD

from ledger.entry import is_member_id
from licensing.errors import FormatError
from licensing.iris import (
    AGREEMENT_PREFIX,
    DATASET_PREFIX,
    MEMBER_PREFIX,
    PROJECT_NS,
    URN_PREFIX,
    VERSION_PREFIX,
    is_local_id,
    is_slug,
    is_timestamp,
    is_version_id,
)

MAX_METHOD = 100
METHODS = ("filtered", "deduplicated", "merged")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_DERIVATION_PREFIX = URN_PREFIX + "derivation:"
_NAMESPACES = {
    "cx": PROJECT_NS,
    "version": VERSION_PREFIX + "sha256:",
    "dataset": DATASET_PREFIX,
    "member": MEMBER_PREFIX,
    "agreement": AGREEMENT_PREFIX,
    "derivation": _DERIVATION_PREFIX + "sha256:",
}

_CX = Namespace("cx", PROJECT_NS)


@dataclass(frozen=True)
class LineageRecord:
    """One derivation: ``derived`` (of ``dataset``) made by ``agent`` at ``at`` from ``sources``."""

    derived: str
    dataset: str
    method: str
    agent: str
    at: str
    sources: tuple[tuple[str, str | None], ...]

    def __post_init__(self) -> None:
        if not isinstance(self.sources, tuple | list) or not all(
            isinstance(source, tuple | list) for source in self.sources
        ):
            raise FormatError("sources are (version id, agreement id or None) pairs")
        object.__setattr__(self, "sources", tuple(tuple(s) for s in self.sources))
        if not is_version_id(self.derived):
            raise FormatError(f"a derived version id is 'sha256:<64 hex>', got {self.derived!r}")
        if not is_slug(self.dataset):
            raise FormatError(f"{self.dataset!r} is not a dataset slug")
        if not isinstance(self.method, str) or not self.method.strip():
            raise FormatError("a derivation needs a method (e.g. 'filtered')")
        if len(self.method) > MAX_METHOD:
            raise FormatError(f"a derivation method is at most {MAX_METHOD} characters")
        if not is_member_id(self.agent):
            raise FormatError(f"{self.agent!r} is not a member id")
        _moment(self.at)
        self._check_sources()

    def _check_sources(self) -> None:
        if not self.sources:
            raise FormatError(f"{self.derived} is derived from no source")
        seen: set[str] = set()
        for source in self.sources:
            if len(source) != 2 or not is_version_id(source[0]):
                raise FormatError(f"a source is (version id, agreement id or None), got {source!r}")
            version, agreement = source
            if agreement is not None and not is_local_id(agreement):
                raise FormatError(f"{agreement!r} is not an agreement id")
            if version == self.derived:
                raise FormatError(f"{version} cannot be derived from itself")
            if version in seen:
                raise FormatError(f"{self.derived} names the source {version} twice")
            seen.add(version)

    @property
    def moment(self) -> datetime:
        return _moment(self.at)


def _moment(text: str) -> datetime:
    if not is_timestamp(text):
        raise FormatError(f"times are RFC 3339 UTC with milliseconds, got {text!r}")
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


class _EntityMaker(Protocol):
    def __call__(self, name: str, kind: str, **attributes: QualifiedName) -> QualifiedName: ...


def lineage_document(records: Sequence[LineageRecord]) -> ProvDocument:
    """The PROV document of these derivations (each version derived at most once)."""
    document = ProvDocument()
    for prefix, uri in _NAMESPACES.items():
        document.add_namespace(prefix, uri)
    declared: set[str] = set()

    def entity(name: str, kind: str, **attributes: QualifiedName) -> QualifiedName:
        if name not in declared:
            declared.add(name)
            described: dict[str | Identifier, Identifier] = {"prov:type": _CX[kind]}
            described.update(attributes)
            document.entity(name, described)
        qualified = document.valid_qualified_name(name)
        assert qualified is not None  # every name here has one of the document's prefixes
        return qualified

    derived_seen: set[str] = set()
    for record in records:
        if record.derived in derived_seen:
            raise FormatError(f"{record.derived} has two lineage records")
        derived_seen.add(record.derived)
        _add_record(document, record, entity)
    return document


def _add_record(document: ProvDocument, record: LineageRecord, entity: _EntityMaker) -> None:
    hex_id = record.derived.removeprefix("sha256:")
    dataset = entity(f"dataset:{record.dataset}", "Dataset")
    version = entity(f"version:{hex_id}", "DatasetVersion")
    activity = document.activity(
        f"derivation:{hex_id}", None, record.moment, {"cx:method": record.method}
    )
    agent = document.agent(f"member:{record.agent}")
    document.specializationOf(version, dataset)
    document.wasGeneratedBy(version, activity, record.moment)
    document.wasAssociatedWith(activity, agent)
    document.wasAttributedTo(version, agent)
    for source_id, agreement_id in record.sources:
        source = entity(f"version:{source_id.removeprefix('sha256:')}", "DatasetVersion")
        document.used(activity, source)
        document.wasDerivedFrom(version, source)
        if agreement_id is not None:
            agreement = entity(f"agreement:{agreement_id}", "Agreement", **{"cx:covers": source})
            document.used(activity, agreement)


def to_provjson(records: Sequence[LineageRecord]) -> str:
    """PROV-JSON (W3C Member Submission), readable back with ``prov.read(text, format="json")``."""
    text = lineage_document(records).serialize(format="json", indent=2)
    assert text is not None  # serialize() returns the text when given no destination
    return text


def to_turtle(records: Sequence[LineageRecord]) -> str:
    """PROV-O in Turtle, with the unqualified shortcuts next to the qualified generation."""
    graph = rdflib.Graph()
    graph.parse(
        data=lineage_document(records).serialize(format="rdf", rdf_format="turtle"), format="turtle"
    )
    for prefix, uri in _NAMESPACES.items():
        graph.bind(prefix, uri)
    for record in records:
        version = rdflib.URIRef(VERSION_PREFIX + record.derived)
        activity = rdflib.URIRef(_DERIVATION_PREFIX + record.derived)
        # The prov package writes a timed generation only as prov:qualifiedGeneration; PROV-O's
        # shortcuts make the common queries (what generated this, and when) one triple each.
        graph.add((version, PROV.wasGeneratedBy, activity))
        graph.add((version, PROV.generatedAtTime, rdflib.Literal(record.at, datatype=XSD.dateTime)))
    return graph.serialize(format="turtle")
