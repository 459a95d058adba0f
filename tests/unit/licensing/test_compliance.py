"""Training manifests (strict parsing) and compliance reports over resolved items."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ledger.canonical import canonical_bytes
from licensing.compliance import (
    MAX_ITEMS,
    STATUSES,
    ComplianceReport,
    ItemVerdict,
    ManifestItem,
    TrainingManifest,
    check,
)
from licensing.errors import FormatError, ManifestError
from licensing.evaluation import GrantIndex

from .builders import DAY, MS, T0, V1, V2, V3, digest, grant, version

FILE_A, FILE_B, DOC_A = digest("file a"), digest("file b"), digest("doc a")
EXAMPLE: dict[str, Any] = {
    "model": "acme-7b",
    "purpose": "training",
    "commercial": True,
    "date": "2026-11-30T00:00:00.000Z",
    "territory": "DE",
    "data": [{"version": V1}, {"file": FILE_A}, {"document": DOC_A}],
}


def manifest(*items: ManifestItem, **fields: Any) -> TrainingManifest:
    value = {
        "model": "acme-7b",
        "purpose": "training",
        "commercial": False,
        "at": T0 + 10 * DAY,
        "territory": None,
        **fields,
    }
    return TrainingManifest(items=items, **value)


def item(kind: str, value: str) -> ManifestItem:
    return ManifestItem(kind, value)


# -- the manifest ---------------------------------------------------------------------------


def test_the_example_manifest_reads_and_writes_back_the_same() -> None:
    parsed = TrainingManifest.from_json(EXAMPLE)
    assert parsed.model == "acme-7b"
    assert parsed.commercial is True
    assert parsed.at == datetime(2026, 11, 30, tzinfo=UTC)
    assert parsed.territory == "DE"
    assert parsed.items == (item("version", V1), item("file", FILE_A), item("document", DOC_A))
    assert parsed.to_json() == EXAMPLE
    assert parsed.digest() == hashlib.sha256(canonical_bytes(EXAMPLE)).hexdigest()
    assert TrainingManifest.from_json(parsed.to_json()) == parsed


def test_territory_is_optional_and_omitted_when_absent() -> None:
    value = {k: v for k, v in EXAMPLE.items() if k != "territory"}
    parsed = TrainingManifest.from_json(value)
    assert parsed.territory is None
    assert "territory" not in parsed.to_json()


def test_the_time_is_kept_in_utc_to_the_millisecond() -> None:
    local = datetime(2026, 11, 30, 2, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    m = manifest(item("version", V1), at=local)
    assert m.at == datetime(2026, 11, 30, 0, 0, 0, 123000, tzinfo=UTC)
    assert m.to_json()["date"] == "2026-11-30T00:00:00.123Z"
    assert TrainingManifest.from_json(m.to_json()) == m


def _with(**changes: Any) -> dict[str, Any]:
    value = copy.deepcopy(EXAMPLE)
    for key, new in changes.items():
        if new is None:
            value.pop(key)
        else:
            value[key] = new
    return value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "must be a JSON object"),
        (_with(seed=1), r"unknown field\(s\) \['seed'\]"),
        (_with(model=None, date=None), r"lacks \['model', 'date'\]"),
        (_with(model=""), "'model' must name the model"),
        (_with(model="x" * 201), "'model' must name the model in 1-200 characters"),
        (_with(model=7), "'model' must name the model"),
        (_with(model="two\nlines"), "one line of printable text"),
        (_with(purpose="inference"), "unknown purpose 'inference'"),
        (_with(commercial="yes"), "'commercial' must be true or false"),
        (_with(date="2026-11-30"), "'date' must be RFC 3339 UTC with milliseconds"),
        (_with(date="2026-11-30T00:00:00Z"), "'date' must be RFC 3339 UTC with milliseconds"),
        (_with(date="2026-02-30T00:00:00.000Z"), "not a real date"),
        (_with(date=20261130), "'date' must be RFC 3339"),
        (_with(territory="de"), "'territory' must be an ISO 3166-1 alpha-2 code"),
        (_with(territory="DEU"), "'territory' must be an ISO 3166-1 alpha-2 code"),
        ({**EXAMPLE, "territory": None}, "omit it for none"),
        (_with(data={"version": V1}), "'data' must be a list of items"),
        (_with(data=[]), "'data' must list at least one item"),
    ],
)
def test_a_malformed_manifest_is_refused(value: object, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        TrainingManifest.from_json(value)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not an object", 'exactly one of "version", "file" or "document"'),
        ({}, 'exactly one of "version", "file" or "document"'),
        ({"file": FILE_A, "document": DOC_A}, "exactly one of"),
        ({"dataset": "books"}, "unknown item kind 'dataset'"),
        ({"file": FILE_A.upper()}, "64 lowercase hex digits"),
        ({"file": FILE_A[:-1]}, "64 lowercase hex digits"),
        ({"document": "g" * 64}, "64 lowercase hex digits"),
        ({"file": 12}, "64 lowercase hex digits"),
        ({"version": FILE_A}, "a version must be 'sha256:' and 64 lowercase hex digits"),
        ({"version": V1.upper()}, "a version must be 'sha256:'"),
    ],
)
def test_a_malformed_item_is_refused_naming_its_index(bad: object, message: str) -> None:
    value = _with(data=[{"version": V1}, {"file": FILE_B}, bad])
    with pytest.raises(ManifestError, match=message) as caught:
        TrainingManifest.from_json(value)
    assert str(caught.value).startswith("data[2]: ")


def test_a_repeated_item_is_refused_naming_both_indices() -> None:
    value = _with(data=[{"file": FILE_A}, {"version": V1}, {"file": FILE_A}])
    with pytest.raises(ManifestError) as caught:
        TrainingManifest.from_json(value)
    assert str(caught.value) == f"data[2] repeats data[0] (file {FILE_A})"


def test_the_same_hash_as_file_and_as_document_are_two_items() -> None:
    parsed = TrainingManifest.from_json(_with(data=[{"file": FILE_A}, {"document": FILE_A}]))
    assert len(parsed.items) == 2


def test_more_than_a_million_items_is_refused_before_reading_them() -> None:
    same = {"file": FILE_A}
    with pytest.raises(ManifestError, match=f"lists {MAX_ITEMS + 1} items; at most {MAX_ITEMS}"):
        TrainingManifest.from_json(_with(data=[same] * (MAX_ITEMS + 1)))


def test_constructing_a_manifest_checks_it_too() -> None:
    with pytest.raises(ManifestError, match="at least one item"):
        manifest()
    with pytest.raises(ManifestError, match="timezone-aware"):
        manifest(item("version", V1), at=datetime(2026, 1, 1))
    with pytest.raises(ManifestError, match=r"data\[1\] repeats data\[0\]"):
        manifest(item("version", V1), item("version", V1))


# -- checking -------------------------------------------------------------------------------


def test_items_are_judged_through_the_versions_that_hold_them() -> None:
    grants = GrantIndex(
        [
            grant("a1", target=V1),
            grant("a2", target=V2, purposes={"research"}),
            grant("pub", assignee=None, target=V3),
        ]
    )
    m = manifest(
        item("version", V1),
        item("file", FILE_A),  # in V2 (purpose denied) and V3 (public licence)
        item("file", FILE_B),  # only in V2
        item("document", DOC_A),  # nowhere
        item("version", version(99)),  # not on the exchange
    )
    resolution = {
        item("version", V1): [V1],
        item("file", FILE_A): [V3, V2],
        item("file", FILE_B): [V2],
        item("version", version(99)): [],
    }
    report = check(m, member="acme", resolution=resolution, grants=grants)
    assert [(v.status, v.version, v.agreement) for v in report.verdicts] == [
        ("covered", V1, "a1"),
        ("covered", V3, "pub"),
        ("purpose", V2, "a2"),
        ("unknown", None, None),
        ("unknown", None, None),
    ]
    assert report.verdicts[2].reason == (
        f"version {V2}: agreement a2 permits use for research, not training"
    )
    assert report.verdicts[3].reason == "no version on the exchange holds this document"
    assert report.verdicts[4].reason == "this version is not on the exchange"
    assert not report.compliant
    assert report.agreements == ("a1", "pub")
    assert report.counts() == {
        **dict.fromkeys(STATUSES, 0),
        "covered": 2,
        "purpose": 1,
        "unknown": 2,
    }
    assert report.manifest_sha256 == m.digest()
    assert (report.member, report.model, report.at) == ("acme", "acme-7b", m.at)


def test_a_manifest_wholly_covered_is_compliant() -> None:
    grants = GrantIndex([grant("a1", target=V1), grant("a2", target=V2)])
    m = manifest(item("version", V1), item("file", FILE_A))
    report = check(
        m,
        member="acme",
        resolution={item("version", V1): [V1], item("file", FILE_A): [V2]},
        grants=grants,
    )
    assert report.compliant
    assert report.agreements == ("a1", "a2")
    assert report.verdicts[0].reason.startswith(f"version {V1}: agreement a1 is in force from")


def test_the_first_covering_version_in_id_order_is_named() -> None:
    low, high = sorted([V1, V2])
    grants = GrantIndex([grant("a-low", target=low), grant("a-high", target=high)])
    m = manifest(item("file", FILE_A))
    report = check(
        m, member="acme", resolution={item("file", FILE_A): [high, low, high]}, grants=grants
    )
    assert (report.verdicts[0].version, report.verdicts[0].agreement) == (low, "a-low")


def test_of_several_denials_the_most_specific_is_reported() -> None:
    grants = GrantIndex(
        [
            grant("expired", target=V1, valid_until=T0 + DAY),
            grant("abroad", target=V2, territories={"FR"}),
        ]
    )
    m = manifest(item("file", FILE_A), item("file", FILE_B), territory="DE")
    resolution = {item("file", FILE_A): [V1, V2, V3], item("file", FILE_B): [V3]}
    report = check(m, member="acme", resolution=resolution, grants=grants)
    assert [(v.status, v.version, v.agreement) for v in report.verdicts] == [
        ("territory", V2, "abroad"),
        ("not_covered", V3, None),
    ]


def test_the_question_is_asked_at_the_manifests_date() -> None:
    revoked = GrantIndex(
        [grant("a1", target=V1, revoked_at=T0 + 20 * DAY, revocation_reason="fraud")]
    )
    resolution = {item("version", V1): [V1]}
    before = check(
        manifest(item("version", V1), at=T0 + 20 * DAY - MS),
        member="acme",
        resolution=resolution,
        grants=revoked,
    )
    assert before.compliant
    after = check(
        manifest(item("version", V1), at=T0 + 20 * DAY),
        member="acme",
        resolution=resolution,
        grants=revoked,
    )
    assert after.verdicts[0].status == "revoked"
    assert after.verdicts[0].reason.endswith("was revoked at 2026-01-21T00:00:00.000Z: fraud")


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"commercial": True}, "commercial"),
        ({"purpose": "fine-tuning"}, "purpose"),
        ({"territory": None}, "territory"),
        ({"at": T0 - MS}, "not_yet_valid"),
        ({"at": T0 + 30 * DAY}, "expired"),
    ],
)
def test_each_deny_code_becomes_the_items_status(fields: dict[str, Any], status: str) -> None:
    grants = GrantIndex(
        [
            grant(
                "a1",
                target=V1,
                purposes={"training"},
                territories={"DE"},
                valid_until=T0 + 30 * DAY,
            )
        ]
    )
    m = manifest(item("version", V1), **{"territory": "DE", **fields})
    report = check(m, member="acme", resolution={item("version", V1): [V1]}, grants=grants)
    assert report.verdicts[0].status == status
    assert report.verdicts[0].agreement == "a1"


def test_another_members_agreements_cover_nothing() -> None:
    grants = GrantIndex([grant("a1", target=V1)])
    report = check(
        manifest(item("version", V1)),
        member="globex",
        resolution={item("version", V1): [V1]},
        grants=grants,
    )
    assert report.verdicts[0].status == "not_covered"
    assert report.agreements == ()


# -- the report as JSON ---------------------------------------------------------------------


def _report() -> ComplianceReport:
    grants = GrantIndex([grant("a1", target=V1), grant("a2", target=V2, valid_until=T0 + DAY)])
    m = manifest(item("version", V1), item("file", FILE_A), item("document", DOC_A), territory="DE")
    return check(
        m,
        member="acme",
        resolution={item("version", V1): [V1], item("file", FILE_A): [V2]},
        grants=grants,
    )


def test_a_report_reads_back_as_itself() -> None:
    report = _report()
    value = report.to_json()
    assert list(value) == [
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
    ]
    assert value["items"][1] == {
        "item": {"file": FILE_A},
        "status": "expired",
        "version": V2,
        "agreement": "a2",
        "reason": f"version {V2}: agreement a2 expired at 2026-01-02T00:00:00.000Z",
    }
    assert ComplianceReport.from_json(value) == report
    assert report.digest() == hashlib.sha256(canonical_bytes(value)).hexdigest()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v: v.update(compliant=True), "'compliant' says True but the items give False"),
        (lambda v: v["counts"].update(covered=3), "'counts' says"),
        (lambda v: v.update(agreements=["a1", "a2"]), "'agreements' says"),
        (lambda v: v.update(extra=1), "exactly the fields"),
        (lambda v: v.pop("items"), "exactly the fields"),
        (lambda v: v.update(manifest_sha256="00"), "manifest_sha256 must be 64 lowercase hex"),
        (lambda v: v.update(date="yesterday"), "'date' must be RFC 3339"),
        (lambda v: v.update(territory=None), "omitted when there is none"),
        (lambda v: v["items"][0].update(status="fine"), r"items\[0\]: unknown item status 'fine'"),
        (
            lambda v: v["items"][2].update(version=V1),
            r"items\[2\]: a verdict names a version unless",
        ),
        (lambda v: v["items"][0].update(agreement=None), r"items\[0\]: a 'covered' verdict needs"),
        (lambda v: v["items"][0].pop("reason"), r"items\[0\]: a verdict is an object with exactly"),
        (lambda v: v["items"][0].update(item={"file": "xyz"}), r"items\[0\]: a file is named by"),
    ],
)
def test_a_malformed_or_inconsistent_report_is_refused(change: Any, message: str) -> None:
    value = _report().to_json()
    change(value)
    with pytest.raises(FormatError, match=message):
        ComplianceReport.from_json(value)


def test_a_verdict_keeps_its_invariants() -> None:
    with pytest.raises(FormatError, match="'not_covered' verdict has no agreement"):
        ItemVerdict(item("version", V1), "not_covered", V1, "a1", "x")
    with pytest.raises(FormatError, match="needs its reason"):
        ItemVerdict(item("version", V1), "covered", V1, "a1", "")
