"""Lineage: each refusal, each combination rule, each carried-over restriction, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from licensing.errors import LineageError
from licensing.lineage import Source, check_carried_over, inherit, looser_than
from licensing.terms import PURPOSES, Terms

from .builders import V1, V2, V3


def source(v: str = V1, agreement: str | None = "a1", **fields: object) -> Source:
    merged = {"derivation": True, "redistribution": True, "commercial": True, **fields}
    return Source(v, Terms(**merged), agreement)  # type: ignore[arg-type]


# -- refusals -------------------------------------------------------------------------------


def test_no_sources_is_refused() -> None:
    with pytest.raises(LineageError, match="at least one source"):
        inherit([])


def test_a_source_forbidding_derivation_is_named_with_its_agreement() -> None:
    with pytest.raises(LineageError) as caught:
        inherit([source(V1), source(V2, "a2", derivation=False)])
    assert str(caught.value) == f"source {V2} (under agreement a2) forbids derivatives"


def test_a_public_licence_source_is_named_as_such() -> None:
    with pytest.raises(LineageError, match=f"source {V1} \\(under its public licence\\)"):
        inherit([source(V1, None, derivation=False)])


def test_offering_needs_every_source_to_permit_redistribution() -> None:
    sources = [source(V1), source(V2, "a2", redistribution=False)]
    assert not inherit(sources).redistribution  # deriving for one's own use is fine
    with pytest.raises(LineageError) as caught:
        inherit(sources, offered=True)
    assert str(caught.value) == (
        f"source {V2} (under agreement a2) forbids redistribution, "
        "so a derivative cannot be offered"
    )


def test_sources_without_a_common_purpose_are_refused() -> None:
    with pytest.raises(LineageError) as caught:
        inherit([source(V1, purposes={"training"}), source(V2, "a2", purposes={"evaluation"})])
    assert str(caught.value) == (
        "no purpose is common to all sources: "
        f"source {V1} (under agreement a1) permits training, "
        f"source {V2} (under agreement a2) permits evaluation"
    )


def test_sources_with_disjoint_territories_are_refused() -> None:
    with pytest.raises(LineageError, match="territories do not intersect") as caught:
        inherit(
            [source(V1, territories={"DE"}), source(V2, "a2"), source(V3, "a3", territories={"FR"})]
        )
    assert f"source {V1} (under agreement a1) permits in DE" in str(caught.value)
    assert f"source {V2} (under agreement a2) permits anywhere" in str(caught.value)


def test_share_alike_under_two_licences_is_refused() -> None:
    sources = [
        source(V1, share_alike=True, licence="CC-BY-SA-4.0"),
        source(V2, "a2", share_alike=True, licence="ODbL-1.0"),
    ]
    with pytest.raises(LineageError, match="share-alike duties under different licences"):
        inherit(sources)


def test_share_alike_naming_no_licence_does_not_combine_with_a_named_one() -> None:
    sources = [
        source(V1, share_alike=True, licence="CC-BY-SA-4.0"),
        source(V2, "a2", share_alike=True),
    ]
    with pytest.raises(LineageError, match="share-alike, naming no licence"):
        inherit(sources)


def test_every_problem_is_listed_at_once() -> None:
    sources = [
        source(V1, derivation=False, purposes={"training"}),
        source(V2, "a2", redistribution=False, purposes={"research"}),
    ]
    with pytest.raises(LineageError) as caught:
        inherit(sources, offered=True)
    message = str(caught.value)
    assert "forbids derivatives" in message
    assert "forbids redistribution" in message
    assert "no purpose is common" in message


# -- combination ----------------------------------------------------------------------------


def test_the_combination_is_the_tightest_of_the_sources() -> None:
    combined = inherit(
        [
            source(
                V1,
                purposes={"training", "evaluation", "research"},
                territories={"DE", "FR"},
                duration_days=365,
                attribution=("(c) A", "(c) B"),
                licence="CC-BY-4.0",
            ),
            source(
                V2,
                "a2",
                purposes={"training", "research"},
                commercial=False,
                redistribution=False,
                territories={"FR", "IT"},
                duration_days=90,
                attribution=("(c) B", "(c) C"),
                licence="CC-BY-NC-4.0",
            ),
            source(V3, "a3", attribution=("(c) A",)),
        ]
    )
    assert combined == Terms(
        purposes=frozenset({"training", "research"}),
        commercial=False,
        derivation=True,
        redistribution=False,
        territories=frozenset({"FR"}),
        duration_days=90,
        attribution=("(c) A", "(c) B", "(c) C"),
        share_alike=False,
        licence=None,  # different licences, none share-alike: no single licence name
    )


def test_anywhere_sources_leave_the_territory_open() -> None:
    assert inherit([source(V1), source(V2, "a2")]).territories is None
    assert inherit([source(V1), source(V2, "a2", territories={"DE"})]).territories == {"DE"}


def test_no_duration_anywhere_means_none() -> None:
    assert inherit([source(V1), source(V2, "a2")]).duration_days is None
    assert inherit([source(V1), source(V2, "a2", duration_days=30)]).duration_days == 30


def test_share_alike_is_kept_with_its_licence() -> None:
    combined = inherit(
        [
            source(V1, licence="MIT"),
            source(V2, "a2", share_alike=True, licence="CC-BY-SA-4.0"),
            source(V3, "a3", share_alike=True, licence="CC-BY-SA-4.0"),
        ]
    )
    assert combined.share_alike
    assert combined.licence == "CC-BY-SA-4.0"


def test_one_licence_common_to_all_sources_is_kept() -> None:
    assert inherit(
        [source(V1, licence="CC-BY-4.0"), source(V2, "a2", licence="CC-BY-4.0")]
    ).licence == ("CC-BY-4.0")


def test_a_single_source_is_inherited_as_it_is() -> None:
    terms = Terms(
        purposes=frozenset({"training"}),
        derivation=True,
        share_alike=True,
        territories=frozenset({"DE"}),
        duration_days=10,
        attribution=("(c) A",),
        licence="CC-BY-SA-4.0",
    )
    assert inherit([Source(V1, terms, "a1")]) == terms


# -- carried over ---------------------------------------------------------------------------


INHERITED = Terms(
    purposes=frozenset({"training", "research"}),
    commercial=False,
    derivation=False,
    redistribution=False,
    territories=frozenset({"DE", "FR"}),
    duration_days=90,
    attribution=("(c) A", "(c) B"),
)
SHARE_ALIKE = Terms(derivation=True, share_alike=True, licence="CC-BY-SA-4.0")


def test_terms_as_tight_or_tighter_pass() -> None:
    check_carried_over(INHERITED, INHERITED)
    tighter = Terms(
        purposes=frozenset({"research"}),
        territories=frozenset({"DE"}),
        duration_days=30,
        attribution=("(c) B", "(c) A", "(c) extra"),
    )
    check_carried_over(tighter, INHERITED)
    assert looser_than(tighter, INHERITED) == ()
    check_carried_over(SHARE_ALIKE, SHARE_ALIKE)


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [
        ({"commercial": True}, "commercial use, but a source is non-commercial"),
        (
            {"purposes": frozenset({"training", "fine-tuning"})},
            "purpose(s) fine-tuning, but the sources permit training, research only",
        ),
        ({"territories": None}, "use anywhere, but the sources permit use in DE FR only"),
        (
            {"territories": frozenset({"DE", "US"})},
            "territory US, but the sources permit use in DE FR only",
        ),
        ({"attribution": ("(c) A",)}, "missing attribution notice(s) '(c) B'"),
        ({"derivation": True}, "derivatives, but a source forbids them"),
        ({"redistribution": True}, "redistribution, but a source forbids it"),
        ({"duration_days": 365}, "365 days, but the sources allow 90 days"),
        ({"duration_days": None}, "no time limit, but the sources allow 90 days"),
    ],
)
def test_each_loosening_is_refused(changes: dict[str, object], phrase: str) -> None:
    fields = {
        "purposes": INHERITED.purposes,
        "commercial": INHERITED.commercial,
        "derivation": INHERITED.derivation,
        "redistribution": INHERITED.redistribution,
        "territories": INHERITED.territories,
        "duration_days": INHERITED.duration_days,
        "attribution": INHERITED.attribution,
        **changes,
    }
    proposed = Terms(**fields)  # type: ignore[arg-type]
    assert looser_than(proposed, INHERITED) == (phrase,)
    with pytest.raises(LineageError) as caught:
        check_carried_over(proposed, INHERITED)
    assert str(caught.value) == f"the proposed terms are looser than the sources allow: {phrase}"


def test_dropping_or_changing_share_alike_is_refused() -> None:
    dropped = Terms(derivation=True, licence="CC-BY-SA-4.0")
    assert looser_than(dropped, SHARE_ALIKE) == ("the share-alike duty is dropped",)
    changed = Terms(derivation=True, share_alike=True, licence="CC-BY-4.0")
    assert looser_than(changed, SHARE_ALIKE) == (
        "the share-alike licence is changed from 'CC-BY-SA-4.0' to 'CC-BY-4.0'",
    )
    # Adding share-alike where none was inherited is tighter, not looser.
    assert looser_than(SHARE_ALIKE, Terms(derivation=True)) == ()


def test_every_loosening_is_listed_at_once() -> None:
    everything = Terms(commercial=True, derivation=True, redistribution=True, licence="CC0-1.0")
    found = looser_than(everything, INHERITED)
    assert len(found) == 7  # commercial, purpose, territory, attribution, derivation,
    # redistribution, duration
    with pytest.raises(LineageError) as caught:
        check_carried_over(everything, INHERITED)
    assert str(caught.value).count(";") == 6


# -- properties -----------------------------------------------------------------------------

_TERRITORIES = ["DE", "FR", "IT"]
_NOTICES = ["(c) A", "(c) B", "(c) C"]


@st.composite
def _terms(draw: st.DrawFn) -> Terms:
    share_alike = draw(st.booleans())
    return Terms(
        purposes=draw(st.frozensets(st.sampled_from(PURPOSES), min_size=1)),
        commercial=draw(st.booleans()),
        derivation=share_alike or draw(st.booleans()),
        redistribution=draw(st.booleans()),
        territories=draw(st.none() | st.frozensets(st.sampled_from(_TERRITORIES), min_size=1)),
        duration_days=draw(st.none() | st.integers(min_value=1, max_value=400)),
        attribution=tuple(draw(st.lists(st.sampled_from(_NOTICES), unique=True, max_size=3))),
        share_alike=share_alike,
        licence=draw(st.none() | st.sampled_from(["CC-BY-SA-4.0", "ODbL-1.0"])),
    )


_SOURCES = st.lists(_terms(), min_size=1, max_size=4).map(
    lambda ts: [Source(f"sha256:{i:064x}", t, f"a{i}") for i, t in enumerate(ts)]
)


def _outcome(sources: list[Source], *, offered: bool = False) -> Terms | None:
    try:
        return inherit(sources, offered=offered)
    except LineageError:
        return None


def _without_order(terms: Terms) -> tuple[object, ...]:
    return (
        terms.purposes,
        terms.commercial,
        terms.derivation,
        terms.redistribution,
        terms.territories,
        terms.duration_days,
        frozenset(terms.attribution),
        terms.share_alike,
        terms.licence,
    )


@settings(max_examples=150, deadline=None)
@given(_SOURCES, st.randoms(use_true_random=False), st.booleans())
def test_inherit_is_commutative(sources: list[Source], rng: object, offered: bool) -> None:
    shuffled = list(sources)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    first, second = _outcome(sources, offered=offered), _outcome(shuffled, offered=offered)
    assert (first is None) == (second is None)
    if first is not None and second is not None:
        # Attribution notices keep source order; everything else is order-free.
        assert _without_order(first) == _without_order(second)


@settings(max_examples=150, deadline=None)
@given(_SOURCES, st.booleans())
def test_inherit_is_never_looser_than_any_source(sources: list[Source], offered: bool) -> None:
    combined = _outcome(sources, offered=offered)
    if combined is None:
        return
    for s in sources:
        assert looser_than(combined, s.terms) == (), s
    if offered:
        assert all(s.terms.redistribution for s in sources)


@settings(max_examples=150, deadline=None)
@given(_SOURCES)
def test_inherit_refuses_exactly_when_a_rule_says_so(sources: list[Source]) -> None:
    terms = [s.terms for s in sources]
    limited = [t.territories for t in terms if t.territories is not None]
    share_alike_licences = {t.licence for t in terms if t.share_alike}
    refused = (
        not all(t.derivation for t in terms)
        or not frozenset.intersection(*(t.purposes for t in terms))
        or (bool(limited) and not frozenset.intersection(*limited))
        or len(share_alike_licences) > 1
    )
    assert (_outcome(sources) is None) == refused


@settings(max_examples=100, deadline=None)
@given(_SOURCES)
def test_inheriting_again_changes_nothing(sources: list[Source]) -> None:
    combined = _outcome(sources)
    if combined is not None:
        assert inherit([Source(V1, combined)]) == combined
        assert inherit([*sources, Source(V2, combined)]) == combined
