"""Compliance: was a model's training data covered by licences that permit the training?

A model builder declares its training data in a :class:`TrainingManifest` — dataset versions,
files (by SHA-256) and single documents (by SHA-256) — with the purpose, whether the model is
commercial, the date and the territory. The exchange resolves every item to the versions that
contain it; :func:`check` then judges each item with the evaluation engine and returns a
:class:`ComplianceReport`: one :class:`ItemVerdict` per item, in manifest order. Both documents
have one canonical JSON form and a digest; ``docs/evaluation.md`` is normative.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledger.canonical import canonical_bytes
from ledger.entry import format_time, is_member_id, parse_time
from ledger.errors import FormatError as LedgerFormatError
from licensing.errors import FormatError, ManifestError
from licensing.evaluation import (
    DENY_CODES,
    NOT_COVERED,
    Decision,
    GrantIndex,
    Use,
    is_version_id,
)
from licensing.terms import PURPOSES

VERSION, FILE, DOCUMENT = "version", "file", "document"
KINDS: tuple[str, ...] = (VERSION, FILE, DOCUMENT)
COVERED, UNKNOWN = "covered", "unknown"
STATUSES: tuple[str, ...] = (COVERED, UNKNOWN, *DENY_CODES)
"""Every item status, in the order ``counts()`` lists them."""

MAX_ITEMS = 1_000_000
MAX_MODEL = 200
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TERRITORY = re.compile(r"^[A-Z]{2}$")
_MANIFEST_FIELDS = {"model", "purpose", "commercial", "date", "territory", "data"}
_REQUIRED = ("model", "purpose", "commercial", "date", "data")
_MORE_REASONS = 4  # reasons named in a verdict's line (all of a permit's); the rest are counted


@dataclass(frozen=True)
class ManifestItem:
    """One piece of training data: a version id, or the SHA-256 of a file or of a document."""

    kind: str
    value: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ManifestError(f"unknown item kind {self.kind!r}: known are {list(KINDS)}")
        if self.kind == VERSION:
            if not is_version_id(self.value):
                raise ManifestError(
                    f"a version must be 'sha256:' and 64 lowercase hex digits, got {self.value!r}"
                )
        elif not isinstance(self.value, str) or not _HEX64.fullmatch(self.value):
            raise ManifestError(
                f"a {self.kind} is named by its SHA-256: 64 lowercase hex digits, "
                f"got {self.value!r}"
            )

    def to_json(self) -> dict[str, str]:
        return {self.kind: self.value}

    @classmethod
    def from_json(cls, value: object) -> ManifestItem:
        if not isinstance(value, dict) or len(value) != 1:
            raise ManifestError(
                'an item is an object with exactly one of "version", "file" or "document"'
            )
        ((kind, item),) = value.items()
        return cls(kind, item)

    def describe(self) -> str:
        return f"{self.kind} {self.value}"


@dataclass(frozen=True)
class TrainingManifest:
    """What a model was trained on, for which purpose, when and where.

    ``at`` is kept in UTC to the millisecond (the ledger's time form), so that the JSON form
    reads back as the same value.
    """

    model: str
    purpose: str
    commercial: bool
    at: datetime
    territory: str | None
    items: tuple[ManifestItem, ...]
    _digest: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_header(self.model, self.purpose, self.commercial, self.at, self.territory)
        object.__setattr__(self, "at", _millis(self.at))
        object.__setattr__(self, "items", tuple(self.items))
        if not self.items:
            raise ManifestError("'data' must list at least one item")
        if len(self.items) > MAX_ITEMS:
            raise ManifestError(f"'data' lists {len(self.items)} items; at most {MAX_ITEMS}")
        seen: dict[ManifestItem, int] = {}
        for index, item in enumerate(self.items):
            if not isinstance(item, ManifestItem):
                raise ManifestError(f"data[{index}] is not a ManifestItem")
            first = seen.setdefault(item, index)
            if first != index:
                raise ManifestError(f"data[{index}] repeats data[{first}] ({item.describe()})")

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "model": self.model,
            "purpose": self.purpose,
            "commercial": self.commercial,
            "date": format_time(self.at),
        }
        if self.territory is not None:
            value["territory"] = self.territory
        value["data"] = [item.to_json() for item in self.items]
        return value

    @classmethod
    def from_json(cls, value: object) -> TrainingManifest:
        """Parse strictly; raise ``ManifestError`` naming the field or item index and the fault."""
        if not isinstance(value, dict):
            raise ManifestError("a training manifest must be a JSON object")
        unknown = sorted(set(value) - _MANIFEST_FIELDS)
        if unknown:
            raise ManifestError(
                f"the manifest has unknown field(s) {unknown}: allowed are "
                f"{sorted(_MANIFEST_FIELDS)}"
            )
        missing = [name for name in _REQUIRED if name not in value]
        if missing:
            raise ManifestError(f"the manifest lacks {missing}")
        if "territory" in value and value["territory"] is None:
            raise ManifestError("'territory' must be an ISO 3166-1 alpha-2 code (omit it for none)")
        data = value["data"]
        if not isinstance(data, list):
            raise ManifestError("'data' must be a list of items")
        if len(data) > MAX_ITEMS:
            raise ManifestError(f"'data' lists {len(data)} items; at most {MAX_ITEMS}")
        items = []
        for index, item in enumerate(data):
            try:
                items.append(ManifestItem.from_json(item))
            except ManifestError as exc:
                raise ManifestError(f"data[{index}]: {exc}") from None
        return cls(
            value["model"],
            value["purpose"],
            value["commercial"],
            _time(value["date"], ManifestError),
            value.get("territory"),
            tuple(items),
        )

    def digest(self) -> str:
        """SHA-256 (hex) of the RFC 8785 canonical JSON: the identity of this manifest."""
        if not self._digest:  # immutable, so computed once
            digest = hashlib.sha256(canonical_bytes(self.to_json())).hexdigest()
            object.__setattr__(self, "_digest", digest)
        return self._digest


@dataclass(frozen=True)
class ItemVerdict:
    """How one manifest item fares: covered, unknown, or the deny code of its best candidate."""

    item: ManifestItem
    status: str
    version: str | None
    agreement: str | None
    reason: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise FormatError(f"unknown item status {self.status!r}: known are {list(STATUSES)}")
        if (self.status == UNKNOWN) != (self.version is None):
            raise FormatError(f"a verdict names a version unless it is {UNKNOWN!r}")
        if self.version is not None and not is_version_id(self.version):
            raise FormatError(f"a verdict's version must be a version id, got {self.version!r}")
        needs_agreement = self.status not in (UNKNOWN, NOT_COVERED)
        if needs_agreement != (self.agreement is not None):
            raise FormatError(
                f"a {self.status!r} verdict {'needs' if needs_agreement else 'has no'} agreement"
            )
        if not isinstance(self.reason, str) or not self.reason:
            raise FormatError("a verdict needs its reason")

    @classmethod
    def _checked(
        cls, item: ManifestItem, status: str, version: str, agreement: str | None, reason: str
    ) -> ItemVerdict:
        """A verdict from values the engine has already checked (skips ``__post_init__``)."""
        verdict = object.__new__(cls)
        verdict.__dict__.update(
            item=item, status=status, version=version, agreement=agreement, reason=reason
        )
        return verdict

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.item.to_json(),
            "status": self.status,
            "version": self.version,
            "agreement": self.agreement,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, value: object) -> ItemVerdict:
        fields = {"item", "status", "version", "agreement", "reason"}
        if not isinstance(value, dict) or set(value) != fields:
            raise FormatError(f"a verdict is an object with exactly {sorted(fields)}")
        try:
            item = ManifestItem.from_json(value["item"])
        except ManifestError as exc:
            raise FormatError(str(exc)) from None
        return cls(item, value["status"], value["version"], value["agreement"], value["reason"])


@dataclass(frozen=True)
class ComplianceReport:
    """The verdict on every item of one manifest, for one member, in manifest order."""

    manifest_sha256: str
    member: str
    model: str
    purpose: str
    commercial: bool
    at: datetime
    territory: str | None
    verdicts: tuple[ItemVerdict, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.manifest_sha256, str) or not _HEX64.fullmatch(self.manifest_sha256):
            raise FormatError("manifest_sha256 must be 64 lowercase hex digits")
        if not is_member_id(self.member):
            raise FormatError(f"a report needs a member id, got {self.member!r}")
        try:
            _check_header(self.model, self.purpose, self.commercial, self.at, self.territory)
        except ManifestError as exc:
            raise FormatError(str(exc)) from None
        object.__setattr__(self, "at", _millis(self.at))
        object.__setattr__(self, "verdicts", tuple(self.verdicts))

    @property
    def compliant(self) -> bool:
        """True when every item is covered."""
        return all(v.status == COVERED for v in self.verdicts)

    @property
    def agreements(self) -> tuple[str, ...]:
        """The agreements that cover at least one item, sorted."""
        return tuple(
            sorted({v.agreement for v in self.verdicts if v.status == COVERED and v.agreement})
        )

    def counts(self) -> dict[str, int]:
        """Items per status, every status listed (zero included), in ``STATUSES`` order."""
        counts = dict.fromkeys(STATUSES, 0)
        for verdict in self.verdicts:
            counts[verdict.status] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "manifest_sha256": self.manifest_sha256,
            "member": self.member,
            "model": self.model,
            "purpose": self.purpose,
            "commercial": self.commercial,
            "date": format_time(self.at),
        }
        if self.territory is not None:
            value["territory"] = self.territory
        value["compliant"] = self.compliant
        value["counts"] = self.counts()
        value["agreements"] = list(self.agreements)
        value["items"] = [verdict.to_json() for verdict in self.verdicts]
        return value

    @classmethod
    def from_json(cls, value: object) -> ComplianceReport:
        """Parse strictly; the summary fields must agree with the items (``FormatError``)."""
        fields = {
            "manifest_sha256",
            "member",
            "model",
            "purpose",
            "commercial",
            "date",
            "territory",
            "compliant",
            "counts",
            "agreements",
            "items",
        }
        if not isinstance(value, dict):
            raise FormatError("a compliance report must be a JSON object")
        if set(value) - fields or (fields - {"territory"}) - set(value):
            raise FormatError(f"a compliance report has exactly the fields {sorted(fields)}")
        if "territory" in value and value["territory"] is None:
            raise FormatError("'territory' is omitted when there is none, never null")
        items = value["items"]
        if not isinstance(items, list):
            raise FormatError("'items' must be a list of verdicts")
        verdicts = []
        for index, item in enumerate(items):
            try:
                verdicts.append(ItemVerdict.from_json(item))
            except FormatError as exc:
                raise FormatError(f"items[{index}]: {exc}") from None
        report = cls(
            value["manifest_sha256"],
            value["member"],
            value["model"],
            value["purpose"],
            value["commercial"],
            _time(value["date"], FormatError),
            value.get("territory"),
            tuple(verdicts),
        )
        for name, derived in (
            ("compliant", report.compliant),
            ("counts", report.counts()),
            ("agreements", list(report.agreements)),
        ):
            if value[name] != derived:
                raise FormatError(f"'{name}' says {value[name]!r} but the items give {derived!r}")
        return report

    def digest(self) -> str:
        """SHA-256 (hex) of the RFC 8785 canonical JSON of the report."""
        return hashlib.sha256(canonical_bytes(self.to_json())).hexdigest()


def check(
    manifest: TrainingManifest,
    *,
    member: str,
    resolution: Mapping[ManifestItem, Sequence[str]],
    grants: GrantIndex,
) -> ComplianceReport:
    """Judge every item of ``manifest`` for ``member``.

    ``resolution`` maps an item to the ids of the versions that contain it (a missing or empty
    entry: no version on the exchange holds it). An item is covered when one of its versions is
    covered by a grant permitting the manifest's use; the first such version (in id order) is
    named. Otherwise the verdict is the most specific denial among its versions.
    """
    question = Use(
        member,
        _ANY_VERSION,
        manifest.purpose,
        manifest.commercial,
        manifest.territory,
        manifest.at,
    )
    judge = _Judge(question, grants)
    verdicts = tuple(judge.verdict(item, resolution.get(item, ())) for item in manifest.items)
    return ComplianceReport(
        manifest.digest(),
        member,
        manifest.model,
        manifest.purpose,
        manifest.commercial,
        manifest.at,
        manifest.territory,
        verdicts,
    )


_ANY_VERSION = "sha256:" + "0" * 64  # a placeholder: each version asked about replaces it
_Outcome = tuple[int, str, str, str | None, str]  # rank, version, status, agreement, line


class _Judge:
    """One decision per version, however many items it holds."""

    def __init__(self, question: Use, grants: GrantIndex) -> None:
        self.question = question
        self.grants = grants
        self.outcomes: dict[str, _Outcome] = {}

    def outcome(self, version: str) -> _Outcome:
        found = self.outcomes.get(version)
        if found is None:
            decision = self.grants.decide(self.question.for_version(version))
            if decision.permitted:
                found = (-1, version, COVERED, decision.agreement, _line(version, decision))
            else:
                top = decision.reasons[0]
                rank = DENY_CODES.index(top.code)
                found = (rank, version, top.code, top.agreement, _line(version, decision))
            self.outcomes[version] = found
        return found

    def verdict(self, item: ManifestItem, versions: Sequence[str]) -> ItemVerdict:
        if not versions:
            return ItemVerdict(item, UNKNOWN, None, None, _UNKNOWN_REASONS[item.kind])
        if len(versions) == 1:
            best = self.outcome(versions[0])
        else:
            # Covered by the first covering version in id order; otherwise the most specific
            # denial (then the first version) says most about the item.
            best = min(self.outcome(version) for version in set(versions))
        _, version, status, agreement, line = best
        return ItemVerdict._checked(item, status, version, agreement, line)


_UNKNOWN_REASONS = {
    VERSION: "this version is not on the exchange",
    FILE: "no version on the exchange holds this file",
    DOCUMENT: "no version on the exchange holds this document",
}


def _line(version: str, decision: Decision) -> str:
    messages = [reason.message for reason in decision.reasons[:_MORE_REASONS]]
    rest = len(decision.reasons) - len(messages)
    if rest:
        messages.append(f"and {rest} more")
    return f"version {version}: " + "; ".join(messages)


def _check_header(
    model: object, purpose: object, commercial: object, at: object, territory: object
) -> None:
    if not isinstance(model, str) or not model.strip() or len(model) > MAX_MODEL:
        raise ManifestError(f"'model' must name the model in 1-{MAX_MODEL} characters")
    if not model.isprintable():
        raise ManifestError("'model' must be one line of printable text")
    if purpose not in PURPOSES:
        raise ManifestError(f"unknown purpose {purpose!r}: known purposes are {list(PURPOSES)}")
    if not isinstance(commercial, bool):
        raise ManifestError("'commercial' must be true or false")
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise ManifestError("the date must be a timezone-aware time")
    if territory is not None and (
        not isinstance(territory, str) or not _TERRITORY.fullmatch(territory)
    ):
        raise ManifestError(
            f"'territory' must be an ISO 3166-1 alpha-2 code like 'DE' (omit it for none), "
            f"got {territory!r}"
        )


def _time(text: object, error: type[Exception]) -> datetime:
    try:
        return parse_time(text, what="'date'")  # type: ignore[arg-type]
    except LedgerFormatError as exc:
        raise error(str(exc)) from None


def _millis(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)
