"""The IRIs and URNs that name things of the exchange in ODRL and PROV documents.

One place for both exports, so that an offer's target in ODRL and a version in a PROV lineage are
the same IRI:

    version    sha256:<64 hex>   ->  urn:corpusx:version:sha256:<64 hex>
    dataset    <slug>            ->  urn:corpusx:dataset:<slug>
    member     <member id>       ->  urn:corpusx:member:<member id>
    offer      <id>              ->  urn:corpusx:offer:<id>
    agreement  <id>              ->  urn:corpusx:agreement:<id>

Project terms (purposes, the share-alike duty, the credit unit, ...) live in the namespace
``https://corpus-exchange.org/ns#``.
"""

from __future__ import annotations

import re

from ledger.entry import is_member_id
from licensing.errors import FormatError

PROJECT_NS = "https://corpus-exchange.org/ns#"
ODRL_NS = "http://www.w3.org/ns/odrl/2/"
XSD_NS = "http://www.w3.org/2001/XMLSchema#"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
CC_NS = "http://creativecommons.org/ns#"

URN_PREFIX = "urn:corpusx:"
VERSION_PREFIX = URN_PREFIX + "version:"
DATASET_PREFIX = URN_PREFIX + "dataset:"
MEMBER_PREFIX = URN_PREFIX + "member:"
OFFER_PREFIX = URN_PREFIX + "offer:"
AGREEMENT_PREFIX = URN_PREFIX + "agreement:"

_VERSION_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
# The same form as catalog.models.SLUG_PATTERN (licensing does not import catalog).
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_LOCAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
# Exactly milliseconds, as in ledger entries, so that times compare correctly as strings.
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_ABSOLUTE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+$")


def is_version_id(value: object) -> bool:
    return isinstance(value, str) and bool(_VERSION_ID.fullmatch(value))


def is_slug(value: object) -> bool:
    return isinstance(value, str) and bool(_SLUG.fullmatch(value))


def is_local_id(value: object) -> bool:
    """An offer or agreement id: letters, digits and ``._:-``, at most 128 characters."""
    return isinstance(value, str) and bool(_LOCAL_ID.fullmatch(value))


def is_timestamp(value: object) -> bool:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-01-31T12:00:00.000Z``."""
    return isinstance(value, str) and bool(_TIMESTAMP.fullmatch(value))


def is_absolute_iri(value: object) -> bool:
    return isinstance(value, str) and bool(_ABSOLUTE_IRI.fullmatch(value))


def target_iri(target: str) -> str:
    """The IRI of a version id or a dataset slug."""
    if is_version_id(target):
        return VERSION_PREFIX + target
    if is_slug(target):
        return DATASET_PREFIX + target
    raise FormatError(
        f"a target is a version id 'sha256:<64 hex>' or a dataset slug, not {target!r}"
    )


def target_from_iri(iri: str) -> str:
    """The version id or dataset slug that ``iri`` names."""
    for prefix, valid in ((VERSION_PREFIX, is_version_id), (DATASET_PREFIX, is_slug)):
        if iri.startswith(prefix) and valid(iri[len(prefix) :]):
            return iri[len(prefix) :]
    raise FormatError(
        f"unsupported target {iri!r}: targets are {VERSION_PREFIX}sha256:<64 hex> "
        f"or {DATASET_PREFIX}<slug>"
    )


def member_iri(member: str) -> str:
    if not is_member_id(member):
        raise FormatError(f"{member!r} is not a member id")
    return MEMBER_PREFIX + member


def member_from_iri(iri: str) -> str:
    member = iri[len(MEMBER_PREFIX) :]
    if not iri.startswith(MEMBER_PREFIX) or not is_member_id(member):
        raise FormatError(f"unsupported party {iri!r}: parties are {MEMBER_PREFIX}<member id>")
    return member


def agreement_iri(agreement: str) -> str:
    if not is_local_id(agreement):
        raise FormatError(f"{agreement!r} is not an agreement id")
    return AGREEMENT_PREFIX + agreement


def project(term: str) -> str:
    """The project IRI of ``term``, e.g. ``project("training")``."""
    return PROJECT_NS + term


def odrl(term: str) -> str:
    return ODRL_NS + term


def xsd(term: str) -> str:
    return XSD_NS + term
