"""ODRL 2.2 JSON-LD export and import of offers, agreements and sets of terms.

A :class:`Policy` is a :class:`~licensing.terms.Terms` value placed in ODRL's frame: the kind of
policy (``Offer``, ``Agreement``, ``Set``), its uid, its one target, the parties, a price and a
validity window. :func:`to_jsonld` writes it in ODRL's compact JSON-LD form against the W3C ODRL
2.2 context plus a small project context; :func:`from_jsonld` reads any JSON-LD document of the
same shape (after expanding it, so any equivalent spelling is accepted), and
``from_jsonld(to_jsonld(p)) == p``.

Import is strict: a key that JSON-LD expansion would silently drop (a typo such as
``"constriant"``), a property, action, operand or operator outside the mapping, or rules that
contradict each other raise an error; the only remote context that can be loaded is the bundled
ODRL 2.2 context, so import never touches the network. ``docs/licensing.md`` section 3 is
normative.

Errors: :class:`~licensing.errors.FormatError` for documents that are not such a policy (bad
JSON-LD, unknown property, policy type, target or party), :class:`~licensing.errors.TermsError`
for rules that do not make valid terms (unknown action, constraint or operator; duplicates;
contradictions).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib.resources import files
from typing import Any

from pyld import jsonld

from licensing.errors import FormatError, TermsError
from licensing.iris import (
    CC_NS,
    ODRL_NS,
    PROJECT_NS,
    RDF_NS,
    is_absolute_iri,
    is_timestamp,
    member_from_iri,
    member_iri,
    odrl,
    project,
    target_from_iri,
    target_iri,
    xsd,
)
from licensing.terms import (
    ATTRIBUTE,
    COMMERCIALIZE,
    DERIVE,
    DISTRIBUTE,
    ELAPSED_TIME,
    PURPOSE,
    PURPOSES,
    SHARE_ALIKE,
    SPATIAL,
    USE,
    Price,
    Terms,
)

KINDS = ("Offer", "Agreement", "Set")
CONTEXT_URL = "http://www.w3.org/ns/odrl.jsonld"
_CONTEXT_URLS = (CONTEXT_URL, "https://www.w3.org/ns/odrl.jsonld")
PROFILE = project("odrl-profile")
CREDIT = project("credit")
NOTICE = project("notice")
LICENCE = project("licence")
SHARE_ALIKE_IRI = project(SHARE_ALIKE)
# ODRL's spatial operand "MUST" be an IRI naming the area and the source of its code; ISO's own
# page for each ISO 3166-1 code is such an IRI (odrl:spatial in the ODRL 2.2 vocabulary).
TERRITORY_PREFIX = "https://www.iso.org/obp/ui/#iso:code:3166:"
PROJECT_CONTEXT: dict[str, Any] = {
    "cx": PROJECT_NS,
    "notice": {"@id": "cx:notice"},
    "licence": {"@id": "cx:licence"},
    "shareAlike": "cx:shareAlike",
}
DOCUMENT_CONTEXT: list[Any] = [CONTEXT_URL, PROJECT_CONTEXT]

_COMPENSATE = "compensate"
_DATE_TIME, _PAY_AMOUNT = "dateTime", "payAmount"
_CODE = re.compile(r"^[A-Z]{2}$")
_ACTIONS = {
    odrl(USE): USE,
    odrl(COMMERCIALIZE): COMMERCIALIZE,
    odrl(DERIVE): DERIVE,
    odrl(DISTRIBUTE): DISTRIBUTE,
    # Creative Commons' terms, which ODRL 2.2 recommends over the deprecated odrl:commercialize.
    CC_NS + "CommercialUse": COMMERCIALIZE,
    CC_NS + "DerivativeWorks": DERIVE,
    CC_NS + "Distribution": DISTRIBUTE,
}
_DUTIES = {
    odrl(ATTRIBUTE): ATTRIBUTE,
    CC_NS + "Attribution": ATTRIBUTE,
    SHARE_ALIKE_IRI: SHARE_ALIKE,
    CC_NS + "ShareAlike": SHARE_ALIKE,
    odrl(_COMPENSATE): _COMPENSATE,
}
_OPERANDS = {odrl(name) for name in (PURPOSE, SPATIAL, ELAPSED_TIME, _DATE_TIME)}
_KINDS = {odrl(kind): kind for kind in KINDS} | {odrl("Policy"): "Set"}
_LOGICAL = {odrl(name) for name in ("and", "or", "xone", "andSequence")}
# Descriptive annotations carry no rights; import ignores them.
_ANNOTATIONS = frozenset(
    {
        "http://www.w3.org/2000/01/rdf-schema#comment",
        "http://www.w3.org/2000/01/rdf-schema#label",
        "http://purl.org/dc/terms/title",
        "http://purl.org/dc/terms/description",
    }
)
_TARGET, _ASSIGNER, _ASSIGNEE = odrl("target"), odrl("assigner"), odrl("assignee")
_PARTY_KEYS = (_TARGET, _ASSIGNER, _ASSIGNEE)
_ACTION, _CONSTRAINT, _DUTY = odrl("action"), odrl("constraint"), odrl("duty")
_LEFT, _OPERATOR, _RIGHT = odrl("leftOperand"), odrl("operator"), odrl("rightOperand")


@dataclass(frozen=True)
class Policy:
    """Terms placed in ODRL's frame; ``docs/licensing.md`` section 3 maps every field.

    An ``Offer`` names its assigner (the provider) and an ``Agreement`` both parties, as ODRL
    2.2 requires. ``valid_from`` is inclusive and ``valid_until`` exclusive (RFC 3339 UTC with
    milliseconds, e.g. ``2026-01-31T12:00:00.000Z``).
    """

    kind: str
    uid: str
    target: str
    terms: Terms
    assigner: str | None = None
    assignee: str | None = None
    price: Price | None = None
    valid_from: str | None = None
    valid_until: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FormatError(f"a policy is one of {list(KINDS)}, not {self.kind!r}")
        if not is_absolute_iri(self.uid):
            raise FormatError(f"a policy uid must be an absolute IRI, got {self.uid!r}")
        target_iri(self.target)
        for party in (self.assigner, self.assignee):
            if party is not None:
                member_iri(party)
        if self.kind == "Offer" and self.assigner is None:
            raise FormatError("an ODRL Offer needs an assigner (the provider)")
        if self.kind == "Agreement" and (self.assigner is None or self.assignee is None):
            raise FormatError("an ODRL Agreement needs an assigner and an assignee")
        if not isinstance(self.terms, Terms):
            raise FormatError("a policy's terms must be a Terms value")
        if self.price is not None and not isinstance(self.price, Price):
            raise FormatError("a policy's price must be a Price value")
        for name in ("valid_from", "valid_until"):
            value = getattr(self, name)
            if value is not None and not is_timestamp(value):
                raise FormatError(
                    f"{name} must be RFC 3339 UTC with milliseconds like "
                    f"2026-01-31T12:00:00.000Z, got {value!r}"
                )
        if self.valid_from and self.valid_until and self.valid_from >= self.valid_until:
            raise FormatError(
                f"contradictory validity: valid_from {self.valid_from} is not before "
                f"valid_until {self.valid_until}"
            )


# -- export -------------------------------------------------------------------------------------


def to_jsonld(policy: Policy) -> dict[str, Any]:
    """The policy as compact ODRL 2.2 JSON-LD (a new dict on every call)."""
    terms = policy.terms.to_json()
    document: dict[str, Any] = {
        "@context": copy.deepcopy(DOCUMENT_CONTEXT),
        "@type": policy.kind,
        "uid": policy.uid,
        "profile": PROFILE,
        "target": target_iri(policy.target),
    }
    if policy.assigner is not None:
        document["assigner"] = member_iri(policy.assigner)
    if policy.assignee is not None:
        document["assignee"] = member_iri(policy.assignee)
    document["permission"] = [_export_rule(rule, policy) for rule in terms["permission"]]
    if terms.get("prohibition"):
        document["prohibition"] = [_export_rule(rule, policy) for rule in terms["prohibition"]]
    if "licence" in terms:
        document["licence"] = terms["licence"]
    return document


def _export_rule(rule: Mapping[str, Any], policy: Policy) -> dict[str, Any]:
    action = rule["action"]
    exported: dict[str, Any] = {"action": _ACTION_TERMS[action]}
    constraints = [_export_constraint(c) for c in rule.get("constraint", [])]
    duties = [_export_duty(d) for d in rule.get("duty", [])]
    if action == USE:
        constraints += _validity_constraints(policy)
        if policy.price is not None:
            duties.append(_compensation(policy.price))
    if constraints:
        exported["constraint"] = constraints
    if duties:
        exported["duty"] = duties
    return exported


# ODRL's context has no term for commercialize, so it is written as a compact IRI.
_ACTION_TERMS = {
    USE: USE,
    COMMERCIALIZE: "odrl:commercialize",
    DERIVE: DERIVE,
    DISTRIBUTE: DISTRIBUTE,
}


def _export_constraint(constraint: Mapping[str, Any]) -> dict[str, Any]:
    operand, right = constraint["leftOperand"], constraint["rightOperand"]
    value: Any
    if operand == PURPOSE:
        value = [{"@id": f"cx:{purpose}"} for purpose in right]
    elif operand == SPATIAL:
        value = [{"@id": TERRITORY_PREFIX + code} for code in right]
    else:
        value = {"@value": right, "@type": "xsd:duration"}
    return {"leftOperand": operand, "operator": constraint["operator"], "rightOperand": value}


def _validity_constraints(policy: Policy) -> list[dict[str, Any]]:
    bounds = (("gteq", policy.valid_from), ("lt", policy.valid_until))
    return [
        {
            "leftOperand": _DATE_TIME,
            "operator": operator,
            "rightOperand": {"@value": value, "@type": "xsd:dateTime"},
        }
        for operator, value in bounds
        if value is not None
    ]


def _export_duty(duty: Mapping[str, Any]) -> dict[str, Any]:
    if duty["action"] == ATTRIBUTE:
        return {"action": ATTRIBUTE, "notice": duty["notice"]}
    return {"action": SHARE_ALIKE}


def _compensation(price: Price) -> dict[str, Any]:
    # ODRL 2.2's form for a payment: the compensate action refined by payAmount and its unit.
    refinement = {
        "leftOperand": _PAY_AMOUNT,
        "operator": "eq",
        "rightOperand": {"@value": str(price.amount), "@type": "xsd:decimal"},
        "unit": {"@id": "cx:credit"},
    }
    return {"action": [{"rdf:value": {"@id": "odrl:compensate"}, "refinement": [refinement]}]}


# -- JSON-LD processing, offline ------------------------------------------------------------------


@cache
def _odrl_context() -> dict[str, Any]:
    text = files("licensing").joinpath("data/odrl.jsonld").read_text(encoding="utf-8")
    context: dict[str, Any] = json.loads(text)
    return context


def odrl_context() -> dict[str, Any]:
    """The bundled ODRL 2.2 context document (a copy)."""
    return copy.deepcopy(_odrl_context())


def document_loader(url: str, options: object = None) -> dict[str, Any]:
    """A pyld document loader that serves the bundled ODRL context and refuses everything else."""
    if url not in _CONTEXT_URLS:
        raise FormatError(
            f"cannot load {url!r}: the only remote context available offline is {CONTEXT_URL}"
        )
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        "document": odrl_context(),
    }


def expand(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """JSON-LD expansion with the offline loader; a key that expansion would drop is an error."""
    dropped: list[str | None] = []
    try:
        expanded: list[dict[str, Any]] = jsonld.expand(
            copy.deepcopy(dict(document)),
            # No base IRI: a relative IRI stays relative, and so cannot pass as one of ours.
            {"documentLoader": document_loader, "base": None},
            on_property_dropped=dropped.append,
        )
    except FormatError:
        raise
    except jsonld.JsonLdError as error:
        cause = _root_cause(error)
        if isinstance(cause, FormatError):
            raise cause from None
        raise FormatError(f"not valid JSON-LD: {_describe(error)}") from None
    if dropped:
        names = sorted({str(name) for name in dropped})
        raise FormatError(
            f"unknown key(s) {names}: neither the ODRL context nor the document's own defines them"
        )
    return expanded


def _root_cause(error: BaseException) -> BaseException:
    cause: BaseException = error
    while True:
        inner = getattr(cause, "cause", None) or cause.__cause__
        if not isinstance(inner, BaseException):
            return cause
        cause = inner


def _describe(error: jsonld.JsonLdError) -> str:
    details = getattr(error, "details", None)
    return f"{error.args[0] if error.args else error}" + (f" ({details})" if details else "")


# -- import ---------------------------------------------------------------------------------------


def from_jsonld(document: object) -> Policy:
    """Read an ODRL policy (a parsed JSON object, or its JSON text) into a :class:`Policy`."""
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except ValueError as error:
            raise FormatError(f"an ODRL policy must be JSON: {error}") from None
    if not isinstance(document, dict):
        raise FormatError("an ODRL policy is a JSON object")
    nodes = expand(document)
    if len(nodes) != 1:
        raise FormatError(f"expected one ODRL policy, found {len(nodes)} top-level nodes")
    return _policy(nodes[0])


_POLICY_KEYS = {
    "@id",
    "@type",
    odrl("profile"),
    odrl("permission"),
    odrl("prohibition"),
    LICENCE,
    *_PARTY_KEYS,
}


def _policy(node: Mapping[str, Any]) -> Policy:
    _only(node, _POLICY_KEYS, "the policy")
    kind = _kind(node)
    uid = node.get("@id")
    if not isinstance(uid, str):
        raise FormatError("an ODRL policy needs a uid (its @id)")
    for profile in node.get(odrl("profile"), []):
        if _iri(profile, "the profile") != PROFILE:
            raise FormatError(f"unsupported ODRL profile {profile.get('@id')!r}: only {PROFILE}")
    permissions = node.get(odrl("permission"), [])
    prohibitions = node.get(odrl("prohibition"), [])
    rules = [*permissions, *prohibitions]
    reader = _RuleReader()
    terms_json: dict[str, Any] = {"permission": [reader.permission(rule) for rule in permissions]}
    if prohibitions:
        terms_json["prohibition"] = [reader.prohibition(rule) for rule in prohibitions]
    licence = _optional_literal(node, LICENCE, "the licence")
    if licence is not None:
        terms_json["licence"] = licence
    terms = Terms.from_json(terms_json)
    target = _party(node, rules, _TARGET, "target")
    if target is None:
        raise FormatError("an ODRL policy needs a target (a version or a dataset)")
    assigner, assignee = (_party(node, rules, key, name) for key, name in _PARTIES)
    return Policy(
        kind=kind,
        uid=uid,
        target=target_from_iri(target),
        terms=terms,
        assigner=member_from_iri(assigner) if assigner is not None else None,
        assignee=member_from_iri(assignee) if assignee is not None else None,
        price=reader.price,
        valid_from=reader.validity.get("gteq"),
        valid_until=reader.validity.get("lt"),
    )


_PARTIES = ((_ASSIGNER, "assigner"), (_ASSIGNEE, "assignee"))


def _kind(node: Mapping[str, Any]) -> str:
    types = node.get("@type", [])
    kinds = {_KINDS.get(t) for t in types}
    if len(types) != 1 or None in kinds:
        raise FormatError(
            f"an ODRL policy is exactly one of odrl:Offer, odrl:Agreement, odrl:Set; got {types}"
        )
    return str(kinds.pop())


def _party(node: Mapping[str, Any], rules: Iterable[Any], key: str, name: str) -> str | None:
    """The one target/assigner/assignee, given on the policy or on its rules (ODRL allows both)."""
    values = {_iri(v, f"the {name}") for holder in (node, *rules) for v in holder.get(key, [])}
    if len(values) > 1:
        raise FormatError(f"the policy names more than one {name}: {sorted(values)}")
    return values.pop() if values else None


class _RuleReader:
    """Turns expanded ODRL rules into Terms JSON, collecting validity and price on the way."""

    def __init__(self) -> None:
        self.validity: dict[str, str] = {}
        self.price: Price | None = None

    def permission(self, rule: object) -> dict[str, Any]:
        node = _node(rule, "a permission")
        _only(node, {"@id", "@type", _ACTION, _CONSTRAINT, _DUTY, *_PARTY_KEYS}, "a permission")
        _rule_type(node, "Permission")
        action = _action(node, "permission")
        out: dict[str, Any] = {"action": action}
        constraints = self._constraints(node, action)
        if constraints:
            out["constraint"] = constraints
        duties = self._duties(node, action)
        if duties:
            out["duty"] = duties
        return out

    def prohibition(self, rule: object) -> dict[str, Any]:
        node = _node(rule, "a prohibition")
        _only(node, {"@id", "@type", _ACTION, _CONSTRAINT, _DUTY, *_PARTY_KEYS}, "a prohibition")
        _rule_type(node, "Prohibition")
        out: dict[str, Any] = {"action": _action(node, "prohibition")}
        # Terms explains why a prohibition cannot carry these.
        for key, name in ((_CONSTRAINT, "constraint"), (_DUTY, "duty")):
            if key in node:
                out[name] = node[key]
        return out

    def _constraints(self, node: Mapping[str, Any], action: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for value in node.get(_CONSTRAINT, []):
            constraint = _constraint(value)
            if constraint["leftOperand"] == _DATE_TIME and action == USE:
                self._validity(constraint)
            else:
                out.append(constraint)
        return out

    def _validity(self, constraint: Mapping[str, Any]) -> None:
        operator = constraint["operator"]
        if operator not in ("gteq", "lt"):
            raise TermsError(
                "a dateTime constraint is either 'gteq' (valid from, inclusive) or 'lt' "
                f"(valid until, exclusive), not {operator!r}"
            )
        if operator in self.validity:
            raise TermsError(f"the dateTime {operator!r} constraint is given twice")
        self.validity[operator] = constraint["rightOperand"]

    def _duties(self, node: Mapping[str, Any], action: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for value in node.get(_DUTY, []):
            duty = _node(value, "a duty")
            _only(duty, {"@id", "@type", _ACTION, NOTICE}, "a duty")
            _rule_type(duty, "Duty")
            name, refinements = _duty_action(duty)
            if name == _COMPENSATE:
                self._compensation(action, refinements)
                continue
            if refinements:
                raise TermsError(f"a {name!r} duty takes no refinement")
            entry: dict[str, Any] = {"action": name}
            if NOTICE in duty:
                entry["notice"] = _optional_literal(duty, NOTICE, "an attribution notice")
            out.append(entry)
        return out

    def _compensation(self, action: str, refinements: list[Any]) -> None:
        if action != USE:
            raise TermsError(f"a compensate duty belongs to the 'use' permission, not {action!r}")
        if self.price is not None:
            raise TermsError("the compensate duty is given twice")
        self.price = _price(refinements)


def _node(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict) or "@value" in value or "@list" in value:
        raise FormatError(f"{what} must be an object")
    return value


def _only(node: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(node) - allowed - _ANNOTATIONS)
    if unknown:
        raise FormatError(
            f"{what} has unsupported propert{'ies' if len(unknown) > 1 else 'y'} {unknown}"
        )


def _rule_type(node: Mapping[str, Any], kind: str) -> None:
    types = node.get("@type", [])
    if any(t != odrl(kind) for t in types):
        raise FormatError(f"a {kind.lower()} cannot be typed {types}")


def _action(node: Mapping[str, Any], what: str) -> str:
    iri = _iri(_one(node, _ACTION, f"the action of a {what}"), f"the action of a {what}")
    if iri not in _ACTIONS:
        hint = "" if is_absolute_iri(iri) else " (a term the context does not define)"
        raise TermsError(
            f"unknown action {iri!r}{hint} in a {what}: supported are odrl:use, "
            "odrl:commercialize, odrl:derive and odrl:distribute"
        )
    return _ACTIONS[iri]


def _duty_action(duty: Mapping[str, Any]) -> tuple[str, list[Any]]:
    value = _one(duty, _ACTION, "the action of a duty")
    refinements: list[Any] = []
    if isinstance(value, dict) and RDF_NS + "value" in value:
        # A refined action: {rdf:value: <action>, odrl:refinement: [...]}.
        _only(value, {"@id", RDF_NS + "value", odrl("refinement")}, "a refined action")
        refinements = list(value.get(odrl("refinement"), []))
        value = _one(value, RDF_NS + "value", "a refined action")
    iri = _iri(value, "the action of a duty")
    if iri not in _DUTIES:
        raise TermsError(
            f"unknown duty {iri!r}: supported are odrl:attribute, odrl:compensate (on use) and "
            f"{SHARE_ALIKE_IRI} (on derive)"
        )
    return _DUTIES[iri], refinements


def _constraint(value: object) -> dict[str, Any]:
    node = _node(value, "a constraint")
    logical = _LOGICAL & set(node)
    if logical:
        raise TermsError(f"logical constraints ({sorted(logical)}) are not supported")
    _only(node, {"@id", "@type", _LEFT, _OPERATOR, _RIGHT}, "a constraint")
    left = _iri(_one(node, _LEFT, "a constraint's leftOperand"), "a leftOperand")
    if left not in _OPERANDS:
        raise TermsError(
            f"unsupported constraint {left!r}: supported are odrl:purpose, odrl:spatial, "
            "odrl:elapsedTime and odrl:dateTime"
        )
    operand = left[len(ODRL_NS) :]
    operator = _operator(_iri(_one(node, _OPERATOR, "a constraint's operator"), "an operator"))
    values = _values(node.get(_RIGHT, []))
    if not values:
        raise TermsError(f"the {operand!r} constraint has no rightOperand")
    return _RIGHT_OPERANDS[operand](operator, values)


def _operator(iri: str) -> str:
    if not iri.startswith(ODRL_NS):
        raise TermsError(f"unknown operator {iri!r}: operators are ODRL's (odrl:isAnyOf, ...)")
    return iri[len(ODRL_NS) :]


def _values(values: Iterable[Any]) -> list[Any]:
    """Right-operand values, with an ``@list`` (an ordered list) read as its members."""
    out: list[Any] = []
    for value in values:
        out.extend(value["@list"] if isinstance(value, dict) and "@list" in value else [value])
    return out


def _set_constraint(
    operand: str, convert: Callable[[Any], str]
) -> Callable[[str, list[Any]], dict[str, Any]]:
    def read(operator: str, values: list[Any]) -> dict[str, Any]:
        if operator == "eq" and len(values) == 1:
            operator = "isAnyOf"  # "purpose eq X" says the same as "purpose isAnyOf [X]"
        right = [convert(value) for value in values]
        return {"leftOperand": operand, "operator": operator, "rightOperand": right}

    return read


def _purpose(value: Any) -> str:
    iri = value.get("@id") if isinstance(value, dict) else None
    if not isinstance(iri, str) or not iri.startswith(PROJECT_NS):
        raise TermsError(
            f"a purpose is an IRI like {project(PURPOSES[0])} (known: {list(PURPOSES)}), "
            f"got {_show(value)}"
        )
    return iri[len(PROJECT_NS) :]


def _territory(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("@id"), str):
        iri: str = value["@id"]
        if iri.startswith(TERRITORY_PREFIX):
            return iri[len(TERRITORY_PREFIX) :]
    # Plain ISO 3166-1 codes, as many hand-written policies give them, are unambiguous too.
    code = _plain(value)
    if code is not None and _CODE.fullmatch(code):
        return code
    raise TermsError(
        f"a territory is an ISO 3166-1 IRI like {TERRITORY_PREFIX}DE (or the code 'DE'), "
        f"got {_show(value)}"
    )


def _duration(operator: str, values: list[Any]) -> dict[str, Any]:
    right = _single_literal(values, ELAPSED_TIME, xsd("duration"))
    return {"leftOperand": ELAPSED_TIME, "operator": operator, "rightOperand": right}


def _date_time(operator: str, values: list[Any]) -> dict[str, Any]:
    text = _single_literal(values, _DATE_TIME, xsd("dateTime"))
    return {"leftOperand": _DATE_TIME, "operator": operator, "rightOperand": _utc_millis(text)}


_RIGHT_OPERANDS: dict[str, Callable[[str, list[Any]], dict[str, Any]]] = {
    PURPOSE: _set_constraint(PURPOSE, _purpose),
    SPATIAL: _set_constraint(SPATIAL, _territory),
    ELAPSED_TIME: _duration,
    _DATE_TIME: _date_time,
}


def _single_literal(values: list[Any], operand: str, datatype: str) -> str:
    if len(values) != 1:
        raise TermsError(f"the {operand!r} constraint takes one value, got {len(values)}")
    value = values[0]
    text = _plain(value, datatype)
    if text is None:
        raise TermsError(
            f"the {operand!r} constraint takes an {datatype} value, got {_show(value)}"
        )
    return text


def _utc_millis(text: str) -> str:
    """An xsd:dateTime with a time zone, as RFC 3339 UTC with milliseconds."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or moment.microsecond % 1000:
        raise TermsError(
            f"a dateTime must have a time zone and at most millisecond precision, got {text!r}"
        )
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _price(refinements: list[Any]) -> Price:
    if len(refinements) != 1:
        raise TermsError("a compensate duty needs exactly one refinement: payAmount eq <credits>")
    node = _node(refinements[0], "a payAmount refinement")
    _only(node, {"@id", "@type", _LEFT, _OPERATOR, _RIGHT, odrl("unit")}, "a refinement")
    left = _iri(_one(node, _LEFT, "a refinement's leftOperand"), "a leftOperand")
    operator = _iri(_one(node, _OPERATOR, "a refinement's operator"), "an operator")
    if left != odrl(_PAY_AMOUNT) or operator != odrl("eq"):
        raise TermsError("a compensate duty is refined by 'payAmount eq <credits>'")
    unit = _one(node, odrl("unit"), "the unit of a payAmount")
    if (unit.get("@id") if isinstance(unit, dict) else None) != CREDIT and _plain(unit) != CREDIT:
        raise TermsError(f"prices are in exchange credits (unit {CREDIT}), got {_show(unit)}")
    text = _single_literal(node.get(_RIGHT, []), _PAY_AMOUNT, xsd("decimal"))
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount != amount.to_integral_value():
        raise TermsError(f"a price is a whole number of credits, got {text!r}")
    return Price(int(amount))


def _one(node: Mapping[str, Any], key: str, what: str) -> Any:
    values = node.get(key, [])
    if len(values) != 1:
        raise FormatError(f"{what} must have exactly one value, got {len(values)}")
    return values[0]


def _iri(value: object, what: str) -> str:
    iri = value.get("@id") if isinstance(value, dict) else None
    if not isinstance(iri, str):
        raise FormatError(f"{what} must be an IRI, got {_show(value)}")
    return iri


def _plain(value: object, datatype: str | None = None) -> str | None:
    """The text of a string literal, untyped or typed ``datatype``; None for anything else."""
    if not isinstance(value, dict) or not isinstance(value.get("@value"), str):
        return None
    if value.get("@type") not in (None, datatype, xsd("string")) or "@language" in value:
        return None
    text: str = value["@value"]
    return text


def _optional_literal(node: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in node:
        return None
    value = _one(node, key, what)
    if not isinstance(value, dict) or "@value" not in value:
        raise FormatError(f"{what} must be a literal, got {_show(value)}")
    return value["@value"]


def _show(value: object) -> str:
    if isinstance(value, dict) and "@id" in value:
        return f"the IRI {value['@id']!r}"
    if isinstance(value, dict) and "@value" in value:
        return f"the literal {value['@value']!r}"
    return repr(value)
