"""PROV lineage: the Turtle parses back with rdflib and answers the derivation questions; the
PROV-JSON reads back with prov.read into the same document; bad records are refused."""

from __future__ import annotations

from typing import Any

import prov
import pytest
import rdflib
from rdflib.namespace import PROV, RDF

from licensing.errors import FormatError
from licensing.prov import LineageRecord, lineage_document, to_provjson, to_turtle

A, B, C, D = ("sha256:" + c * 64 for c in "abcd")
CX = rdflib.Namespace("https://corpus-exchange.org/ns#")
RECORDS = [
    LineageRecord(
        derived=C,
        dataset="merged-corpus",
        method="merged",
        agent="acme",
        at="2026-01-31T12:00:00.123Z",
        sources=((A, "agr-1"), (B, None)),
    ),
    LineageRecord(
        derived=D,
        dataset="clean-corpus",
        method="deduplicated",
        agent="lab",
        at="2026-02-01T08:30:00.000Z",
        sources=((C, "agr-2"),),
    ),
]


def version(version_id: str) -> rdflib.URIRef:
    return rdflib.URIRef("urn:corpusx:version:" + version_id)


@pytest.fixture(scope="module")
def graph() -> rdflib.Graph:
    parsed = rdflib.Graph()
    parsed.parse(data=to_turtle(RECORDS), format="turtle")
    return parsed


def test_derivation_edges(graph: rdflib.Graph) -> None:
    edges = {
        (str(row.derived), str(row.source))
        for row in graph.query(
            "SELECT ?derived ?source WHERE { ?derived prov:wasDerivedFrom ?source }",
            initNs={"prov": PROV},
        )  # type: ignore[union-attr]
    }
    assert edges == {
        (str(version(C)), str(version(A))),
        (str(version(C)), str(version(B))),
        (str(version(D)), str(version(C))),
    }


def test_generation_time_activity_agent_and_agreements(graph: rdflib.Graph) -> None:
    activity = rdflib.URIRef("urn:corpusx:derivation:" + C)
    assert (version(C), PROV.wasGeneratedBy, activity) in graph
    times = list(graph.objects(version(C), PROV.generatedAtTime))
    assert [t.toPython().isoformat() for t in times] == ["2026-01-31T12:00:00.123000+00:00"]  # type: ignore[union-attr]
    assert (activity, RDF.type, PROV.Activity) in graph
    assert (activity, CX.method, rdflib.Literal("merged")) in graph
    acme = rdflib.URIRef("urn:corpusx:member:acme")
    assert (activity, PROV.wasAssociatedWith, acme) in graph
    assert (version(C), PROV.wasAttributedTo, acme) in graph
    used = set(graph.objects(activity, PROV.used))
    agreement = rdflib.URIRef("urn:corpusx:agreement:agr-1")
    assert used == {version(A), version(B), agreement}
    assert (agreement, CX.covers, version(A)) in graph
    assert (agreement, RDF.type, CX.Agreement) in graph
    dataset = rdflib.URIRef("urn:corpusx:dataset:merged-corpus")
    assert (version(C), PROV.specializationOf, dataset) in graph


def test_a_version_both_derived_and_source_is_one_entity(graph: rdflib.Graph) -> None:
    assert len(set(graph.subjects(RDF.type, CX.DatasetVersion))) == 4
    document = lineage_document(RECORDS)
    entities = [r for r in document.get_records() if r.get_type().localpart == "Entity"]
    assert len(entities) == 4 + 2 + 2  # versions, datasets, agreements


def test_provjson_round_trip() -> None:
    text = to_provjson(RECORDS)
    assert prov.read(text, format="json") == lineage_document(RECORDS)
    assert '"cx:method": "deduplicated"' in text


def _record(**change: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "derived": C,
        "dataset": "merged-corpus",
        "method": "filtered",
        "agent": "acme",
        "at": "2026-01-31T12:00:00.123Z",
        "sources": ((A, None),),
    }
    return fields | change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"derived": "abc"}, "a derived version id is 'sha256:<64 hex>'"),
        ({"dataset": "Not A Slug"}, "is not a dataset slug"),
        ({"method": " "}, "needs a method"),
        ({"method": "x" * 101}, "at most 100 characters"),
        ({"agent": "Acme Inc"}, "is not a member id"),
        ({"at": "2026-01-31T12:00:00Z"}, "RFC 3339 UTC with milliseconds"),
        ({"sources": ()}, "is derived from no source"),
        ({"sources": (A,)}, "sources are (version id, agreement id or None) pairs"),
        ({"sources": (("abc", None),)}, "a source is (version id, agreement id or None)"),
        ({"sources": ((A, "bad id!"),)}, "is not an agreement id"),
        ({"sources": ((C, None),)}, "cannot be derived from itself"),
        ({"sources": ((A, None), (A, "agr-1"))}, "names the source"),
    ],
)
def test_bad_records_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(FormatError) as raised:
        LineageRecord(**_record(**change))
    assert message in str(raised.value)


def test_a_version_is_derived_once() -> None:
    with pytest.raises(FormatError, match="has two lineage records"):
        lineage_document([RECORDS[0], RECORDS[0]])
