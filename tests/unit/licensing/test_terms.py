"""Terms: the canonical JSON form, its round trip, and one clear message for each way it fails."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from hypothesis import given, settings

from licensing.errors import TermsError
from licensing.terms import PURPOSES, Price, Terms, describe, merge_notices

from .strategies import terms

FULL: dict[str, Any] = {
    "permission": [
        {
            "action": "use",
            "constraint": [
                {"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": ["training"]},
                {"leftOperand": "spatial", "operator": "isAnyOf", "rightOperand": ["DE", "FR"]},
                {"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": "P365D"},
            ],
            "duty": [{"action": "attribute", "notice": "(c) Acme Corpora"}],
        },
        {"action": "derive", "duty": [{"action": "shareAlike"}]},
    ],
    "prohibition": [{"action": "commercialize"}, {"action": "distribute"}],
    "licence": "CC-BY-SA-4.0",
}


def test_the_documented_example_parses_to_the_fields_it_says() -> None:
    parsed = Terms.from_json(FULL)
    assert parsed == Terms(
        purposes=frozenset({"training"}),
        derivation=True,
        territories=frozenset({"DE", "FR"}),
        duration_days=365,
        attribution=("(c) Acme Corpora",),
        share_alike=True,
        licence="CC-BY-SA-4.0",
    )
    assert parsed.to_json() == FULL


def test_defaults_permit_every_purpose_and_prohibit_every_other_action() -> None:
    assert Terms().to_json() == {
        "permission": [{"action": "use"}],
        "prohibition": [{"action": a} for a in ("commercialize", "derive", "distribute")],
    }
    assert Terms.from_json({"permission": [{"action": "use"}]}) == Terms()


@settings(max_examples=300)
@given(terms())
def test_round_trip_is_exact(value: Terms) -> None:
    assert Terms.from_json(value.to_json()) == value
    assert Terms.from_json(value.to_json()).to_json() == value.to_json()


@settings(max_examples=200)
@given(terms())
def test_rule_order_does_not_matter_and_the_form_is_canonical(value: Terms) -> None:
    shuffled = value.to_json()
    rng = random.Random(value.digest())
    rng.shuffle(shuffled["permission"])
    rng.shuffle(shuffled.get("prohibition", []))
    for rule in shuffled["permission"]:
        rng.shuffle(rule.get("constraint", []))
        for constraint in rule.get("constraint", []):
            if isinstance(constraint["rightOperand"], list):
                rng.shuffle(constraint["rightOperand"])
    parsed = Terms.from_json(shuffled)
    assert parsed.purposes == value.purposes and parsed.territories == value.territories
    assert parsed.to_json() == value.to_json()
    assert parsed.digest() == value.digest()


def test_to_json_returns_a_copy() -> None:
    value = Terms.from_json(FULL)
    value.to_json()["permission"].clear()
    assert value.to_json() == FULL


def _with(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(FULL)
    change(document)
    return document


def _use(document: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = document["permission"][0]
    return rule


def _set(path: list[Any], value: Any) -> Any:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


USE_CONSTRAINT = ["permission", 0, "constraint"]
ERRORS: list[tuple[str, Any, str]] = [
    ("not an object", ["use"], "terms must be a JSON object"),
    ("unknown field", _with(_set(["terms"], 1)), "terms has unknown field(s) ['terms']"),
    ("no permission", {"prohibition": []}, "'permission' must be a non-empty list of rules"),
    ("empty permission", {"permission": []}, "'permission' must be a non-empty list of rules"),
    ("prohibition not a list", _with(_set(["prohibition"], {})), "'prohibition' must be a list"),
    ("rule not an object", {"permission": ["use"]}, "each permission must be an object"),
    (
        "unknown action",
        _with(lambda d: d["permission"].append({"action": "read"})),
        "unknown action 'read' in a permission: known actions are",
    ),
    (
        "unknown prohibited action",
        _with(lambda d: d["prohibition"].append({"action": "sell"})),
        "unknown action 'sell' in a prohibition",
    ),
    (
        "duplicate permission",
        _with(lambda d: d["permission"].append({"action": "use"})),
        "the permission to 'use' is given twice",
    ),
    (
        "duplicate prohibition",
        _with(lambda d: d["prohibition"].append({"action": "distribute"})),
        "the prohibition of 'distribute' is given twice",
    ),
    (
        "contradiction",
        _with(lambda d: d["prohibition"].append({"action": "derive"})),
        "'derive' is both permitted and prohibited",
    ),
    (
        "prohibiting use",
        _with(lambda d: d["prohibition"].append({"action": "use"})),
        "prohibiting 'use' leaves nothing to license",
    ),
    ("no use", {"permission": [{"action": "derive"}]}, "terms must permit 'use'"),
    (
        "unknown rule field",
        _with(lambda d: _use(d).update(target="x")),
        "permission 'use' has unknown field(s) ['target']",
    ),
    (
        "prohibition with a constraint",
        _with(lambda d: d["prohibition"][0].update(constraint=[])),
        "prohibition 'commercialize' has unknown field(s) ['constraint']",
    ),
    (
        "constraint on another action",
        _with(lambda d: d["permission"][1].update(constraint=[])),
        "constraints apply to 'use' only, not to 'derive'",
    ),
    ("constraints not a list", _with(_set(USE_CONSTRAINT, {})), "'constraint' must be a list"),
    ("constraint not an object", _with(_set(USE_CONSTRAINT, [1])), "each constraint must be an"),
    (
        "unknown operand",
        _with(_set([*USE_CONSTRAINT, 0, "leftOperand"], "language")),
        "unknown constraint 'language': known are ['elapsedTime', 'purpose', 'spatial']",
    ),
    (
        "wrong operator",
        _with(_set([*USE_CONSTRAINT, 0, "operator"], "eq")),
        "the 'purpose' constraint takes the operator 'isAnyOf', not 'eq'",
    ),
    (
        "wrong duration operator",
        _with(_set([*USE_CONSTRAINT, 2, "operator"], "gteq")),
        "the 'elapsedTime' constraint takes the operator 'lteq', not 'gteq'",
    ),
    (
        "unknown constraint field",
        _with(_set([*USE_CONSTRAINT, 0, "unit"], "x")),
        "a constraint has unknown field(s) ['unit']",
    ),
    (
        "duplicate constraint",
        _with(lambda d: _use(d)["constraint"].append(dict(_use(d)["constraint"][0]))),
        "the 'purpose' constraint is given twice",
    ),
    (
        "unknown purpose",
        _with(_set([*USE_CONSTRAINT, 0, "rightOperand"], ["inference"])),
        "unknown purpose(s) ['inference']",
    ),
    (
        "purpose given twice",
        _with(_set([*USE_CONSTRAINT, 0, "rightOperand"], ["training", "training"])),
        "the 'purpose' constraint names a value twice",
    ),
    (
        "no purposes",
        _with(_set([*USE_CONSTRAINT, 0, "rightOperand"], [])),
        "the 'purpose' constraint needs a non-empty list of strings",
    ),
    (
        "bad territory",
        _with(_set([*USE_CONSTRAINT, 1, "rightOperand"], ["de", "FRA"])),
        "territories must be ISO 3166-1 alpha-2 codes like 'DE', got ['FRA', 'de']",
    ),
    (
        "territory not a string",
        _with(_set([*USE_CONSTRAINT, 1, "rightOperand"], [49])),
        "the 'spatial' constraint needs a non-empty list of strings",
    ),
    (
        "duration in years",
        _with(_set([*USE_CONSTRAINT, 2, "rightOperand"], "P1Y")),
        "elapsedTime must be a number of days like 'P365D', got 'P1Y'",
    ),
    (
        "zero duration",
        _with(_set([*USE_CONSTRAINT, 2, "rightOperand"], "P0D")),
        "elapsedTime must be a number of days like 'P365D', got 'P0D'",
    ),
    (
        "too long a duration",
        _with(_set([*USE_CONSTRAINT, 2, "rightOperand"], "P99999D")),
        "a duration must be 1 to 36600 days, got 99999",
    ),
    ("duties not a list", _with(_set(["permission", 0, "duty"], {})), "duties of 'use' must be"),
    ("duty not an object", _with(_set(["permission", 0, "duty"], ["x"])), "each duty of 'use'"),
    (
        "share-alike on use",
        _with(_set(["permission", 0, "duty"], [{"action": "shareAlike"}])),
        "'use' can carry only the duty 'attribute', not 'shareAlike'",
    ),
    (
        "attribution on derive",
        _with(_set(["permission", 1, "duty"], [{"action": "attribute", "notice": "x"}])),
        "'derive' can carry only the duty 'shareAlike', not 'attribute'",
    ),
    (
        "a duty on an action that has none",
        {"permission": [{"action": "use"}, {"action": "distribute", "duty": [{"action": "x"}]}]},
        "'distribute' carries no duties",
    ),
    (
        "attribution without a notice",
        _with(_set(["permission", 0, "duty"], [{"action": "attribute"}])),
        "an attribution duty needs a 'notice'",
    ),
    (
        "empty notice",
        _with(_set(["permission", 0, "duty", 0, "notice"], "  ")),
        "an attribution notice must be 1-500 characters of text",
    ),
    (
        "attribution field",
        _with(_set(["permission", 0, "duty", 0, "party"], "x")),
        "an attribution duty has unknown field(s) ['party']",
    ),
    (
        "notice twice",
        _with(lambda d: _use(d)["duty"].append(dict(_use(d)["duty"][0]))),
        "a duty of 'use' is given twice",
    ),
    (
        "share-alike twice",
        _with(lambda d: d["permission"][1]["duty"].append({"action": "shareAlike"})),
        "the share-alike duty is given twice",
    ),
    (
        "share-alike field",
        _with(_set(["permission", 1, "duty", 0, "licence"], "x")),
        "a share-alike duty has unknown field(s) ['licence']",
    ),
    ("licence not a string", _with(_set(["licence"], 4)), "'licence' must be a string"),
    ("empty licence", _with(_set(["licence"], " ")), "a licence must be a name or SPDX"),
    ("long licence", _with(_set(["licence"], "x" * 201)), "of 1-200 chars"),
]


@pytest.mark.parametrize(("value", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_each_error_says_what_is_wrong(value: Any, message: str) -> None:
    with pytest.raises(TermsError) as raised:
        Terms.from_json(value)
    assert message in str(raised.value)


def test_share_alike_without_derivation_is_refused() -> None:
    with pytest.raises(TermsError, match="share-alike duty applies to derivatives"):
        Terms(share_alike=True)
    # In JSON the duty can only sit on the derive permission; anywhere else it is refused.
    no_derive = {"permission": [{"action": "use", "duty": [{"action": "shareAlike"}]}]}
    with pytest.raises(TermsError, match="'use' can carry only the duty 'attribute'"):
        Terms.from_json(no_derive)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"purposes": frozenset()}, "at least one purpose"),
        ({"purposes": frozenset({"inference"})}, "unknown purpose(s) ['inference']"),
        ({"territories": frozenset()}, "must name at least one territory"),
        ({"duration_days": 0}, "a duration must be 1 to"),
        ({"duration_days": True}, "a duration must be 1 to"),
        ({"attribution": ("x" * 501,)}, "1-500 characters"),
    ],
)
def test_constructor_checks_the_same_rules(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TermsError) as raised:
        Terms(**kwargs)
    assert message in str(raised.value)


def test_questions_and_descriptions() -> None:
    value = Terms.from_json(FULL)
    assert value.permits_purpose("training") and not value.permits_purpose("research")
    assert value.permits_territory("de") and not value.permits_territory("US")
    assert not value.permits_territory(None)
    assert Terms().permits_territory(None)
    assert describe(value) == (
        "training; non-commercial; derivatives (share-alike); no redistribution; in DE FR; "
        "365 days; attribution required"
    )
    assert describe(Terms()) == (
        ", ".join(PURPOSES) + "; non-commercial; no derivatives; no redistribution"
    )
    assert merge_notices(["a", "b"], ["b", "c"]) == ("a", "b", "c")


def test_prices_are_whole_credits() -> None:
    assert Price.from_json({"amount": 5}) == Price(5)
    assert Price(5).to_json() == {"amount": 5, "currency": "credits"}
    for bad, message in [
        ({"amount": 1.5}, "whole, non-negative"),
        ({"amount": -1}, "whole, non-negative"),
        ({"amount": True}, "whole, non-negative"),
        ({"amount": 1, "currency": "EUR"}, "exchange credits"),
        ({}, "needs an 'amount'"),
        ({"amount": 1, "cents": 2}, "a price is an object"),
    ]:
        with pytest.raises(TermsError, match=message):
            Price.from_json(bad)
