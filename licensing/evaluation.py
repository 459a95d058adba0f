"""The evaluation engine: may member M use version V for purpose P, in territory T, at time T?

The engine sees agreements as :class:`Grant` values (the exchange builds them from its tables)
and answers a :class:`Use` with a :class:`Decision` that says which agreement permits it and
which rules it satisfies — or, for every agreement that could have applied, why it does not.
The question is answered *historically*: a use at time T is judged by the agreements as they
stood at T, so a use before a revocation stays permitted after it.

The rules, normative in ``docs/evaluation.md``:

- A grant is a *candidate* for a use when its target is exactly the version and its assignee is
  the member, or nobody (a public licence on the version). Dataset-level offers are resolved to
  versions by the exchange, not here.
- A candidate is *in force* at T when ``valid_from <= T`` and T is before its end: the first of
  ``valid_until`` (exclusive), ``valid_from`` + the terms' duration (exclusive) and
  ``revoked_at`` (a revocation takes effect at that instant).
- An in-force candidate permits the use when the purpose is one of its purposes, the use is not
  commercial or the terms permit commercial use, and the territory is one its terms permit
  (``Terms.permits_territory``: anywhere-terms permit an unnamed territory, territory-limited
  terms need one named).
- Any permitting candidate permits. The one named is the one in force longest (latest end; no
  end is longest), then the member's own agreement before a public licence, then the smallest
  agreement id.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from ledger.entry import format_time, is_member_id
from licensing.errors import TermsError
from licensing.terms import COMMERCIALIZE, ELAPSED_TIME, PURPOSE, PURPOSES, SPATIAL, USE, Terms

PERMITTED = "permitted"
NOT_COVERED = "not_covered"
NOT_YET_VALID = "not_yet_valid"
EXPIRED = "expired"
REVOKED = "revoked"
PURPOSE_DENIED = "purpose"
COMMERCIAL_DENIED = "commercial"
TERRITORY_DENIED = "territory"

DENY_CODES: tuple[str, ...] = (
    PURPOSE_DENIED,
    COMMERCIAL_DENIED,
    TERRITORY_DENIED,
    NOT_YET_VALID,
    EXPIRED,
    REVOKED,
    NOT_COVERED,
)
"""Every deny code, from the most specific (a rule of an agreement in force) to the least."""

REASON_CODES: tuple[str, ...] = (PERMITTED, *DENY_CODES)

VERSION_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
_TERRITORY = re.compile(r"^[A-Za-z]{2}$")
_NEVER = float("inf")


def is_version_id(value: object) -> bool:
    return isinstance(value, str) and bool(VERSION_ID.fullmatch(value))


def _aware(moment: object, what: str) -> None:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise TermsError(f"{what} must be a timezone-aware datetime, got {moment!r}")


@dataclass(frozen=True)
class Grant:
    """An agreement as the engine sees it: who may use which version, under what, when."""

    agreement: str
    assignee: str | None
    target: str
    terms: Terms
    valid_from: datetime
    valid_until: datetime | None
    revoked_at: datetime | None = None
    revocation_reason: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.agreement, str) or not self.agreement:
            raise TermsError("a grant needs its agreement id")
        what = f"agreement {self.agreement}"
        if self.assignee is not None and not is_member_id(self.assignee):
            raise TermsError(f"{what}: the assignee must be a member id or None (anyone)")
        if not is_version_id(self.target):
            raise TermsError(f"{what}: the target must be a version id 'sha256:<64 hex>'")
        if not isinstance(self.terms, Terms):
            raise TermsError(f"{what}: terms must be a Terms value")
        _aware(self.valid_from, f"{what}: valid_from")
        if self.valid_until is not None:
            _aware(self.valid_until, f"{what}: valid_until")
            if self.valid_until <= self.valid_from:
                raise TermsError(f"{what}: valid_until must be after valid_from")
        if self.revoked_at is not None:
            _aware(self.revoked_at, f"{what}: revoked_at")
        elif self.revocation_reason is not None:
            raise TermsError(f"{what}: a revocation reason without a revocation time")

    @property
    def expires_at(self) -> datetime | None:
        """The end of validity, revocation aside: valid_until or the duration's end, earliest."""
        ends = [self.valid_until] if self.valid_until is not None else []
        if self.terms.duration_days is not None:
            ends.append(self.valid_from + timedelta(days=self.terms.duration_days))
        return min(ends) if ends else None

    @property
    def ends_at(self) -> datetime | None:
        """When the grant stops permitting anything: expiry or revocation, whichever is first."""
        ends = [end for end in (self.expires_at, self.revoked_at) if end is not None]
        return min(ends) if ends else None

    def in_force(self, at: datetime) -> bool:
        end = self.ends_at
        return self.valid_from <= at and (end is None or at < end)


@dataclass(frozen=True)
class Use:
    """One question: may ``member`` use ``version`` for ``purpose`` at ``at``?"""

    member: str
    version: str
    purpose: str
    commercial: bool
    territory: str | None
    at: datetime

    def __post_init__(self) -> None:
        if not is_member_id(self.member):
            raise TermsError(f"a use needs a member id, got {self.member!r}")
        if not is_version_id(self.version):
            raise TermsError(f"a use needs a version id 'sha256:<64 hex>', got {self.version!r}")
        if self.purpose not in PURPOSES:
            raise TermsError(
                f"unknown purpose {self.purpose!r}: known purposes are {list(PURPOSES)}"
            )
        if not isinstance(self.commercial, bool):
            raise TermsError("'commercial' must be true or false")
        if self.territory is not None:
            if not isinstance(self.territory, str) or not _TERRITORY.fullmatch(self.territory):
                raise TermsError(
                    f"a territory must be an ISO 3166-1 alpha-2 code like 'DE', "
                    f"got {self.territory!r}"
                )
            object.__setattr__(self, "territory", self.territory.upper())
        _aware(self.at, "the time of a use")

    def for_version(self, version: str) -> Use:
        """The same question about another version (checks only the version id)."""
        if not is_version_id(version):
            raise TermsError(f"a use needs a version id 'sha256:<64 hex>', got {version!r}")
        # Skips re-checking the rest, which is what makes a 10,000-version check cheap.
        other = object.__new__(Use)
        other.__dict__.update(self.__dict__, version=version)
        return other

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "version": self.version,
            "purpose": self.purpose,
            "commercial": self.commercial,
            "territory": self.territory,
            "at": format_time(self.at),
        }


@dataclass(frozen=True)
class Reason:
    """One line of a decision: a rule satisfied, or why an agreement does not permit the use."""

    code: str
    message: str
    agreement: str | None = None
    rule: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "agreement": self.agreement,
            "rule": self.rule,
        }


@dataclass(frozen=True)
class Decision:
    """The answer to a use: permitted or not, by which agreement, and why."""

    permitted: bool
    use: Use
    agreement: str | None
    reasons: tuple[Reason, ...]
    attribution: tuple[str, ...] = ()
    """The attribution notices the permitting agreement requires the user to reproduce."""

    @property
    def code(self) -> str:
        """``permitted``, or the code of the first (most specific) deny reason."""
        return PERMITTED if self.permitted else self.reasons[0].code

    def to_json(self) -> dict[str, Any]:
        return {
            "permitted": self.permitted,
            "use": self.use.to_json(),
            "agreement": self.agreement,
            "reasons": [reason.to_json() for reason in self.reasons],
            "attribution": list(self.attribution),
        }


def may(use: Use, grants: Iterable[Grant]) -> Decision:
    """Decide ``use`` against any grants; only the candidates among them matter."""
    return _decide(use, [g for g in grants if _is_candidate(g, use)])


class GrantIndex:
    """Grants indexed by (assignee, version): a decision costs O(candidates), not O(grants)."""

    def __init__(self, grants: Iterable[Grant]) -> None:
        self._by_key: dict[tuple[str | None, str], list[Grant]] = defaultdict(list)
        for grant in grants:
            self._by_key[(grant.assignee, grant.target)].append(grant)

    def candidates(self, member: str, version: str) -> list[Grant]:
        """The member's own grants on the version, then the public ones."""
        return self._by_key.get((member, version), []) + self._by_key.get((None, version), [])

    def decide(self, use: Use) -> Decision:
        return _decide(use, self.candidates(use.member, use.version))

    def __len__(self) -> int:
        return sum(len(grants) for grants in self._by_key.values())


# -- the decision ---------------------------------------------------------------------------


def _is_candidate(grant: Grant, use: Use) -> bool:
    return grant.target == use.version and grant.assignee in (use.member, None)


def _decide(use: Use, candidates: Sequence[Grant]) -> Decision:
    judged = [(grant, _denials(grant, use)) for grant in candidates]
    permitting = [grant for grant, denials in judged if not denials]
    if permitting:
        chosen = min(permitting, key=_preference)
        return Decision(
            True,
            use,
            chosen.agreement,
            _permit_reasons(chosen, use),
            chosen.terms.attribution,
        )
    if not candidates:
        return Decision(False, use, None, (_not_covered(use),))
    judged.sort(key=_specificity)
    return Decision(False, use, None, tuple(r for _, denials in judged for r in denials))


def _preference(grant: Grant) -> tuple[float, bool, str]:
    end = grant.ends_at
    return (
        -(end.timestamp() if end is not None else _NEVER),
        grant.assignee is None,
        grant.agreement,
    )


_TEMPORAL_RANK = {NOT_YET_VALID: 1, EXPIRED: 2, REVOKED: 3}  # rules of an agreement in force: 0


def _specificity(judged: tuple[Grant, tuple[Reason, ...]]) -> tuple[bool, int, int, str]:
    """Sort key for denials: the member's own before public, in force before not, fewer
    failing rules before more, then agreement id."""
    grant, denials = judged
    return (
        grant.assignee is None,
        _TEMPORAL_RANK.get(denials[0].code, 0),
        len(denials),
        grant.agreement,
    )


def _denials(grant: Grant, use: Use) -> tuple[Reason, ...]:
    """Why ``grant`` does not permit ``use``: one temporal reason, or every rule that fails."""
    temporal = _temporal_denial(grant, use.at)
    if temporal is not None:
        return (_temporal_reason(grant, temporal, use.at),)
    return _rule_denials(grant, use)


def _temporal_denial(grant: Grant, at: datetime) -> str | None:
    # An end already passed explains more than a start not yet reached (a grant revoked before
    # it began will never be valid); of two ends passed, the earlier is the cause.
    expired = grant.expires_at is not None and at >= grant.expires_at
    revoked = grant.revoked_at is not None and at >= grant.revoked_at
    if expired and revoked:
        assert grant.expires_at is not None and grant.revoked_at is not None
        return EXPIRED if grant.expires_at <= grant.revoked_at else REVOKED
    if expired:
        return EXPIRED
    if revoked:
        return REVOKED
    return NOT_YET_VALID if at < grant.valid_from else None


def _rule_denials(grant: Grant, use: Use) -> tuple[Reason, ...]:
    terms, name, rules = grant.terms, _name(grant), _rules(grant.terms)
    reasons = []
    if not terms.permits_purpose(use.purpose):
        allowed = ", ".join(p for p in PURPOSES if p in terms.purposes)
        reasons.append(
            Reason(
                PURPOSE_DENIED,
                f"{name} permits use for {allowed}, not {use.purpose}",
                grant.agreement,
                _copy(rules[PURPOSE]),
            )
        )
    if use.commercial and not terms.commercial:
        reasons.append(
            Reason(
                COMMERCIAL_DENIED,
                f"{name} prohibits commercial use",
                grant.agreement,
                _copy(rules[COMMERCIALIZE]),
            )
        )
    if not terms.permits_territory(use.territory):
        assert terms.territories is not None
        allowed = ", ".join(sorted(terms.territories))
        asked = use.territory if use.territory is not None else "an unnamed territory"
        reasons.append(
            Reason(
                TERRITORY_DENIED,
                f"{name} permits use in {allowed} only, not in {asked}",
                grant.agreement,
                _copy(rules[SPATIAL]),
            )
        )
    return tuple(reasons)


def _temporal_reason(grant: Grant, code: str, at: datetime) -> Reason:
    name, rules = _name(grant), _rules(grant.terms)
    if code == NOT_YET_VALID:
        message = f"{name} is valid from {format_time(grant.valid_from)}, after {format_time(at)}"
        return Reason(code, message, grant.agreement)
    if code == REVOKED:
        assert grant.revoked_at is not None
        message = f"{name} was revoked at {format_time(grant.revoked_at)}"
        if grant.revocation_reason:
            message += f": {grant.revocation_reason}"
        return Reason(code, message, grant.agreement)
    assert grant.expires_at is not None
    message = f"{name} expired at {format_time(grant.expires_at)}"
    if grant.valid_until is None or grant.expires_at < grant.valid_until:
        # The terms' duration, not the agreement's end date, is what ran out.
        message += f", {grant.terms.duration_days} days after it became valid"
        return Reason(code, message, grant.agreement, _copy(rules[ELAPSED_TIME]))
    return Reason(code, message, grant.agreement)


def _permit_reasons(grant: Grant, use: Use) -> tuple[Reason, ...]:
    terms, name, rules = grant.terms, _name(grant), _rules(grant.terms)
    end = grant.ends_at
    until = f"until {format_time(end)}" if end is not None else "with no end"
    reasons = [
        Reason(
            PERMITTED,
            f"{name} is in force from {format_time(grant.valid_from)} {until}",
            grant.agreement,
        ),
        Reason(
            PERMITTED,
            f"{name} permits use for {use.purpose}",
            grant.agreement,
            _copy(rules[PURPOSE] if PURPOSE in rules else rules[USE]),
        ),
    ]
    if use.commercial:
        reasons.append(
            Reason(
                PERMITTED,
                f"{name} permits commercial use",
                grant.agreement,
                _copy(rules[COMMERCIALIZE]),
            )
        )
    if terms.territories is not None:
        reasons.append(
            Reason(
                PERMITTED,
                f"{name} permits use in {use.territory}",
                grant.agreement,
                _copy(rules[SPATIAL]),
            )
        )
    return tuple(reasons)


def _not_covered(use: Use) -> Reason:
    return Reason(
        NOT_COVERED,
        f"no agreement of {use.member}, and no public licence, covers version {use.version}",
    )


def _name(grant: Grant) -> str:
    return (
        f"agreement {grant.agreement}"
        if grant.assignee is not None
        else f"public licence {grant.agreement}"
    )


@lru_cache(maxsize=8192)
def _rules(terms: Terms) -> dict[str, dict[str, Any]]:
    """The pieces of ``terms.to_json()`` that reasons cite: the ``use`` permission, its
    constraints by operand, and the ``commercialize`` rule (a permission or a prohibition).
    Shared between calls: copy before handing out."""
    value = terms.to_json()
    found: dict[str, dict[str, Any]] = {}
    for rule in value["permission"] + value.get("prohibition", []):
        found[rule["action"]] = rule
    for constraint in found[USE].get("constraint", []):
        found[constraint["leftOperand"]] = constraint
    return found


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
