"""The evaluation engine: time boundaries, revocation, rights, candidates, several grants."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import canonical_bytes
from licensing.errors import TermsError
from licensing.evaluation import (
    DENY_CODES,
    Grant,
    GrantIndex,
    Use,
    may,
)
from licensing.terms import PURPOSES, Terms

from .builders import DAY, MEMBER, MS, T0, V1, V2, grant, use

# -- the question ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("purpose", "inference", "unknown purpose 'inference'"),
        ("at", datetime(2026, 1, 2), "timezone-aware"),
        ("territory", "DEU", "ISO 3166-1 alpha-2"),
        ("territory", "D1", "ISO 3166-1 alpha-2"),
        ("territory", "", "ISO 3166-1 alpha-2"),
        ("member", "Not A Member", "member id"),
        ("version", "sha256:" + "A" * 64, "version id"),
        ("version", "ab" * 32, "version id"),
        ("commercial", 1, "true or false"),
    ],
)
def test_a_malformed_use_is_refused(field: str, value: object, message: str) -> None:
    fields: dict[str, object] = {
        "member": MEMBER,
        "version": V1,
        "purpose": "training",
        "commercial": False,
        "territory": None,
        "at": T0,
    }
    fields[field] = value
    with pytest.raises(TermsError, match=message):
        Use(**fields)  # type: ignore[arg-type]


def test_a_territory_is_read_in_any_case_and_kept_in_capitals() -> None:
    assert use(territory="de").territory == "DE"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"valid_from": datetime(2026, 1, 1)}, "valid_from must be a timezone-aware"),
        ({"valid_until": T0}, "valid_until must be after valid_from"),
        ({"valid_until": T0 - DAY}, "valid_until must be after valid_from"),
        ({"valid_until": datetime(2027, 1, 1)}, "valid_until must be a timezone-aware"),
        ({"revoked_at": datetime(2027, 1, 1)}, "revoked_at must be a timezone-aware"),
        ({"revocation_reason": "unpaid"}, "a revocation reason without a revocation time"),
        ({"target": "sha256:1234"}, "the target must be a version id"),
        ({"assignee": "ACME"}, "the assignee must be a member id"),
        ({"agreement": ""}, "a grant needs its agreement id"),
    ],
)
def test_a_malformed_grant_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(TermsError, match=message):
        grant(**changes)  # type: ignore[arg-type]


# -- time -----------------------------------------------------------------------------------


def test_valid_from_is_inclusive_to_the_millisecond() -> None:
    g = grant(valid_from=T0 + DAY)
    assert may(use(T0 + DAY), [g]).permitted
    before = may(use(T0 + DAY - MS), [g])
    assert not before.permitted
    assert before.code == "not_yet_valid"
    assert before.reasons[0].message == (
        "agreement a1 is valid from 2026-01-02T00:00:00.000Z, after 2026-01-01T23:59:59.999Z"
    )


def test_valid_until_is_exclusive_to_the_millisecond() -> None:
    g = grant(valid_until=T0 + 10 * DAY)
    assert may(use(T0 + 10 * DAY - MS), [g]).permitted
    at_end = may(use(T0 + 10 * DAY), [g])
    assert at_end.code == "expired"
    assert at_end.reasons[0].message == "agreement a1 expired at 2026-01-11T00:00:00.000Z"
    assert at_end.reasons[0].rule is None  # the agreement's own end date, not a rule of terms
    assert may(use(T0 + 400 * DAY), [g]).code == "expired"


def test_times_in_other_zones_compare_as_instants() -> None:
    plus_two = timezone(timedelta(hours=2))
    g = grant(valid_until=datetime(2026, 1, 11, 2, 0, tzinfo=plus_two))  # = 00:00 UTC
    assert may(use(datetime(2026, 1, 10, 23, 59, 59, 999000, tzinfo=UTC)), [g]).permitted
    assert may(use(datetime(2026, 1, 11, tzinfo=UTC)), [g]).code == "expired"


def test_the_terms_duration_ends_validity_and_is_cited() -> None:
    g = grant(duration_days=30)  # no end date of its own
    assert g.expires_at == T0 + 30 * DAY
    assert may(use(T0 + 30 * DAY - MS), [g]).permitted
    ended = may(use(T0 + 30 * DAY), [g])
    assert ended.code == "expired"
    assert ended.reasons[0].message == (
        "agreement a1 expired at 2026-01-31T00:00:00.000Z, 30 days after it became valid"
    )
    assert ended.reasons[0].rule == {
        "leftOperand": "elapsedTime",
        "operator": "lteq",
        "rightOperand": "P30D",
    }


def test_the_earlier_of_end_date_and_duration_applies() -> None:
    short_date = grant(duration_days=30, valid_until=T0 + 10 * DAY)
    assert short_date.expires_at == T0 + 10 * DAY
    assert may(use(T0 + 10 * DAY), [short_date]).reasons[0].rule is None
    short_duration = grant(duration_days=5, valid_until=T0 + 10 * DAY)
    assert short_duration.expires_at == T0 + 5 * DAY
    assert may(use(T0 + 5 * DAY), [short_duration]).code == "expired"


# -- revocation -----------------------------------------------------------------------------


def test_revocation_takes_effect_at_its_instant_and_history_stands() -> None:
    g = grant(revoked_at=T0 + 5 * DAY, revocation_reason="payment reversed")
    # Asked after the revocation about a use before it: that use was permitted.
    assert may(use(T0 + 5 * DAY - MS), [g]).permitted
    assert may(use(T0 + DAY), [g]).permitted
    revoked = may(use(T0 + 5 * DAY), [g])
    assert revoked.code == "revoked"
    assert revoked.reasons[0].message == (
        "agreement a1 was revoked at 2026-01-06T00:00:00.000Z: payment reversed"
    )
    assert may(use(T0 + 50 * DAY), [g]).code == "revoked"


def test_a_grant_revoked_before_it_began_is_revoked_not_pending() -> None:
    g = grant(valid_from=T0 + 10 * DAY, revoked_at=T0 + 2 * DAY)
    assert may(use(T0 + DAY), [g]).code == "not_yet_valid"
    assert may(use(T0 + 3 * DAY), [g]).code == "revoked"
    assert may(use(T0 + 20 * DAY), [g]).code == "revoked"


def test_of_expiry_and_revocation_the_earlier_is_the_cause() -> None:
    revoked_first = grant(valid_until=T0 + 10 * DAY, revoked_at=T0 + 5 * DAY)
    assert may(use(T0 + 20 * DAY), [revoked_first]).code == "revoked"
    expired_first = grant(valid_until=T0 + 10 * DAY, revoked_at=T0 + 15 * DAY)
    assert may(use(T0 + 20 * DAY), [expired_first]).code == "expired"
    assert may(use(T0 + 12 * DAY), [expired_first]).code == "expired"


def test_a_revocation_without_a_reason_says_when() -> None:
    g = grant(revoked_at=T0 + DAY)
    assert may(use(T0 + DAY), [g]).reasons[0].message == (
        "agreement a1 was revoked at 2026-01-02T00:00:00.000Z"
    )


# -- the rights -----------------------------------------------------------------------------


def test_the_purpose_must_be_one_of_the_terms_purposes() -> None:
    g = grant(purposes={"training", "evaluation"})
    assert may(use(purpose="training"), [g]).permitted
    assert may(use(purpose="evaluation"), [g]).permitted
    denied = may(use(purpose="fine-tuning"), [g])
    assert denied.code == "purpose"
    assert denied.reasons[0].message == (
        "agreement a1 permits use for training, evaluation, not fine-tuning"
    )
    assert denied.reasons[0].rule == {
        "leftOperand": "purpose",
        "operator": "isAnyOf",
        "rightOperand": ["training", "evaluation"],
    }


@pytest.mark.parametrize("purpose", PURPOSES)
def test_terms_with_every_purpose_permit_each(purpose: str) -> None:
    decision = may(use(purpose=purpose), [grant()])
    assert decision.permitted
    assert decision.reasons[1].message == f"agreement a1 permits use for {purpose}"
    assert decision.reasons[1].rule is not None
    assert decision.reasons[1].rule["action"] == "use"


def test_commercial_use_needs_commercial_terms() -> None:
    non_commercial = grant()
    assert may(use(commercial=False), [non_commercial]).permitted
    denied = may(use(commercial=True), [non_commercial])
    assert denied.code == "commercial"
    assert denied.reasons[0].message == "agreement a1 prohibits commercial use"
    assert denied.reasons[0].rule == {"action": "commercialize"}
    commercial = grant(commercial=True)
    permitted = may(use(commercial=True), [commercial])
    assert permitted.permitted
    assert any(r.message == "agreement a1 permits commercial use" for r in permitted.reasons)
    assert may(use(commercial=False), [commercial]).permitted


def test_anywhere_terms_permit_any_territory_and_an_unnamed_one() -> None:
    g = grant()
    assert may(use(territory=None), [g]).permitted
    assert may(use(territory="US"), [g]).permitted


def test_territory_limited_terms_need_a_named_territory_of_theirs() -> None:
    g = grant(territories={"DE", "FR"})
    assert may(use(territory="FR"), [g]).permitted
    assert may(use(territory="fr"), [g]).permitted
    abroad = may(use(territory="US"), [g])
    assert abroad.code == "territory"
    assert abroad.reasons[0].message == "agreement a1 permits use in DE, FR only, not in US"
    assert abroad.reasons[0].rule == {
        "leftOperand": "spatial",
        "operator": "isAnyOf",
        "rightOperand": ["DE", "FR"],
    }
    unnamed = may(use(territory=None), [g])
    assert unnamed.code == "territory"
    assert unnamed.reasons[0].message.endswith("not in an unnamed territory")


def test_every_failing_rule_of_an_agreement_in_force_is_listed_in_order() -> None:
    g = grant(purposes={"research"}, territories={"DE"})
    denied = may(use(purpose="training", commercial=True, territory="US"), [g])
    assert [r.code for r in denied.reasons] == ["purpose", "commercial", "territory"]
    assert {r.agreement for r in denied.reasons} == {"a1"}


def test_an_agreement_not_in_force_gives_only_its_time_reason() -> None:
    g = grant(purposes={"research"}, valid_until=T0 + DAY)
    denied = may(use(T0 + 2 * DAY, purpose="training", commercial=True), [g])
    assert [r.code for r in denied.reasons] == ["expired"]


def test_a_permit_lists_the_rules_it_satisfies_and_the_duties() -> None:
    g = grant(
        purposes={"training"},
        commercial=True,
        territories={"DE"},
        attribution=("(c) Acme Corpora",),
        valid_until=T0 + 10 * DAY,
    )
    decision = may(use(commercial=True, territory="DE"), [g])
    assert decision.permitted
    assert decision.agreement == "a1"
    assert [r.message for r in decision.reasons] == [
        "agreement a1 is in force from 2026-01-01T00:00:00.000Z until 2026-01-11T00:00:00.000Z",
        "agreement a1 permits use for training",
        "agreement a1 permits commercial use",
        "agreement a1 permits use in DE",
    ]
    assert {r.code for r in decision.reasons} == {"permitted"}
    assert decision.attribution == ("(c) Acme Corpora",)


# -- candidates -----------------------------------------------------------------------------


def test_no_candidate_is_one_not_covered_reason() -> None:
    decision = may(use(), [])
    assert not decision.permitted
    assert decision.agreement is None
    assert decision.code == "not_covered"
    assert decision.reasons[0].message == (
        f"no agreement of acme, and no public licence, covers version {V1}"
    )


def test_only_the_exact_version_and_the_member_or_anyone_are_candidates() -> None:
    other_version = grant("a2", target=V2)
    other_member = grant("a3", assignee="globex")
    assert may(use(), [other_version, other_member]).code == "not_covered"
    public = grant("pub", assignee=None)
    decision = may(use(), [other_version, other_member, public])
    assert decision.permitted
    assert decision.agreement == "pub"
    assert decision.reasons[0].message.startswith("public licence pub is in force")
    assert may(use(member="globex"), [public]).permitted


def test_a_grant_to_another_member_is_not_a_reason_in_a_denial() -> None:
    denied = may(
        use(purpose="research"),
        [grant("a1", purposes={"training"}), grant("a9", assignee="globex")],
    )
    assert [r.agreement for r in denied.reasons] == ["a1"]


# -- several grants -------------------------------------------------------------------------


def test_any_one_permitting_grant_permits() -> None:
    grants = [grant("a1", purposes={"evaluation"}), grant("a2", purposes={"training"})]
    decision = may(use(purpose="training"), grants)
    assert decision.permitted
    assert decision.agreement == "a2"


def test_the_longest_valid_permitting_grant_is_named() -> None:
    short = grant("a1", valid_until=T0 + 10 * DAY)
    longer = grant("a2", valid_until=T0 + 20 * DAY)
    endless = grant("a3")
    assert may(use(), [short, longer]).agreement == "a2"
    assert may(use(), [short, longer, endless]).agreement == "a3"
    # A revocation to come shortens a grant's validity too.
    doomed = grant("a4", revoked_at=T0 + 5 * DAY)
    assert may(use(), [short, doomed]).agreement == "a1"


def test_ties_prefer_the_members_own_agreement_then_the_smallest_id() -> None:
    own = grant("b", valid_until=T0 + 10 * DAY)
    public = grant("a", assignee=None, valid_until=T0 + 10 * DAY)
    assert may(use(), [public, own]).agreement == "b"
    assert may(use(), [grant("z"), grant("m")]).agreement == "m"


def test_the_choice_does_not_depend_on_the_order_of_the_grants() -> None:
    grants = [
        grant("a1", valid_until=T0 + 10 * DAY),
        grant("a2", assignee=None),
        grant("a3"),
        grant("a4", purposes={"research"}),
        grant("a5", revoked_at=T0 + 2 * DAY),
    ]
    expected = may(use(), grants)
    rng = random.Random(7)
    for _ in range(20):
        rng.shuffle(grants)
        assert may(use(), grants) == expected
    assert expected.agreement == "a3"


def test_a_denial_lists_every_candidate_most_specific_first() -> None:
    grants = [
        grant("pub-rule", assignee=None, purposes={"research"}),
        grant("own-expired", valid_until=T0 + DAY),
        grant("own-two-rules", purposes={"research"}, territories={"FR"}),
        grant("own-one-rule", purposes={"research"}),
        grant("own-pending", valid_from=T0 + 30 * DAY),
        grant("own-revoked", revoked_at=T0 + DAY),
    ]
    denied = may(use(T0 + 2 * DAY, territory="DE"), grants)
    assert [(r.agreement, r.code) for r in denied.reasons] == [
        ("own-one-rule", "purpose"),
        ("own-two-rules", "purpose"),
        ("own-two-rules", "territory"),
        ("own-pending", "not_yet_valid"),
        ("own-expired", "expired"),
        ("own-revoked", "revoked"),
        ("pub-rule", "purpose"),
    ]
    assert denied.code == "purpose"


# -- the decision as JSON -------------------------------------------------------------------


def test_a_decision_is_json_with_its_reasons() -> None:
    decision = may(use(territory="de"), [grant(territories={"DE"})])
    value = decision.to_json()
    assert value["permitted"] is True
    assert value["agreement"] == "a1"
    assert value["use"] == {
        "member": "acme",
        "version": V1,
        "purpose": "training",
        "commercial": False,
        "territory": "DE",
        "at": "2026-01-02T00:00:00.000Z",
    }
    assert value["reasons"][2] == {
        "code": "permitted",
        "message": "agreement a1 permits use in DE",
        "agreement": "a1",
        "rule": {"leftOperand": "spatial", "operator": "isAnyOf", "rightOperand": ["DE"]},
    }
    canonical_bytes(value)  # a plain JSON value


def test_the_rules_handed_out_are_copies() -> None:
    g = grant(purposes={"research"})
    first = may(use(), [g])
    assert first.reasons[0].rule is not None
    first.reasons[0].rule["rightOperand"].append("training")
    second = may(use(), [g])
    assert second.reasons[0].rule == {
        "leftOperand": "purpose",
        "operator": "isAnyOf",
        "rightOperand": ["research"],
    }
    assert g.terms.purposes == frozenset({"research"})


# -- the index ------------------------------------------------------------------------------


def test_the_index_looks_at_the_members_and_the_public_grants_of_the_version_only() -> None:
    noise = [grant(f"n{i}", assignee=f"m{i % 50}", target=V2) for i in range(1000)]
    relevant = [grant("own"), grant("pub", assignee=None), grant("x", assignee="globex")]
    index = GrantIndex(noise + relevant)
    assert len(index) == 1003
    assert [g.agreement for g in index.candidates(MEMBER, V1)] == ["own", "pub"]
    assert index.decide(use()).agreement == "own"
    assert index.candidates(MEMBER, V2) == []


_TIMES = st.integers(min_value=0, max_value=40).map(lambda d: T0 + d * DAY)


@st.composite
def _grants(draw: st.DrawFn, agreement: str) -> Grant:
    start = draw(_TIMES)
    length = draw(st.none() | st.integers(min_value=1, max_value=20))
    return Grant(
        agreement,
        draw(st.sampled_from([MEMBER, "globex", None])),
        draw(st.sampled_from([V1, V2])),
        Terms(
            purposes=draw(st.frozensets(st.sampled_from(PURPOSES), min_size=1)),
            commercial=draw(st.booleans()),
            territories=draw(st.none() | st.frozensets(st.sampled_from(["DE", "FR"]), min_size=1)),
            duration_days=draw(st.none() | st.integers(min_value=1, max_value=30)),
        ),
        start,
        None if length is None else start + length * DAY,
        draw(st.none() | _TIMES),
    )


@st.composite
def _cases(draw: st.DrawFn) -> tuple[list[Grant], Use]:
    count = draw(st.integers(min_value=0, max_value=6))
    grants = [draw(_grants(f"g{i}")) for i in range(count)]
    question = use(
        draw(_TIMES) + draw(st.sampled_from([-MS, timedelta(0), MS])),
        member=draw(st.sampled_from([MEMBER, "globex"])),
        target=draw(st.sampled_from([V1, V2])),
        purpose=draw(st.sampled_from(PURPOSES)),
        commercial=draw(st.booleans()),
        territory=draw(st.sampled_from([None, "DE", "US"])),
    )
    return grants, question


def _permits(g: Grant, u: Use) -> bool:
    """The rules restated directly, as an oracle."""
    end = min(
        [t for t in (g.valid_until, g.revoked_at) if t is not None]
        + ([g.valid_from + g.terms.duration_days * DAY] if g.terms.duration_days else []),
        default=None,
    )
    return (
        g.target == u.version
        and g.assignee in (u.member, None)
        and g.valid_from <= u.at
        and (end is None or u.at < end)
        and u.purpose in g.terms.purposes
        and (not u.commercial or g.terms.commercial)
        and (g.terms.territories is None or u.territory in g.terms.territories)
    )


@settings(max_examples=150, deadline=None)
@given(_cases())
def test_may_and_the_index_agree_with_the_rules(case: tuple[list[Grant], Use]) -> None:
    grants, question = case
    decision = may(question, grants)
    assert decision == GrantIndex(grants).decide(question)
    assert decision.permitted == any(_permits(g, question) for g in grants)
    candidates = [
        g for g in grants if g.target == question.version and g.assignee in (question.member, None)
    ]
    if decision.permitted:
        assert _permits(next(g for g in grants if g.agreement == decision.agreement), question)
        assert {r.code for r in decision.reasons} == {"permitted"}
    elif not candidates:
        assert [r.code for r in decision.reasons] == ["not_covered"]
    else:
        assert {r.agreement for r in decision.reasons} == {g.agreement for g in candidates}
        assert all(r.code in DENY_CODES for r in decision.reasons)
