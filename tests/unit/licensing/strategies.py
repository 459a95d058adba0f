"""Hypothesis strategies for licensing values, shared by the tests of this package."""

from __future__ import annotations

from datetime import datetime

from hypothesis import strategies as st

from licensing.odrl import KINDS, Policy
from licensing.terms import MAX_DAYS, PURPOSES, Price, Terms

HEX = "0123456789abcdef"
members = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
version_ids = st.text(HEX, min_size=64, max_size=64).map(lambda h: "sha256:" + h)
slugs = members  # the same form
notices = st.text(min_size=1, max_size=40).filter(lambda t: bool(t.strip()))
codes = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2)
timestamps = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"
)


@st.composite
def terms(draw: st.DrawFn) -> Terms:
    derivation = draw(st.booleans())
    return Terms(
        purposes=draw(st.frozensets(st.sampled_from(PURPOSES), min_size=1)),
        commercial=draw(st.booleans()),
        derivation=derivation,
        redistribution=draw(st.booleans()),
        territories=draw(st.none() | st.frozensets(codes, min_size=1, max_size=4)),
        duration_days=draw(st.none() | st.integers(1, MAX_DAYS)),
        attribution=tuple(draw(st.lists(notices, max_size=3, unique=True))),
        share_alike=derivation and draw(st.booleans()),
        licence=draw(st.none() | notices),
    )


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    kind = draw(st.sampled_from(KINDS))
    assigner = draw(members) if kind != "Set" else draw(st.none() | members)
    assignee = draw(members) if kind == "Agreement" else draw(st.none() | members)
    window = sorted(draw(st.lists(timestamps, min_size=2, max_size=2, unique=True)))
    return Policy(
        kind=kind,
        uid=f"urn:corpusx:{kind.lower()}:{draw(members)}",
        target=draw(version_ids | slugs),
        terms=draw(terms()),
        assigner=assigner,
        assignee=assignee,
        price=draw(st.none() | st.integers(0, 10**12).map(Price)),
        valid_from=draw(st.sampled_from([None, window[0]])),
        valid_until=draw(st.sampled_from([None, window[1]])),
    )
