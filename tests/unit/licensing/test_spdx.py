"""The compliance report as an SPDX 3.0.1 AI package, validated with the SPDX model bindings."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from spdx_python_model import v3_0_1 as spdx3

from licensing.compliance import ComplianceReport, ManifestItem, TrainingManifest, check
from licensing.errors import LicensingError
from licensing.evaluation import GrantIndex
from licensing.spdx import DatasetRef, spdx_ai_package

from .builders import DAY, T0, V1, V2, V3, digest, grant
from .spdx_check import validate_spdx

NS = "https://exchange.example/spdx/report-1"
CREATED = datetime(2026, 12, 1, 9, 30, 15, 999000, tzinfo=UTC)
FILE_A, DOC_A = digest("a"), digest("doc")
DATASETS = {
    V1: DatasetRef(
        V1, "books", "Books 2026", "acme-corpora", "CC-BY-SA-4.0", "https://x.example/v1"
    ),
    V2: DatasetRef(V2, "news", "News", "newsco", "Newsco Licence 2", None),
    V3: DatasetRef(V3, "wiki", "Wiki", "wikico", None, None),
}


def _report(*, compliant: bool = True) -> ComplianceReport:
    grants = GrantIndex(
        [
            grant("a1", target=V1, commercial=True),
            grant("a2", target=V2, commercial=True),
            grant("pub", assignee=None, target=V2, commercial=True),
            grant("a3", target=V3, commercial=compliant),
        ]
    )
    items = [ManifestItem("version", V1), ManifestItem("file", FILE_A), ManifestItem("version", V3)]
    if not compliant:
        items.append(ManifestItem("document", DOC_A))
    manifest = TrainingManifest("acme-7b", "training", True, T0 + 10 * DAY, "DE", tuple(items))
    resolution = {items[0]: [V1], items[1]: [V2], items[2]: [V3]}
    return check(manifest, member="acme", resolution=resolution, grants=grants)


def _document(report: ComplianceReport | None = None, **changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "datasets": DATASETS,
        "creator": "Corpus Exchange",
        "created": CREATED,
        "namespace": NS,
        **changes,
    }
    return spdx_ai_package(report or _report(), **arguments)


def _one(objects: Any, kind: type) -> Any:
    (found,) = list(objects.foreach_type(kind))
    return found


def test_the_document_is_valid_spdx_3_0_1() -> None:
    document = _document()
    assert document["@context"] == "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
    validate_spdx(document)


def test_the_model_was_trained_on_each_covered_version() -> None:
    report = _report()
    objects = validate_spdx(_document(report))
    model = _one(objects, spdx3.ai_AIPackage)
    assert model.name == "acme-7b"
    assert model.software_primaryPurpose == spdx3.software_SoftwarePurpose.model
    assert report.manifest_sha256 in model.ai_informationAboutTraining
    assert "3 of 3 items covered" in model.ai_informationAboutTraining
    assert model.comment == f"Corpus Exchange compliance report sha256:{report.digest()}"
    trained = [
        r
        for r in objects.foreach_type(spdx3.Relationship)
        if r.relationshipType == spdx3.RelationshipType.trainedOn
    ]
    assert all(r.from_ is model for r in trained)
    versions = sorted(r.to[0].software_packageVersion for r in trained)
    assert versions == sorted([V1, V2, V3])
    comments = {r.to[0].software_packageVersion: r.comment for r in trained}
    assert comments[V2] == "licensed to the model builder by agreement(s) a2"


def test_each_dataset_is_verified_by_its_version_id() -> None:
    objects = validate_spdx(_document())
    packages = {
        p.software_packageVersion: p for p in objects.foreach_type(spdx3.dataset_DatasetPackage)
    }
    assert set(packages) == {V1, V2, V3}
    books = packages[V1]
    assert books.name == "Books 2026"
    assert books.dataset_datasetType == [spdx3.dataset_DatasetType.text]
    assert books.software_downloadLocation == "https://x.example/v1"
    assert books.suppliedBy.name == "acme-corpora"
    (hash_,) = books.verifiedUsing
    assert hash_.algorithm == spdx3.HashAlgorithm.sha256
    assert hash_.hashValue == V1.removeprefix("sha256:")


def test_declared_licences_where_they_are_spdx_expressions() -> None:
    objects = validate_spdx(_document())
    declared = {
        r.from_.software_packageVersion: r.to[0]
        for r in objects.foreach_type(spdx3.Relationship)
        if r.relationshipType == spdx3.RelationshipType.hasDeclaredLicense
    }
    assert set(declared) == {V1}
    assert isinstance(declared[V1], spdx3.simplelicensing_LicenseExpression)
    assert declared[V1].simplelicensing_licenseExpression == "CC-BY-SA-4.0"
    packages = {
        p.software_packageVersion: p for p in objects.foreach_type(spdx3.dataset_DatasetPackage)
    }
    assert packages[V2].comment == "licence (not an SPDX licence expression): Newsco Licence 2"
    assert packages[V3].comment is None


def test_one_licence_element_serves_every_dataset_under_it() -> None:
    datasets = {**DATASETS, V3: DatasetRef(V3, "wiki", "Wiki", "wikico", "CC-BY-SA-4.0", None)}
    objects = validate_spdx(_document(datasets=datasets))
    assert len(list(objects.foreach_type(spdx3.simplelicensing_LicenseExpression))) == 1


def test_the_document_names_its_creator_time_and_root() -> None:
    document = _document()
    objects = validate_spdx(document)
    (info,) = [n for n in document["@graph"] if n["type"] == "CreationInfo"]
    assert info["created"] == "2026-12-01T09:30:15Z"  # SPDX times are whole seconds
    assert info["specVersion"] == "3.0.1"
    spdx_document = _one(objects, spdx3.SpdxDocument)
    assert spdx_document.rootElement == [_one(objects, spdx3.ai_AIPackage)]
    assert spdx_document.creationInfo.createdBy[0].name == "Corpus Exchange"
    assert {e._id for e in spdx_document.element} == {
        n["spdxId"] for n in document["@graph"] if n["type"] not in ("CreationInfo", "SpdxDocument")
    }
    assert all(n["spdxId"].startswith(NS + "/") for n in document["@graph"] if "spdxId" in n)


def test_a_report_not_compliant_lists_only_covered_versions_and_says_so() -> None:
    report = _report(compliant=False)
    assert not report.compliant
    objects = validate_spdx(_document(report))
    versions = {
        p.software_packageVersion for p in objects.foreach_type(spdx3.dataset_DatasetPackage)
    }
    assert versions == {V1, V2}
    text = _one(objects, spdx3.ai_AIPackage).ai_informationAboutTraining
    assert "2 of 4 items covered" in text
    assert "NOT compliant (1 unknown, 1 commercial)" in text


def test_the_same_report_gives_the_same_document() -> None:
    assert _document() == _document()


@pytest.mark.parametrize(
    ("licence", "declared"),
    [
        ("MIT", True),
        ("CC-BY-SA-4.0 OR MIT", True),
        ("(MIT AND Apache-2.0) OR GPL-2.0-or-later WITH Classpath-exception-2.0", True),
        ("LicenseRef-acme-corpus-1", True),
        ("GPL-2.0+", True),
        ("Acme Licence v2", False),
        ("MIT AND", False),
        ("(MIT", False),
        ("MIT OR OR BSD-3-Clause", False),
        ("MIT WITH", False),
        ("MIT and Apache-2.0", False),
        ("   ", False),
    ],
)
def test_only_well_formed_licence_expressions_are_declared(licence: str, declared: bool) -> None:
    datasets = {**DATASETS, V1: DatasetRef(V1, "books", "Books", "acme", licence, None)}
    document = _document(datasets=datasets)
    validate_spdx(document)
    expressions = [
        n["simplelicensing_licenseExpression"]
        for n in document["@graph"]
        if n["type"] == "simplelicensing_LicenseExpression"
    ]
    assert expressions == ([licence] if declared else [])


def test_inputs_that_cannot_make_a_document_are_refused() -> None:
    with pytest.raises(LicensingError, match=f"no dataset reference for the covered version {V1}"):
        _document(datasets={V2: DATASETS[V2], V3: DATASETS[V3]})
    with pytest.raises(LicensingError, match="names"):
        _document(datasets={**DATASETS, V1: DATASETS[V2]})
    with pytest.raises(LicensingError, match="namespace must be an absolute IRI"):
        _document(namespace="exchange spdx")
    with pytest.raises(LicensingError, match="namespace must be an absolute IRI"):
        _document(namespace="https://x.example/doc#frag")
    with pytest.raises(LicensingError, match="timezone-aware"):
        _document(created=datetime(2026, 12, 1))
    with pytest.raises(LicensingError, match="creator"):
        _document(creator=" ")
    with pytest.raises(LicensingError, match="version id"):
        DatasetRef("v1", "books", "Books", "acme", None, None)


# -- the validator has teeth ----------------------------------------------------------------


def _broken(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(_document())
    for node in document["@graph"]:
        change(node)
    return document


@pytest.mark.parametrize(
    "change",
    [
        lambda n: n.update(ai_favouriteColour="blue") if n["type"] == "ai_AIPackage" else None,
        lambda n: n.pop("dataset_datasetType") if n["type"] == "dataset_DatasetPackage" else None,
        lambda n: n.update(relationshipType="trainedWith") if n["type"] == "Relationship" else None,
        lambda n: n.update(to=["_:creationinfo"]) if n["type"] == "Relationship" else None,
        lambda n: (
            n.update(to=["https://nowhere.example/x"]) if n["type"] == "Relationship" else None
        ),
        lambda n: (
            n.update(created="2026-12-01T09:30:15.999Z") if n["type"] == "CreationInfo" else None
        ),
        lambda n: (
            n.update(suppliedBy=n["spdxId"]) if n["type"] == "dataset_DatasetPackage" else None
        ),
        lambda n: n.pop("creationInfo") if n["type"] == "ai_AIPackage" else None,
        lambda n: n.update(type="Element") if n["type"] == "Agent" else None,
    ],
    ids=[
        "unknown-property",
        "missing-required",
        "unknown-relationship-type",
        "reference-of-wrong-class",
        "dangling-reference",
        "fractional-seconds",
        "supplier-not-an-agent",
        "no-creation-info",
        "abstract-class",
    ],
)
def test_the_validator_refuses_broken_documents(change: Any) -> None:
    with pytest.raises((AssertionError, KeyError, TypeError, ValueError, NotImplementedError)):
        validate_spdx(_broken(change))
