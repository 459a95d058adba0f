"""ODRL 2.2 JSON-LD: the export expands to the IRIs it should, loses no key, and reads back exactly;
hand-written ODRL of the same shape is accepted and anything else refused with a clear error."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from pyld import jsonld

from licensing.errors import FormatError, TermsError
from licensing.iris import ODRL_NS, PROJECT_NS, RDF_NS, XSD_NS
from licensing.odrl import (
    CONTEXT_URL,
    PROJECT_CONTEXT,
    TERRITORY_PREFIX,
    Policy,
    document_loader,
    expand,
    from_jsonld,
    odrl_context,
    to_jsonld,
)
from licensing.terms import PURPOSES, Price, Terms

from .strategies import policies

VERSION = "sha256:" + "ab" * 32
FULL_TERMS = Terms(
    purposes=frozenset({"training", "evaluation"}),
    derivation=True,
    territories=frozenset({"DE", "FR"}),
    duration_days=365,
    attribution=("(c) Acme Corpora",),
    share_alike=True,
    licence="CC-BY-SA-4.0",
)
OFFER = Policy(
    kind="Offer",
    uid="urn:corpusx:offer:o-1",
    target=VERSION,
    terms=FULL_TERMS,
    assigner="acme",
    price=Price(100),
    valid_from="2026-01-31T12:00:00.000Z",
    valid_until="2027-01-31T12:00:00.000Z",
)
URNS = tuple(f"urn:corpusx:{kind}:" for kind in ("version", "dataset", "member", "offer"))
URNS += ("urn:corpusx:agreement:",)
# Every IRI the export may expand to: ODRL's, the project's, the three rdf/xsd terms it uses
# deliberately, ISO 3166 territory IRIs and the exchange's URNs.
ALLOWED_PREFIXES = (ODRL_NS, PROJECT_NS, TERRITORY_PREFIX, *URNS)
ALLOWED_EXACT = {RDF_NS + "value", XSD_NS + "duration", XSD_NS + "dateTime", XSD_NS + "decimal"}


def _iris(node: Any) -> Iterator[str]:
    """Every IRI in an expanded document: property keys, @id and @type values."""
    if isinstance(node, list):
        for item in node:
            yield from _iris(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("@id", "@type"):
                yield from value if isinstance(value, list) else [value]
            elif key != "@value":
                if not key.startswith("@"):
                    yield key
                yield from _iris(value)


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _keys(item)
    elif isinstance(node, dict) and "@value" not in node:  # a value object is one value
        for key, value in node.items():
            if key != "@context":
                yield key
                yield from _keys(value)


def _resolve(key: str, terms: dict[str, Any]) -> str:
    """A compact key's IRI (or keyword) under the ODRL context plus the project context."""
    if key.startswith("@"):
        return key
    if key in terms:
        definition = terms[key]
        target = definition["@id"] if isinstance(definition, dict) else definition
        return _resolve(target, terms) if target != key else target
    prefix, _, local = key.partition(":")
    return str(terms[prefix]) + local


def _paired(compact: Any, expanded: Any, terms: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(compact key, expanded key) for every key, walking both documents side by side."""
    if isinstance(expanded, list) and not isinstance(compact, list):
        assert len(expanded) == 1, (compact, expanded)  # a single value, written without [ ]
        expanded = expanded[0]
    if isinstance(compact, dict) and "@value" not in compact:
        assert isinstance(expanded, dict), (compact, expanded)
        for key, value in compact.items():
            if key == "@context":
                continue
            iri = _resolve(key, terms)
            assert iri in expanded, f"expansion dropped {key!r} ({iri})"
            yield key, iri
            if iri not in ("@id", "@type"):
                yield from _paired(value, expanded[iri], terms)
    elif isinstance(compact, list):
        assert isinstance(expanded, list) and len(compact) == len(expanded)
        for item, expanded_item in zip(compact, expanded, strict=True):
            yield from _paired(item, expanded_item, terms)


def _agreement() -> Policy:
    return Policy(
        kind="Agreement",
        uid="urn:corpusx:agreement:a-7",
        target=VERSION,
        terms=Terms(purposes=frozenset({"fine-tuning"}), commercial=True, redistribution=True),
        assigner="acme",
        assignee="builder-co",
        price=Price(2500),
        valid_from="2026-02-01T00:00:00.000Z",
    )


@pytest.mark.parametrize("policy", [OFFER, _agreement()], ids=["offer", "agreement"])
def test_expansion_yields_only_odrl_project_and_chosen_iris(policy: Policy) -> None:
    document = to_jsonld(policy)
    expanded = jsonld.expand(document, {"documentLoader": document_loader})
    iris = set(_iris(expanded))
    strays = {i for i in iris if i not in ALLOWED_EXACT and not i.startswith(ALLOWED_PREFIXES)}
    assert not strays
    assert {ODRL_NS + "permission", ODRL_NS + "action", ODRL_NS + "target"} <= iris


def test_no_key_is_dropped_and_every_key_is_a_context_term() -> None:
    document = to_jsonld(OFFER)
    terms = dict(odrl_context()["@context"]) | PROJECT_CONTEXT
    compact_keys = {k for k in _keys(document) if not k.startswith("@")}
    # Every key is a term of the two contexts, or a compact IRI with one of their prefixes.
    assert all(k in terms or k.partition(":")[0] in terms for k in compact_keys)
    dropped: list[object] = []
    expanded = jsonld.expand(
        document, {"documentLoader": document_loader}, on_property_dropped=dropped.append
    )
    assert dropped == []
    assert len(expanded) == 1
    pairs = list(_paired(document, expanded[0], terms))
    assert len(pairs) == sum(1 for _ in _keys(document))
    assert ("uid", "@id") in pairs and ("notice", PROJECT_NS + "notice") in pairs


def test_the_export_is_the_documented_shape() -> None:
    document = to_jsonld(OFFER)
    assert document["@context"] == [CONTEXT_URL, PROJECT_CONTEXT]
    assert document["target"] == "urn:corpusx:version:" + VERSION
    assert document["assigner"] == "urn:corpusx:member:acme"
    assert document["prohibition"] == [{"action": "odrl:commercialize"}, {"action": "distribute"}]
    use = document["permission"][0]
    assert [c["leftOperand"] for c in use["constraint"]] == [
        "purpose",
        "spatial",
        "elapsedTime",
        "dateTime",
        "dateTime",
    ]
    assert use["constraint"][1]["rightOperand"] == [
        {"@id": TERRITORY_PREFIX + "DE"},
        {"@id": TERRITORY_PREFIX + "FR"},
    ]
    assert use["duty"][1]["action"][0]["refinement"][0]["rightOperand"] == {
        "@value": "100",
        "@type": "xsd:decimal",
    }
    assert document["permission"][1] == {"action": "derive", "duty": [{"action": "shareAlike"}]}


def test_round_trip_of_the_examples() -> None:
    for policy in (OFFER, _agreement()):
        assert from_jsonld(to_jsonld(policy)) == policy
        assert from_jsonld(json.dumps(to_jsonld(policy))) == policy


@settings(max_examples=150, deadline=None)
@given(policies())
def test_round_trip_is_exact(policy: Policy) -> None:
    assert from_jsonld(to_jsonld(policy)) == policy


def test_an_expanded_document_reads_the_same() -> None:
    expanded = expand(to_jsonld(OFFER))
    assert from_jsonld(expanded[0]) == OFFER


HAND_WRITTEN: dict[str, Any] = {
    "@context": "https://www.w3.org/ns/odrl.jsonld",
    "@type": "Agreement",
    "uid": "urn:corpusx:agreement:a-1",
    "permission": [
        {
            "target": "urn:corpusx:dataset:news-2025",
            "assigner": "urn:corpusx:member:acme",
            "assignee": "urn:corpusx:member:lab",
            "action": "use",
            "rdfs:comment": "descriptive annotations are ignored",
            "constraint": [
                {
                    "leftOperand": "purpose",
                    "operator": "eq",
                    "rightOperand": {"@id": "https://corpus-exchange.org/ns#research"},
                },
                {"leftOperand": "spatial", "operator": "isAnyOf", "rightOperand": ["DE", "AT"]},
                {
                    "leftOperand": "dateTime",
                    "operator": "lt",
                    "rightOperand": {
                        "@value": "2027-01-01T00:00:00+01:00",
                        "@type": "xsd:dateTime",
                    },
                },
            ],
            "duty": [
                {
                    "action": [
                        {
                            "rdf:value": {"@id": "odrl:compensate"},
                            "refinement": [
                                {
                                    "leftOperand": "payAmount",
                                    "operator": "eq",
                                    "rightOperand": {"@value": "40.00", "@type": "xsd:decimal"},
                                    "unit": "https://corpus-exchange.org/ns#credit",
                                }
                            ],
                        }
                    ]
                }
            ],
        },
        {"target": "urn:corpusx:dataset:news-2025", "action": "cc:CommercialUse"},
    ],
}


def test_hand_written_odrl_of_the_same_shape_is_accepted() -> None:
    policy = from_jsonld(HAND_WRITTEN)
    assert policy == Policy(
        kind="Agreement",
        uid="urn:corpusx:agreement:a-1",
        target="news-2025",
        terms=Terms(
            purposes=frozenset({"research"}), commercial=True, territories=frozenset({"DE", "AT"})
        ),
        assigner="acme",
        assignee="lab",
        price=Price(40),
        valid_until="2026-12-31T23:00:00.000Z",
    )


def test_a_minimal_set_permits_use_only() -> None:
    minimal = {
        "@context": CONTEXT_URL,
        "@type": "Set",
        "uid": "http://example.com/policy:1010",
        "target": "urn:corpusx:dataset:news",
        "permission": [{"action": "use"}],
    }
    assert from_jsonld(minimal) == Policy(
        kind="Set", uid="http://example.com/policy:1010", target="news", terms=Terms()
    )


def _broken(change: Any) -> dict[str, Any]:
    document = to_jsonld(OFFER)
    change(document)
    return document


def _use(document: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = document["permission"][0]
    return rule


def _constraint(document: dict[str, Any], index: int) -> dict[str, Any]:
    constraint: dict[str, Any] = _use(document)["constraint"][index]
    return constraint


def _time(document: dict[str, Any], index: int, value: str) -> None:
    _constraint(document, index)["rightOperand"]["@value"] = value


def _refinement(document: dict[str, Any]) -> dict[str, Any]:
    refinement: dict[str, Any] = _use(document)["duty"][1]["action"][0]["refinement"][0]
    return refinement


IMPORT_ERRORS: list[tuple[str, Any, type[Exception], str]] = [
    ("not JSON", "{not json", FormatError, "an ODRL policy must be JSON"),
    ("not an object", [1, 2], FormatError, "an ODRL policy is a JSON object"),
    (
        "a typo that expansion would drop",
        _broken(lambda d: _use(d).update(constriant=[])),
        FormatError,
        "unknown key(s) ['constriant']",
    ),
    (
        "another remote context",
        _broken(lambda d: d.update({"@context": "https://example.org/context.jsonld"})),
        FormatError,
        "cannot load 'https://example.org/context.jsonld'",
    ),
    (
        "invalid JSON-LD",
        _broken(lambda d: d.update({"@context": 5})),
        FormatError,
        "not valid JSON-LD",
    ),
    (
        "unknown action IRI",
        _broken(lambda d: d["permission"].append({"action": "play"})),
        TermsError,
        "unknown action 'http://www.w3.org/ns/odrl/2/play' in a permission",
    ),
    (
        "commercialize without its prefix",
        _broken(lambda d: d["prohibition"].__setitem__(0, {"action": "commercialize"})),
        TermsError,
        "unknown action 'commercialize' (a term the context does not define)",
    ),
    (
        "unsupported constraint",
        _broken(lambda d: _constraint(d, 0).update(leftOperand="language")),
        TermsError,
        "unsupported constraint 'http://www.w3.org/ns/odrl/2/language'",
    ),
    (
        "logical constraint",
        _broken(lambda d: _use(d)["constraint"].append({"or": [_constraint(d, 0)]})),
        TermsError,
        "logical constraints",
    ),
    (
        "contradictory rules",
        _broken(lambda d: d["prohibition"].append({"action": "derive"})),
        TermsError,
        "'derive' is both permitted and prohibited",
    ),
    (
        "wrong operator",
        _broken(lambda d: _constraint(d, 0).update(operator="isNoneOf")),
        TermsError,
        "the 'purpose' constraint takes the operator 'isAnyOf', not 'isNoneOf'",
    ),
    (
        "purpose as a literal",
        _broken(lambda d: _constraint(d, 0).update(rightOperand=["training"])),
        TermsError,
        "a purpose is an IRI like https://corpus-exchange.org/ns#training",
    ),
    (
        "unknown purpose",
        _broken(lambda d: _constraint(d, 0).update(rightOperand=[{"@id": "cx:inference"}])),
        TermsError,
        "unknown purpose(s) ['inference']",
    ),
    (
        "bad territory",
        _broken(lambda d: _constraint(d, 1).update(rightOperand=["Germany"])),
        TermsError,
        "a territory is an ISO 3166-1 IRI",
    ),
    (
        "duration in months",
        _broken(lambda d: _constraint(d, 2)["rightOperand"].update({"@value": "P6M"})),
        TermsError,
        "elapsedTime must be a number of days like 'P365D', got 'P6M'",
    ),
    (
        "validity with eq",
        _broken(lambda d: _constraint(d, 3).update(operator="eq")),
        TermsError,
        "a dateTime constraint is either 'gteq'",
    ),
    (
        "validity start twice",
        _broken(lambda d: _constraint(d, 4).update(operator="gteq")),
        TermsError,
        "the dateTime 'gteq' constraint is given twice",
    ),
    (
        "contradictory validity",
        _broken(lambda d: _time(d, 4, "2020-01-01T00:00:00Z")),
        FormatError,
        "contradictory validity",
    ),
    (
        "dateTime without a time zone",
        _broken(lambda d: _time(d, 3, "2026-01-31T12:00:00")),
        TermsError,
        "a dateTime must have a time zone",
    ),
    (
        "price in euros",
        _broken(lambda d: _refinement(d).update(unit={"@id": "http://dbpedia.org/resource/Euro"})),
        TermsError,
        "prices are in exchange credits",
    ),
    (
        "a fraction of a credit",
        _broken(lambda d: _refinement(d)["rightOperand"].update({"@value": "1.5"})),
        TermsError,
        "a price is a whole number of credits, got '1.5'",
    ),
    (
        "price on derive",
        _broken(lambda d: d["permission"][1]["duty"].append(_use(d)["duty"][1])),
        TermsError,
        "a compensate duty belongs to the 'use' permission, not 'derive'",
    ),
    (
        "unknown duty",
        _broken(lambda d: _use(d)["duty"].append({"action": "inform"})),
        TermsError,
        "unknown duty 'http://www.w3.org/ns/odrl/2/inform'",
    ),
    (
        "duty on distribute",
        _broken(
            lambda d: (
                d["permission"].append(
                    {"action": "distribute", "duty": [{"action": "attribute", "notice": "x"}]}
                )
                or d["prohibition"].pop()
            )
        ),
        TermsError,
        "'distribute' carries no duties",
    ),
    (
        "two targets",
        _broken(lambda d: _use(d).update(target="urn:corpusx:dataset:other")),
        FormatError,
        "the policy names more than one target",
    ),
    ("no target", _broken(lambda d: d.pop("target")), FormatError, "needs a target"),
    (
        "foreign target",
        _broken(lambda d: d.update(target="http://example.com/asset:9898.movie")),
        FormatError,
        "unsupported target 'http://example.com/asset:9898.movie'",
    ),
    (
        "foreign party",
        _broken(lambda d: d.update(assigner="http://example.com/party:org:abc")),
        FormatError,
        "unsupported party",
    ),
    (
        "a policy kind we do not handle",
        _broken(lambda d: d.update({"@type": "Ticket"})),
        FormatError,
        "exactly one of odrl:Offer, odrl:Agreement, odrl:Set",
    ),
    (
        "another profile",
        _broken(lambda d: d.update(profile="http://example.com/odrl:profile:01")),
        FormatError,
        "unsupported ODRL profile",
    ),
    (
        "an unsupported property",
        _broken(lambda d: d.update(obligation=[{"action": "attribute"}])),
        FormatError,
        "the policy has unsupported property ['http://www.w3.org/ns/odrl/2/obligation']",
    ),
    ("no uid", _broken(lambda d: d.pop("uid")), FormatError, "needs a uid"),
    (
        "a relative uid",
        _broken(lambda d: d.update(uid="policy-1")),
        FormatError,
        "a policy uid must be an absolute IRI, got 'policy-1'",
    ),
    (
        "an offer without its assigner",
        _broken(lambda d: d.pop("assigner")),
        FormatError,
        "an ODRL Offer needs an assigner",
    ),
    (
        "two policies",
        {"@graph": [to_jsonld(OFFER), to_jsonld(_agreement())]},
        FormatError,
        "expected one ODRL policy, found 2",
    ),
]


@pytest.mark.parametrize(
    ("document", "error", "message"),
    [e[1:] for e in IMPORT_ERRORS],
    ids=[e[0] for e in IMPORT_ERRORS],
)
def test_import_errors_say_what_is_wrong(
    document: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        from_jsonld(copy.deepcopy(document))
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "Ticket"}, "a policy is one of ['Offer', 'Agreement', 'Set']"),
        ({"uid": "no scheme"}, "absolute IRI"),
        ({"target": "Not A Slug"}, "a target is a version id"),
        ({"assigner": "Acme Inc"}, "is not a member id"),
        ({"kind": "Agreement"}, "an ODRL Agreement needs an assigner and an assignee"),
        ({"valid_from": "2026-01-31T12:00:00Z"}, "RFC 3339 UTC with milliseconds"),
        ({"valid_until": "2026-01-31T12:00:00.000Z"}, "contradictory validity"),
        ({"price": 100}, "a policy's price must be a Price value"),
        ({"terms": {"permission": []}}, "a policy's terms must be a Terms value"),
    ],
)
def test_policies_are_checked_when_made(change: dict[str, Any], message: str) -> None:
    fields = {name: getattr(OFFER, name) for name in OFFER.__dataclass_fields__} | change
    with pytest.raises(FormatError) as raised:
        Policy(**fields)
    assert message in str(raised.value)


def test_the_loader_serves_only_the_bundled_context() -> None:
    for url in (CONTEXT_URL, "https://www.w3.org/ns/odrl.jsonld"):
        loaded = document_loader(url)
        assert loaded["document"] == odrl_context()
    assert odrl_context()["@context"]["odrl"] == ODRL_NS
    with pytest.raises(FormatError, match="only remote context available offline"):
        document_loader("http://www.w3.org/ns/odrl/2/")


def test_every_purpose_has_a_project_iri() -> None:
    everything = Policy(kind="Set", uid="urn:corpusx:offer:x", target="news", terms=Terms())
    narrowed = Policy(
        kind="Set",
        uid="urn:corpusx:offer:x",
        target="news",
        terms=Terms(purposes=frozenset(PURPOSES[1:])),
    )
    assert "constraint" not in to_jsonld(everything)["permission"][0]
    right = to_jsonld(narrowed)["permission"][0]["constraint"][0]["rightOperand"]
    assert right == [{"@id": f"cx:{p}"} for p in PURPOSES[1:]]
    assert from_jsonld(to_jsonld(narrowed)) == narrowed


def test_a_plain_odrl_policy_reads_as_a_set() -> None:
    document = to_jsonld(
        Policy(kind="Set", uid="urn:corpusx:offer:s", target="news", terms=Terms())
    )
    document["@type"] = "Policy"
    assert from_jsonld(document).kind == "Set"
