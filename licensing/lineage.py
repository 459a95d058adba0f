"""Lineage: a derived version (filtered, deduplicated, merged) carries its sources' restrictions.

:func:`inherit` combines the terms under which the deriver holds each source into the tightest
terms the derived version may be used under; :func:`check_carried_over` refuses an offer whose
proposed terms for the derived version are looser than that. ``docs/evaluation.md`` has the
rules as a table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce

from licensing.errors import LineageError
from licensing.terms import PURPOSES, Terms, merge_notices


@dataclass(frozen=True)
class Source:
    """One source of a derived version and the terms under which the deriver holds it."""

    version: str
    terms: Terms
    agreement: str | None = None

    @property
    def label(self) -> str:
        held = f"agreement {self.agreement}" if self.agreement else "its public licence"
        return f"source {self.version} (under {held})"


def inherit(sources: Sequence[Source], *, offered: bool = False) -> Terms:
    """The terms a version derived from ``sources`` inherits; ``offered``: it is to be offered
    to others (which is redistribution of the sources).

    Raises ``LineageError`` listing every source that forbids the derivation and every way the
    sources cannot be combined.
    """
    if not sources:
        raise LineageError("a derived version needs at least one source")
    problems = [problem for source in sources for problem in _refusals(source, offered=offered)]
    purposes = frozenset.intersection(*(s.terms.purposes for s in sources))
    if not purposes:
        problems.append("no purpose is common to all sources: " + _each(sources, _purposes))
    territories = _territories(sources)
    if territories is not None and not territories:
        problems.append("the sources' territories do not intersect: " + _each(sources, _places))
    share_alike = [s for s in sources if s.terms.share_alike]
    if len({s.terms.licence for s in share_alike}) > 1:
        problems.append(
            "the sources carry share-alike duties under different licences: "
            + _each(
                share_alike,
                lambda t: (
                    f"share-alike under {t.licence!r}"
                    if t.licence
                    else "share-alike, naming no licence"
                ),
            )
        )
    if problems:
        raise LineageError("; ".join(problems))
    return Terms(
        purposes=purposes,
        commercial=all(s.terms.commercial for s in sources),
        derivation=True,  # every source permits it, or we refused above
        redistribution=all(s.terms.redistribution for s in sources),
        territories=territories,
        duration_days=min(
            (s.terms.duration_days for s in sources if s.terms.duration_days is not None),
            default=None,
        ),
        attribution=merge_notices(*(s.terms.attribution for s in sources)),
        share_alike=bool(share_alike),
        licence=_licence(sources, share_alike),
    )


def looser_than(proposed: Terms, inherited: Terms) -> tuple[str, ...]:
    """Every way ``proposed`` permits more than ``inherited``, one phrase each (empty: none)."""
    found: list[str] = []
    if proposed.commercial and not inherited.commercial:
        found.append("commercial use, but a source is non-commercial")
    beyond = [p for p in PURPOSES if p in proposed.purposes - inherited.purposes]
    if beyond:
        found.append(
            f"purpose(s) {', '.join(beyond)}, but the sources permit {_purposes(inherited)} only"
        )
    if inherited.territories is not None:
        if proposed.territories is None:
            found.append(f"use anywhere, but the sources permit use {_places(inherited)} only")
        elif proposed.territories - inherited.territories:
            extra = " ".join(sorted(proposed.territories - inherited.territories))
            found.append(f"territory {extra}, but the sources permit use {_places(inherited)} only")
    missing = [n for n in inherited.attribution if n not in proposed.attribution]
    if missing:
        found.append("missing attribution notice(s) " + ", ".join(repr(n) for n in missing))
    if inherited.share_alike and not proposed.share_alike:
        found.append("the share-alike duty is dropped")
    elif inherited.share_alike and proposed.licence != inherited.licence:
        found.append(
            f"the share-alike licence is changed from {inherited.licence!r} to {proposed.licence!r}"
        )
    if proposed.derivation and not inherited.derivation:
        found.append("derivatives, but a source forbids them")
    if proposed.redistribution and not inherited.redistribution:
        found.append("redistribution, but a source forbids it")
    if inherited.duration_days is not None and (
        proposed.duration_days is None or proposed.duration_days > inherited.duration_days
    ):
        longer = (
            "no time limit" if proposed.duration_days is None else f"{proposed.duration_days} days"
        )
        found.append(f"{longer}, but the sources allow {inherited.duration_days} days")
    return tuple(found)


def check_carried_over(proposed: Terms, inherited: Terms) -> None:
    """Refuse proposed terms for a derived version that are looser than the inherited ones."""
    found = looser_than(proposed, inherited)
    if found:
        raise LineageError(
            "the proposed terms are looser than the sources allow: " + "; ".join(found)
        )


def _refusals(source: Source, *, offered: bool) -> list[str]:
    found = []
    if not source.terms.derivation:
        found.append(f"{source.label} forbids derivatives")
    if offered and not source.terms.redistribution:
        found.append(f"{source.label} forbids redistribution, so a derivative cannot be offered")
    return found


def _territories(sources: Sequence[Source]) -> frozenset[str] | None:
    limited = [s.terms.territories for s in sources if s.terms.territories is not None]
    return reduce(frozenset.intersection, limited) if limited else None


def _licence(sources: Sequence[Source], share_alike: Sequence[Source]) -> str | None:
    # Share-alike decides the licence; otherwise one licence common to all sources is kept, and
    # sources under different licences leave the derived terms without a single licence name.
    if share_alike:
        return share_alike[0].terms.licence
    licences = {s.terms.licence for s in sources}
    return licences.pop() if len(licences) == 1 else None


def _each(sources: Sequence[Source], show: Callable[[Terms], str]) -> str:
    return ", ".join(f"{s.label} permits {show(s.terms)}" for s in sources)


def _purposes(terms: Terms) -> str:
    return ", ".join(p for p in PURPOSES if p in terms.purposes)


def _places(terms: Terms) -> str:
    return "anywhere" if terms.territories is None else "in " + " ".join(sorted(terms.territories))
