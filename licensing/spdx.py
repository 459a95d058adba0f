"""A compliance report as an SPDX 3.0.1 AI package (JSON-LD).

The document describes the model as an ``ai_AIPackage`` that was ``trainedOn`` one
``dataset_DatasetPackage`` per dataset version that covered training data, each verified by its
version id (SHA-256 of the version's canonical manifest) and, where the provider's licence is an
SPDX licence expression, with a ``hasDeclaredLicense`` relationship to a
``simplelicensing_LicenseExpression``. ``docs/evaluation.md`` (section "SPDX") is normative.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ledger.entry import format_time
from licensing.compliance import COVERED, ComplianceReport
from licensing.errors import LicensingError
from licensing.evaluation import is_version_id

SPDX_CONTEXT = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
SPEC_VERSION = "3.0.1"
CREATION_INFO = "_:creationinfo"
TOOL_NAME = "Corpus Exchange (licensing.spdx)"

_NAMESPACE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s#]+$")
_LICENCE_TOKEN = re.compile(r"\s*(\(|\)|[A-Za-z0-9.:-]+\+?)")
_LICENCE_ID = re.compile(r"^(DocumentRef-[A-Za-z0-9.-]+:)?[A-Za-z0-9.-]+\+?$")


@dataclass(frozen=True)
class DatasetRef:
    """What the SPDX document says about one dataset version (the exchange looks it up)."""

    version: str
    dataset: str
    label: str
    provider: str
    licence: str | None
    location: str | None

    def __post_init__(self) -> None:
        if not is_version_id(self.version):
            raise LicensingError(f"a dataset reference needs a version id, got {self.version!r}")
        for name in ("dataset", "label", "provider"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise LicensingError(f"a dataset reference needs its {name}")


def spdx_ai_package(
    report: ComplianceReport,
    *,
    datasets: Mapping[str, DatasetRef],
    creator: str,
    created: datetime,
    namespace: str,
) -> dict[str, Any]:
    """The SPDX 3.0.1 JSON-LD document for ``report``.

    ``datasets`` must describe every covered version; ``namespace`` is an absolute IRI under
    which every element gets its ``spdxId``; ``creator`` names the agent that makes the document.
    """
    ns = _namespace(namespace)
    if not isinstance(creator, str) or not creator.strip():
        raise LicensingError("an SPDX document needs its creator's name")
    if not isinstance(created, datetime) or created.utcoffset() is None:
        raise LicensingError("the creation time must be a timezone-aware datetime")
    covered = _covered(report)
    refs = [_ref(datasets, version) for version in covered]
    builder = _Graph(ns)
    model = builder.element(
        "ai_AIPackage",
        f"{ns}/model",
        name=report.model,
        originatedBy=[builder.organisation(report.member)],
        software_primaryPurpose="model",
        ai_informationAboutTraining=_training(report),
        comment=f"Corpus Exchange compliance report sha256:{report.digest()}",
    )
    packages = [_dataset(builder, ref) for ref in refs]
    relationships = []
    for ref, package in zip(refs, packages, strict=True):
        relationships.append(
            builder.relationship(
                "trainedOn",
                model["spdxId"],
                package["spdxId"],
                comment=_licensed_by(covered[ref.version]),
            )
        )
        licence = _expression(ref.licence)
        if licence is not None:
            relationships.append(
                builder.relationship(
                    "hasDeclaredLicense", package["spdxId"], builder.licence(licence)
                )
            )
    elements = [
        builder.element("Agent", f"{ns}/creator", name=creator),
        builder.element("Tool", f"{ns}/tool", name=TOOL_NAME),
        model,
        *builder.organisations.values(),
        *packages,
        *builder.licences.values(),
        *relationships,
    ]
    document = builder.element(
        "SpdxDocument",
        f"{ns}/document",
        name=f"Training data of {report.model}",
        profileConformance=_profiles(builder),
        rootElement=[model["spdxId"]],
        element=[element["spdxId"] for element in elements],
    )
    creation = {
        "type": "CreationInfo",
        "@id": CREATION_INFO,
        "created": _spdx_time(created),
        "createdBy": [f"{ns}/creator"],
        "createdUsing": [f"{ns}/tool"],
        "specVersion": SPEC_VERSION,
    }
    return {"@context": SPDX_CONTEXT, "@graph": [creation, *elements, document]}


class _Graph:
    """Element factory: one creation info, organisations and licences made once each."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.organisations: dict[str, dict[str, Any]] = {}
        self.licences: dict[str, dict[str, Any]] = {}

    def element(self, kind: str, spdx_id: str, **properties: Any) -> dict[str, Any]:
        return {"type": kind, "spdxId": spdx_id, "creationInfo": CREATION_INFO, **properties}

    def organisation(self, name: str) -> str:
        spdx_id = f"{self.ns}/organization/{quote(name, safe='')}"
        if spdx_id not in self.organisations:
            self.organisations[spdx_id] = self.element("Organization", spdx_id, name=name)
        return spdx_id

    def licence(self, expression: str) -> str:
        if expression not in self.licences:
            self.licences[expression] = self.element(
                "simplelicensing_LicenseExpression",
                f"{self.ns}/licence/{len(self.licences)}",
                simplelicensing_licenseExpression=expression,
            )
        return str(self.licences[expression]["spdxId"])

    def relationship(
        self, kind: str, source: str, target: str, *, comment: str | None = None
    ) -> dict[str, Any]:
        extra = {"comment": comment} if comment else {}
        # One relationship of each kind per dataset version, so the dataset's id names it.
        dataset = source if kind == "hasDeclaredLicense" else target
        spdx_id = f"{self.ns}/relationship/{kind}/{_tail(dataset)}"
        return self.element(
            "Relationship", spdx_id, relationshipType=kind, **{"from": source}, to=[target], **extra
        )


def _dataset(builder: _Graph, ref: DatasetRef) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "name": ref.label,
        "description": f"Dataset {ref.dataset}, version {ref.version}",
        "suppliedBy": builder.organisation(ref.provider),
        "software_packageVersion": ref.version,
        "software_primaryPurpose": "data",
        "dataset_datasetType": ["text"],
        "verifiedUsing": [
            {
                "type": "Hash",
                "algorithm": "sha256",
                "hashValue": _hex(ref.version),
                "comment": "SHA-256 of the version's canonical manifest: its version id",
            }
        ],
    }
    if ref.location is not None:
        properties["software_downloadLocation"] = ref.location
    if ref.licence is not None and _expression(ref.licence) is None:
        properties["comment"] = f"licence (not an SPDX licence expression): {ref.licence}"
    return builder.element(
        "dataset_DatasetPackage", f"{builder.ns}/dataset/{_hex(ref.version)}", **properties
    )


def _covered(report: ComplianceReport) -> dict[str, list[str]]:
    """Covered versions (sorted) and the agreements that cover items of each."""
    found: dict[str, set[str]] = {}
    for verdict in report.verdicts:
        if verdict.status == COVERED and verdict.version is not None:
            found.setdefault(verdict.version, set()).add(verdict.agreement or "")
    return {version: sorted(found[version] - {""}) for version in sorted(found)}


def _ref(datasets: Mapping[str, DatasetRef], version: str) -> DatasetRef:
    ref = datasets.get(version)
    if ref is None:
        raise LicensingError(f"no dataset reference for the covered version {version}")
    if ref.version != version:
        raise LicensingError(f"the dataset reference for {version} names {ref.version}")
    return ref


def _training(report: ComplianceReport) -> str:
    counts = report.counts()
    total = len(report.verdicts)
    use = "commercial" if report.commercial else "non-commercial"
    where = f" in {report.territory}" if report.territory else ""
    text = (
        f"Training data declared in training manifest sha256:{report.manifest_sha256} for "
        f"{report.purpose} ({use}){where} as of {format_time(report.at)}. Corpus Exchange "
        f"compliance check: {counts[COVERED]} of {total} items covered by licence agreements"
    )
    if report.compliant:
        return text + "; compliant."
    others = ", ".join(f"{n} {status}" for status, n in counts.items() if n and status != COVERED)
    return text + f"; NOT compliant ({others}). Only covered dataset versions are listed."


def _licensed_by(agreements: list[str]) -> str:
    return "licensed to the model builder by agreement(s) " + ", ".join(agreements)


def _profiles(builder: _Graph) -> list[str]:
    profiles = ["core", "software", "ai", "dataset"]
    return [*profiles, "simpleLicensing"] if builder.licences else profiles


def _expression(licence: str | None) -> str | None:
    """``licence`` if it is a well-formed SPDX licence expression, else None."""
    if licence is None:
        return None
    tokens = _tokens(licence)
    if tokens is None:
        return None
    position = _parse_expression(tokens, 0)
    return licence.strip() if position == len(tokens) else None


def _tokens(text: str) -> list[str] | None:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _LICENCE_TOKEN.match(text, position)
        if match is None:
            return None
        tokens.append(match.group(1))
        position = match.end()
    return tokens or None


def _parse_expression(tokens: list[str], position: int) -> int | None:
    """expression := term (("AND" | "OR") term)*; returns the position after it, or None."""
    after = _parse_term(tokens, position)
    while after is not None and after < len(tokens) and tokens[after] in ("AND", "OR"):
        after = _parse_term(tokens, after + 1)
    return after


def _parse_term(tokens: list[str], position: int) -> int | None:
    """term := "(" expression ")" | id ["WITH" id]"""
    if position >= len(tokens):
        return None
    if tokens[position] == "(":
        after = _parse_expression(tokens, position + 1)
        if after is None or after >= len(tokens) or tokens[after] != ")":
            return None
        return after + 1
    if not _is_licence_id(tokens[position]):
        return None
    if position + 1 < len(tokens) and tokens[position + 1] == "WITH":
        if position + 2 < len(tokens) and _is_licence_id(tokens[position + 2]):
            return position + 3
        return None
    return position + 1


def _is_licence_id(token: str) -> bool:
    return token not in ("AND", "OR", "WITH") and bool(_LICENCE_ID.fullmatch(token))


def _namespace(namespace: str) -> str:
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise LicensingError(
            f"the namespace must be an absolute IRI without spaces or '#', got {namespace!r}"
        )
    return namespace.rstrip("/")


def _spdx_time(moment: datetime) -> str:
    # SPDX DateTimeStamp: whole seconds, UTC with 'Z'.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hex(version: str) -> str:
    return version.removeprefix("sha256:")


def _tail(spdx_id: str) -> str:
    return spdx_id.rsplit("/", 1)[-1]
