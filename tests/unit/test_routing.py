from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.routing import route
from consumers.rules import Rule
from schemas.events import (
    CONCERN_RAISED,
    RECOMMENDATION_REVIEWED,
    ConcernRaised,
    Finding,
    InspectorateEvent,
    Progress,
    RecommendationReviewed,
)
from schemas.inspectorates import PROGRAMMES, Agency, Inspectorate, Programme, owner_of
from services.rules_file import load_rules
from tests.factories import concern, good_practice
from tests.loop_factories import recommendation, review

# The rules the router ships with: this table is what deploy/rules.toml must do.
SHIPPED = load_rules(Path(__file__).resolve().parents[2] / "deploy" / "rules.toml")


def programmes(event: InspectorateEvent) -> set[str]:
    return {d.programme.value for d in route(event, SHIPPED.rules)}


def rules_of(event: InspectorateEvent) -> set[str]:
    return {d.rule for d in route(event, SHIPPED.rules)}


# (overrides of the default Ofsted concern, expected programmes, expected rules)
TABLE: list[tuple[dict[str, Any], set[str], set[str]]] = [
    ({"subject_agencies": ["police"]}, {"ncpi"}, {"police.ncpi"}),
    (
        {"subject_agencies": ["police"], "finding": "cause_of_concern"},
        {"ncpi", "peel"},
        {"police.ncpi", "police.peel"},
    ),
    ({"subject_agencies": ["health"]}, {"clas"}, {"health.clas"}),
    (
        {"subject_agencies": ["health"], "theme": "child_sexual_abuse_in_family"},
        {"clas", "saas"},
        {"health.clas", "health.saas"},
    ),
    (
        {"subject_agencies": ["health"], "theme": "child_sexual_exploitation"},
        {"clas", "saas"},
        {"health.clas", "health.saas"},
    ),
    (
        {"source": "hmicfrs", "programme": "ncpi", "subject_agencies": ["local_authority"]},
        {"ilacs"},
        {"social_care.ilacs"},
    ),
    (
        {
            "source": "cqc",
            "programme": "clas",
            "subject_agencies": ["health"],
            "theme": "front_door",
        },
        {"ilacs"},
        {"front_door.ilacs"},
    ),
    (
        {"subject_agencies": ["youth_justice_service"]},
        {"youth_justice"},
        {"youth_justice.probation"},
    ),
    ({"subject_agencies": ["probation"]}, {"youth_justice"}, {"youth_justice.probation"}),
    ({"subject_agencies": ["custody"]}, {"custody"}, {"custody.prisons"}),
    (
        {
            "subject_agencies": ["education"],
            "jtai": {"requested": True, "rationale": "two agencies"},
        },
        {"jtai"},
        {"jtai.requested"},
    ),
    (
        {"subject_agencies": ["education"], "finding": "urgent_notification"},
        {"jtai"},
        {"jtai.urgent"},
    ),
    (
        {"subject_agencies": ["education"], "theme": "serious_youth_violence"},
        {"jtai"},
        {"jtai.deep_dive"},
    ),
    ({"subject_agencies": ["education"], "theme": "mental_health"}, {"jtai"}, {"jtai.deep_dive"}),
    ({"subject_agencies": ["education"]}, set(), set()),
    ({"subject_agencies": ["multi_agency"]}, set(), set()),
]


@pytest.mark.parametrize(("overrides", "expected", "rules"), TABLE)
def test_default_routing_table(
    overrides: dict[str, Any], expected: set[str], rules: set[str]
) -> None:
    event = concern(**overrides)
    assert programmes(event) == expected
    assert rules_of(event) == rules


def test_own_programmes_are_never_destinations() -> None:
    # Ofsted's own concern about children's social care must not go back to ILACS.
    assert programmes(concern(subject_agencies=["local_authority"])) == set()


def test_exceptional_practice_goes_to_every_other_inspectorates_programmes() -> None:
    event = good_practice(source="cqc", programme="clas")
    others = {p.value for owner, ps in PROGRAMMES.items() if owner != "cqc" for p in ps}
    assert programmes(event) == others
    assert rules_of(event) == {"exceptional_practice.share"}


def test_every_destination_carries_its_rule_and_reason() -> None:
    for destination in route(concern(subject_agencies=["police", "health"]), SHIPPED.rules):
        rule = next(r for r in SHIPPED.rules if r.id == destination.rule)
        assert destination.reason == rule.reason
        assert destination.programme in rule.to


def test_shipped_rule_ids_are_unique() -> None:
    ids = [rule.id for rule in SHIPPED.rules]
    assert len(ids) == len(set(ids))


def test_rules_refuse_unknown_programmes() -> None:
    with pytest.raises(ValueError, match="to"):
        Rule.model_validate({"id": "x", "reason": "r", "to": ["nowhere"]})


@given(
    source=st.sampled_from(list(Inspectorate)),
    agencies=st.lists(st.sampled_from(list(Agency)), min_size=1, unique=True),
    finding=st.sampled_from(["cause_of_concern", "area_for_improvement", "urgent_notification"]),
    requested=st.booleans(),
)
def test_never_routed_back_to_the_publisher(
    source: Inspectorate, agencies: list[Agency], finding: str, requested: bool
) -> None:
    jtai = {"requested": True, "rationale": "r"} if requested else None
    event = concern(
        source=source,
        programme=PROGRAMMES[source][0],
        subject_agencies=agencies,
        finding=finding,
        jtai=jtai,
    )
    for destination in route(event, SHIPPED.rules):
        assert owner_of(destination.programme) != source
    assert (Programme.JTAI in {d.programme for d in route(event, SHIPPED.rules)}) >= requested


# -- issue 11: severe concerns, recommendations and their reviews --------------------------------

INADEQUATE_NEGLECT = {
    "finding": "cause_of_concern",
    "severity": 4,
    "subject_agencies": ["local_authority"],
    "theme": "neglect",
}
"""An Ofsted *inadequate* ILACS judgement about neglect (the default concern is Ofsted's)."""


def test_an_inadequate_ilacs_judgement_about_neglect_reaches_the_partners_programmes() -> None:
    event = concern(**INADEQUATE_NEGLECT)
    reached = programmes(event)
    assert reached == {"clas", "ncpi", "youth_justice", "jtai"}
    assert {owner_of(Programme(p)) for p in reached} - {Inspectorate.OFSTED} >= {
        Inspectorate.CQC,
        Inspectorate.HMICFRS,
        Inspectorate.HMI_PROBATION,
    }
    assert rules_of(event) == {"social_care.severe.partners", "jtai.severe"}


def test_severity_3_about_social_care_stays_where_it_was() -> None:
    event = concern(**{**INADEQUATE_NEGLECT, "severity": 3})
    assert programmes(event) == set()


def test_a_severe_concern_from_another_inspectorate_reaches_ilacs_and_the_other_partners() -> None:
    event = concern(**INADEQUATE_NEGLECT, source="cqc", programme="clas")
    assert programmes(event) == {"ilacs", "ncpi", "youth_justice", "jtai"}


# (the finding, who publishes it, expected programmes, expected rules)
RECOMMENDATIONS: list[tuple[str, dict[str, Any], set[str], set[str]]] = [
    ("made", {}, {"ilacs"}, {"recommendation.police"}),
    ("made", {"source": "ofsted", "programme": "ilacs"}, {"ncpi"}, {"recommendation.police"}),
    (
        "made",
        {
            "source": "cqc",
            "programme": "clas",
            "recipient": "health",
            "subject_agencies": ["health"],
        },
        {"ilacs"},
        {"recommendation.health"},
    ),
    (
        "made",
        {
            "source": "ofsted",
            "programme": "ilacs",
            "recipient": "local_authority",
            "subject_agencies": ["local_authority"],
        },
        {"clas", "ncpi"},
        {"recommendation.social_care"},
    ),
    (
        "made",
        {"recipient": "multi_agency", "subject_agencies": ["multi_agency"]},
        {"ilacs", "clas", "youth_justice", "jtai"},
        {"recommendation.multi_agency"},
    ),
    ("reviewed", {"progress": "achieved"}, {"ilacs"}, {"recommendation.police"}),
    ("reviewed", {"progress": "progressing"}, {"ilacs"}, {"recommendation.police"}),
    (
        "reviewed",
        {"progress": "not_progressing"},
        {"ilacs", "jtai"},
        {"recommendation.police", "review.not_progressing.jtai"},
    ),
    (
        "reviewed",
        {
            "source": "hmi_probation",
            "programme": "youth_justice",
            "progress": "not_progressing",
            "recipient": "youth_justice_service",
            "subject_agencies": ["youth_justice_service"],
        },
        {"ilacs", "jtai"},
        {"recommendation.youth_justice", "review.not_progressing.jtai"},
    ),
]


@pytest.mark.parametrize(("kind", "overrides", "expected", "rules"), RECOMMENDATIONS)
def test_recommendations_and_reviews_routing_table(
    kind: str, overrides: dict[str, Any], expected: set[str], rules: set[str]
) -> None:
    event = recommendation(**overrides) if kind == "made" else review(**overrides)
    assert programmes(event) == expected
    assert rules_of(event) == rules


def test_a_not_progressing_review_of_hmicfrs_s_police_recommendation_reaches_ilacs_and_jtai() -> (
    None
):
    made = recommendation()
    reviewed = review(recommendation_id=made.id, progress="not_progressing")
    assert programmes(made) == {"ilacs"}
    assert programmes(reviewed) == {"ilacs", "jtai"}


def test_a_review_goes_wherever_its_recommendation_went() -> None:
    to_partnership = recommendation(recipient="multi_agency", subject_agencies=["multi_agency"])
    for made in (recommendation(), to_partnership):
        fields = made.model_dump(exclude={"type", "review_by"})
        for progress in ("achieved", "progressing", "no_longer_applicable"):
            reviewed = review(**fields | {"id": uuid.uuid4(), "progress": progress})
            assert programmes(reviewed) == programmes(made)


def test_concern_rules_never_take_recommendations_nor_recommendation_rules_concerns() -> None:
    concern_rules = {r.id for r in SHIPPED.rules if r.event_types == (CONCERN_RAISED,)}
    for event in (recommendation(), review(), recommendation(source="ofsted", programme="ilacs")):
        assert not rules_of(event) & concern_rules
    police = concern(subject_agencies=["police"], severity=4)
    assert not {r for r in rules_of(police) if r.startswith(("recommendation.", "review."))}


# -- conditions that exist on one type only ------------------------------------------------------


def a_rule(**conditions: Any) -> Rule:
    return Rule.model_validate({"id": "x", "reason": "r", "to": ["jtai"], **conditions})


@st.composite
def any_finding(draw: st.DrawFn) -> InspectorateEvent:
    kind = draw(st.sampled_from(["concern", "practice", "made", "reviewed"]))
    if kind == "concern":
        return concern(
            severity=draw(st.integers(1, 4)), finding=draw(st.sampled_from(list(Finding)))
        )
    if kind == "practice":
        return good_practice()
    if kind == "made":
        return recommendation()
    return review(progress=draw(st.sampled_from(list(Progress))))


@given(event=any_finding(), minimum=st.integers(1, 4))
def test_min_severity_matches_concerns_at_or_above_it_and_nothing_else(
    event: InspectorateEvent, minimum: int
) -> None:
    matched = a_rule(min_severity=minimum).matches(event)
    assert matched == (isinstance(event, ConcernRaised) and event.severity >= minimum)


@given(
    event=any_finding(), wanted=st.lists(st.sampled_from(list(Progress)), min_size=1, unique=True)
)
def test_progress_matches_reviews_judged_so_and_nothing_else(
    event: InspectorateEvent, wanted: list[Progress]
) -> None:
    matched = a_rule(progress=wanted).matches(event)
    assert matched == (isinstance(event, RecommendationReviewed) and event.progress in wanted)


@given(event=any_finding())
def test_findings_and_jtai_requested_still_match_concerns_only(event: InspectorateEvent) -> None:
    assert a_rule(findings=list(Finding)).matches(event) == isinstance(event, ConcernRaised)
    assert a_rule(jtai_requested=False).matches(event) == isinstance(event, ConcernRaised)


@pytest.mark.parametrize(
    "conditions",
    [
        {"min_severity": 4, "progress": ["not_progressing"]},
        {"findings": ["cause_of_concern"], "progress": ["achieved"]},
        {"event_types": [RECOMMENDATION_REVIEWED], "min_severity": 2},
        {"event_types": [CONCERN_RAISED], "progress": ["achieved"]},
        {"min_severity": 5},
        {"min_severity": "4"},
        {"min_severity": True},
    ],
)
def test_rules_that_could_never_match_or_are_mistyped_are_refused(
    conditions: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match=r"min_severity|progress|no event can match"):
        a_rule(**conditions)
