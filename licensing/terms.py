"""Licence terms: what a licensee may do with a dataset version, ODRL 2.2-shaped.

A :class:`Terms` value is the rights part of an offer or agreement. Its JSON form (``to_json``)
uses ODRL's own compact vocabulary — ``permission``, ``prohibition``, ``duty``, ``constraint``,
``action``, ``leftOperand``, ``operator``, ``rightOperand`` — and is canonical: one value, one
form, so it can be signed inside ledger statements and compared byte for byte::

    {"permission": [
        {"action": "use",
         "constraint": [
            {"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": ["training"]},
            {"leftOperand": "spatial", "operator": "isAnyOf", "rightOperand": ["DE", "FR"]},
            {"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": "P365D"}],
         "duty": [{"action": "attribute", "notice": "(c) Acme Corpora"}]},
        {"action": "derive", "duty": [{"action": "shareAlike"}]}],
     "prohibition": [{"action": "commercialize"}, {"action": "distribute"}],
     "licence": "CC-BY-SA-4.0"}

The actions are ODRL's ``use``, ``commercialize``, ``derive`` and ``distribute``, plus the duties
``attribute`` (ODRL) and ``shareAlike`` (this project's). Every action that is not permitted is
prohibited, and the canonical form says so explicitly. ``docs/licensing.md`` is normative.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.canonical import canonical_bytes
from licensing.errors import TermsError

TRAINING, FINE_TUNING, EVALUATION, RESEARCH = "training", "fine-tuning", "evaluation", "research"
PURPOSES: tuple[str, ...] = (TRAINING, FINE_TUNING, EVALUATION, RESEARCH)
"""The purposes a licence can permit, in their canonical order."""

USE, COMMERCIALIZE, DERIVE, DISTRIBUTE = "use", "commercialize", "derive", "distribute"
ACTIONS: tuple[str, ...] = (USE, COMMERCIALIZE, DERIVE, DISTRIBUTE)
ATTRIBUTE, SHARE_ALIKE = "attribute", "shareAlike"

PURPOSE, SPATIAL, ELAPSED_TIME = "purpose", "spatial", "elapsedTime"
MAX_DAYS = 36_600  # a hundred years: beyond that, say "no limit"
MAX_NOTICE = 500
MAX_LICENCE = 200

_TERRITORY = re.compile(r"^[A-Z]{2}$")  # ISO 3166-1 alpha-2
_DURATION = re.compile(r"^P([1-9][0-9]{0,4})D$")
_CONSTRAINT_OPERATORS = {PURPOSE: "isAnyOf", SPATIAL: "isAnyOf", ELAPSED_TIME: "lteq"}
_DUTIES = {USE: ATTRIBUTE, DERIVE: SHARE_ALIKE}  # the one duty each action may carry


@dataclass(frozen=True)
class Price:
    """A price in exchange credits (whole credits: money is never a float)."""

    amount: int
    currency: str = "credits"

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool) or self.amount < 0:
            raise TermsError(f"a price must be a whole, non-negative number, got {self.amount!r}")
        if self.currency != "credits":
            raise TermsError(f"prices are in exchange credits, not {self.currency!r}")

    def to_json(self) -> dict[str, Any]:
        return {"amount": self.amount, "currency": self.currency}

    @classmethod
    def from_json(cls, value: object) -> Price:
        if not isinstance(value, dict) or not set(value) <= {"amount", "currency"}:
            raise TermsError("a price is an object with 'amount' (and optionally 'currency')")
        if "amount" not in value:
            raise TermsError("a price needs an 'amount'")
        return cls(value["amount"], value.get("currency", "credits"))


@dataclass(frozen=True)
class Terms:
    """What a licensee may do; every field has a safe default except the purposes.

    ``territories`` None means anywhere; ``duration_days`` None means no time limit beyond the
    agreement's own dates; ``attribution`` lists notices the licensee must reproduce.
    """

    purposes: frozenset[str] = frozenset(PURPOSES)
    commercial: bool = False
    derivation: bool = False
    redistribution: bool = False
    territories: frozenset[str] | None = None
    duration_days: int | None = None
    attribution: tuple[str, ...] = ()
    share_alike: bool = False
    licence: str | None = None
    _json: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "purposes", frozenset(self.purposes))
        if self.territories is not None:
            object.__setattr__(self, "territories", frozenset(self.territories))
        object.__setattr__(self, "attribution", tuple(dict.fromkeys(self.attribution)))
        _check(self)

    # -- questions ---------------------------------------------------------------------------

    def permits_purpose(self, purpose: str) -> bool:
        return purpose in self.purposes

    def permits_territory(self, territory: str | None) -> bool:
        """Anywhere-terms permit an unknown territory; territory-limited terms need one named."""
        if self.territories is None:
            return True
        return territory is not None and territory.upper() in self.territories

    def digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON: the identity of these terms."""
        return hashlib.sha256(canonical_bytes(self.to_json())).hexdigest()

    # -- the canonical ODRL-shaped JSON ------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        if not self._json:
            object.__setattr__(self, "_json", _to_json(self))
        copied: dict[str, Any] = _copy(self._json)
        return copied

    @classmethod
    def from_json(cls, value: object) -> Terms:
        """Parse ODRL-shaped terms (rules in any order); raise ``TermsError`` saying what is wrong.

        Actions not mentioned are prohibited. An action both permitted and prohibited, a rule
        given twice, an unknown action, operand, operator or value are errors.
        """
        return _parse(value)


def _check(terms: Terms) -> None:
    if not terms.purposes:
        raise TermsError("terms must permit at least one purpose")
    unknown = sorted(p for p in terms.purposes if p not in PURPOSES)
    if unknown:
        raise TermsError(f"unknown purpose(s) {unknown}: known purposes are {list(PURPOSES)}")
    if terms.territories is not None:
        if not terms.territories:
            raise TermsError("a territory constraint must name at least one territory")
        bad = sorted(t for t in terms.territories if not _TERRITORY.fullmatch(str(t)))
        if bad:
            raise TermsError(f"territories must be ISO 3166-1 alpha-2 codes like 'DE', got {bad}")
    days = terms.duration_days
    if days is not None and (
        not isinstance(days, int) or isinstance(days, bool) or not 0 < days <= MAX_DAYS
    ):
        raise TermsError(f"a duration must be 1 to {MAX_DAYS} days, got {days!r}")
    for notice in terms.attribution:
        if not isinstance(notice, str) or not notice.strip() or len(notice) > MAX_NOTICE:
            raise TermsError(f"an attribution notice must be 1-{MAX_NOTICE} characters of text")
    if terms.share_alike and not terms.derivation:
        raise TermsError("a share-alike duty applies to derivatives, but derivation is prohibited")
    if terms.licence is not None and (
        not isinstance(terms.licence, str)
        or not terms.licence.strip()
        or len(terms.licence) > MAX_LICENCE
    ):
        raise TermsError(f"a licence must be a name or SPDX expression of 1-{MAX_LICENCE} chars")


def _permitted(terms: Terms) -> dict[str, bool]:
    return {
        USE: True,
        COMMERCIALIZE: terms.commercial,
        DERIVE: terms.derivation,
        DISTRIBUTE: terms.redistribution,
    }


def _to_json(terms: Terms) -> dict[str, Any]:
    use: dict[str, Any] = {"action": USE}
    constraints: list[dict[str, Any]] = []
    if terms.purposes != frozenset(PURPOSES):
        constraints.append(
            _constraint(PURPOSE, [p for p in PURPOSES if p in terms.purposes]),
        )
    if terms.territories is not None:
        constraints.append(_constraint(SPATIAL, sorted(terms.territories)))
    if terms.duration_days is not None:
        constraints.append(_constraint(ELAPSED_TIME, f"P{terms.duration_days}D"))
    if constraints:
        use["constraint"] = constraints
    if terms.attribution:
        use["duty"] = [{"action": ATTRIBUTE, "notice": notice} for notice in terms.attribution]
    permissions: list[dict[str, Any]] = [use]
    prohibitions: list[dict[str, Any]] = []
    for action, allowed in _permitted(terms).items():
        if action == USE:
            continue
        rule: dict[str, Any] = {"action": action}
        if action == DERIVE and terms.share_alike:
            rule["duty"] = [{"action": SHARE_ALIKE}]
        (permissions if allowed else prohibitions).append(rule)
    value: dict[str, Any] = {"permission": permissions}
    if prohibitions:
        value["prohibition"] = prohibitions
    if terms.licence is not None:
        value["licence"] = terms.licence
    return value


def _constraint(operand: str, right: object) -> dict[str, Any]:
    operator = _CONSTRAINT_OPERATORS[operand]
    return {"leftOperand": operand, "operator": operator, "rightOperand": right}


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# -- parsing --------------------------------------------------------------------------------


def _parse(value: object) -> Terms:
    if not isinstance(value, dict):
        raise TermsError("terms must be a JSON object with 'permission' (and 'prohibition')")
    _only(value, {"permission", "prohibition", "licence"}, "terms")
    permissions = _rules(value.get("permission"), "permission", required=True)
    prohibitions = _rules(value.get("prohibition", []), "prohibition", required=False)
    permitted: dict[str, Mapping[str, Any]] = {}
    for rule in permissions:
        action = _action(rule, "permission")
        if action in permitted:
            raise TermsError(f"the permission to {action!r} is given twice")
        _only(rule, {"action", "constraint", "duty"}, f"permission {action!r}")
        permitted[action] = rule
    prohibited: set[str] = set()
    for rule in prohibitions:
        action = _action(rule, "prohibition")
        _only(rule, {"action"}, f"prohibition {action!r}")
        if action == USE:
            raise TermsError("prohibiting 'use' leaves nothing to license")
        if action in prohibited:
            raise TermsError(f"the prohibition of {action!r} is given twice")
        if action in permitted:
            raise TermsError(f"{action!r} is both permitted and prohibited")
        prohibited.add(action)
    if USE not in permitted:
        raise TermsError("terms must permit 'use' (with the purposes it is permitted for)")
    for action, rule in permitted.items():
        if action != USE and "constraint" in rule:
            raise TermsError(f"constraints apply to 'use' only, not to {action!r}")
    constraints = _constraints(permitted[USE].get("constraint", []))
    # Every permission's duties are checked: a duty on an action that carries none must not
    # vanish silently.
    duties = {action: _duties(rule, action) for action, rule in permitted.items()}
    attribution = duties[USE]
    share_alike = bool(duties.get(DERIVE))
    licence = value.get("licence")
    if licence is not None and not isinstance(licence, str):
        raise TermsError("'licence' must be a string (a licence name or SPDX expression)")
    return Terms(
        purposes=frozenset(constraints.get(PURPOSE, PURPOSES)),
        commercial=COMMERCIALIZE in permitted,
        derivation=DERIVE in permitted,
        redistribution=DISTRIBUTE in permitted,
        territories=frozenset(constraints[SPATIAL]) if SPATIAL in constraints else None,
        duration_days=constraints.get(ELAPSED_TIME),
        attribution=tuple(attribution),
        share_alike=share_alike,
        licence=licence,
    )


def _only(value: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise TermsError(f"{what} has unknown field(s) {unknown}: allowed are {sorted(allowed)}")


def _rules(value: object, what: str, *, required: bool) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or (required and not value):
        raise TermsError(f"'{what}' must be a {'non-empty ' if required else ''}list of rules")
    for rule in value:
        if not isinstance(rule, dict):
            raise TermsError(f"each {what} must be an object with an 'action'")
    return value


def _action(rule: Mapping[str, Any], what: str) -> str:
    action = rule.get("action")
    if action not in ACTIONS:
        raise TermsError(
            f"unknown action {action!r} in a {what}: known actions are {list(ACTIONS)}"
        )
    return str(action)


def _constraints(value: object) -> dict[str, Any]:
    if not isinstance(value, list):
        raise TermsError("'constraint' must be a list")
    found: dict[str, Any] = {}
    for constraint in value:
        if not isinstance(constraint, dict):
            raise TermsError("each constraint must be an object")
        _only(constraint, {"leftOperand", "operator", "rightOperand"}, "a constraint")
        operand = constraint.get("leftOperand")
        if operand not in _CONSTRAINT_OPERATORS:
            raise TermsError(
                f"unknown constraint {operand!r}: known are {sorted(_CONSTRAINT_OPERATORS)}"
            )
        if operand in found:
            raise TermsError(f"the {operand!r} constraint is given twice")
        operator = constraint.get("operator")
        if operator != _CONSTRAINT_OPERATORS[operand]:
            raise TermsError(
                f"the {operand!r} constraint takes the operator "
                f"{_CONSTRAINT_OPERATORS[operand]!r}, not {operator!r}"
            )
        found[operand] = _right_operand(operand, constraint.get("rightOperand"))
    return found


def _right_operand(operand: str, right: object) -> Any:
    if operand == ELAPSED_TIME:
        match = _DURATION.fullmatch(right) if isinstance(right, str) else None
        if match is None:
            raise TermsError(f"elapsedTime must be a number of days like 'P365D', got {right!r}")
        return int(match.group(1))
    if not isinstance(right, list) or not right or not all(isinstance(v, str) for v in right):
        raise TermsError(f"the {operand!r} constraint needs a non-empty list of strings")
    if len(set(right)) != len(right):
        raise TermsError(f"the {operand!r} constraint names a value twice")
    return right


def _duties(rule: Mapping[str, Any], action: str) -> list[str]:
    duties = rule.get("duty", [])
    if not isinstance(duties, list):
        raise TermsError(f"the duties of {action!r} must be a list")
    notices: list[str] = []
    for duty in duties:
        if not isinstance(duty, dict):
            raise TermsError(f"each duty of {action!r} must be an object with an 'action'")
        expected = _DUTIES.get(action)
        if duty.get("action") != expected:
            raise TermsError(
                f"{action!r} can carry only the duty {expected!r}, not {duty.get('action')!r}"
                if expected
                else f"{action!r} carries no duties"
            )
        if expected == ATTRIBUTE:
            _only(duty, {"action", "notice"}, "an attribution duty")
            notice = duty.get("notice")
            if not isinstance(notice, str):
                raise TermsError("an attribution duty needs a 'notice' (the text to reproduce)")
            notices.append(notice)
        else:
            _only(duty, {"action"}, "a share-alike duty")
            notices.append(SHARE_ALIKE)
    if action == DERIVE and len(notices) > 1:
        raise TermsError("the share-alike duty is given twice")
    if len(set(notices)) != len(notices):
        raise TermsError(f"a duty of {action!r} is given twice")
    return notices


def describe(terms: Terms) -> str:
    """One line a person can read, e.g. 'training, evaluation; non-commercial; no derivatives'."""
    parts = [", ".join(p for p in PURPOSES if p in terms.purposes)]
    parts.append("commercial" if terms.commercial else "non-commercial")
    parts.append("derivatives" + (" (share-alike)" if terms.share_alike else ""))
    if not terms.derivation:
        parts[-1] = "no derivatives"
    parts.append("redistribution" if terms.redistribution else "no redistribution")
    if terms.territories is not None:
        parts.append("in " + " ".join(sorted(terms.territories)))
    if terms.duration_days is not None:
        parts.append(f"{terms.duration_days} days")
    if terms.attribution:
        parts.append("attribution required")
    return "; ".join(parts)


def merge_notices(*groups: Iterable[str]) -> tuple[str, ...]:
    """Attribution notices of several sources, each once, in first-seen order."""
    return tuple(dict.fromkeys(notice for group in groups for notice in group))
