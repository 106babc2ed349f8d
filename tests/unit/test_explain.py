"""Explaining routes: what ``route`` decided, with topic names, and why nothing was routed."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from consumers.explain import Explanation, explain, unmatched_note
from consumers.routing import route
from consumers.rules import Rule, RuleSet
from schemas.events import ConcernRaised, ExceptionalPracticeIdentified, Theme
from schemas.inspectorates import PROGRAMMES, Agency, Inspectorate, Programme
from schemas.topics import Topics
from services.rules_file import load_rules
from tests.factories import concern, good_practice
from tests.loop_factories import recommendation, review

SHIPPED = load_rules(Path(__file__).resolve().parents[2] / "deploy" / "rules.toml")


def test_each_route_with_its_topic_rule_and_reason_sorted_by_programme() -> None:
    event = concern(subject_agencies=["police"], finding="cause_of_concern")
    assert explain(event, SHIPPED) == (
        Explanation(
            Programme.NCPI,
            "liaison.programme.ncpi",
            "police.ncpi",
            "concern about police practice: HMICFRS national child protection inspection",
        ),
        Explanation(
            Programme.PEEL,
            "liaison.programme.peel",
            "police.peel",
            "cause of concern about police practice: HMICFRS PEEL",
        ),
    )


def test_two_rules_to_one_programme_are_sorted_by_rule() -> None:
    event = concern(source="cqc", programme="clas", subject_agencies=["local_authority"],
                    theme="front_door")  # fmt: skip
    assert [(e.topic_name, e.rule) for e in explain(event, SHIPPED)] == [
        ("liaison.programme.ilacs", "front_door.ilacs"),
        ("liaison.programme.ilacs", "social_care.ilacs"),
    ]


def test_jtai_is_the_jtai_queue() -> None:
    event = concern(subject_agencies=["education"], theme="mental_health")
    assert explain(event, SHIPPED) == (
        Explanation(
            Programme.JTAI, "liaison.jtai", "jtai.deep_dive", "theme of the current JTAI deep dive"
        ),
    )


def test_a_deployment_prefix_is_used_when_given() -> None:
    event = concern(subject_agencies=["custody"])
    (only,) = explain(event, SHIPPED, topics=Topics("t."))
    assert only.topic_name == "t.liaison.programme.custody"
    assert unmatched_note(
        concern(subject_agencies=["education"]), SHIPPED, topics=Topics("t.")
    ) == ("no rule matched: it would go to t.liaison.unrouted")


def test_routed_events_need_no_note() -> None:
    assert unmatched_note(concern(subject_agencies=["police"]), SHIPPED) is None
    assert unmatched_note(good_practice(), SHIPPED) is None


def test_no_rule_matched() -> None:
    event = concern(subject_agencies=["education"])
    assert explain(event, SHIPPED) == ()
    assert unmatched_note(event, SHIPPED) == "no rule matched: it would go to liaison.unrouted"


def test_one_rule_excluded_because_it_only_leads_back_to_the_publisher() -> None:
    event = concern(subject_agencies=["local_authority"])  # Ofsted, about social care
    assert explain(event, SHIPPED) == ()
    assert unmatched_note(event, SHIPPED) == (
        "rule social_care.ilacs matched but was excluded: it sends only to ilacs, which is"
        " ofsted's own programme, and an event never goes to a programme of its own"
        " publisher; it would go to liaison.unrouted"
    )


def test_several_rules_excluded_because_they_only_lead_back_to_the_publisher() -> None:
    event = concern(source="cqc", programme="clas", subject_agencies=["health"],
                    theme="child_sexual_exploitation")  # fmt: skip
    assert unmatched_note(event, SHIPPED) == (
        "rules health.clas, health.saas matched but were excluded: they send only to clas"
        " and saas, which are cqc's own programmes, and an event never goes to a programme"
        " of its own publisher; it would go to liaison.unrouted"
    )


def test_one_rule_to_several_of_the_publisher_s_programmes() -> None:
    rules = RuleSet(
        rules=(Rule(id="ofsted.all", reason="r", to=tuple(PROGRAMMES[Inspectorate.OFSTED])),)
    )
    assert unmatched_note(concern(), rules) == (
        "rule ofsted.all matched but was excluded: it sends only to focused_visit, ilacs and"
        " monitoring_visit, which are ofsted's own programmes, and an event never goes to a"
        " programme of its own publisher; it would go to liaison.unrouted"
    )


@st.composite
def events(draw: st.DrawFn) -> ConcernRaised | ExceptionalPracticeIdentified:
    """A concern or exceptional practice from any inspectorate, about anything."""
    source = draw(st.sampled_from(list(Inspectorate)))
    common = {
        "source": source,
        "programme": PROGRAMMES[source][0],
        "subject_agencies": draw(st.lists(st.sampled_from(list(Agency)), min_size=1, unique=True)),
        "theme": draw(st.sampled_from(list(Theme))),
    }
    if draw(st.booleans()):
        return good_practice(**common)
    finding = draw(
        st.sampled_from(["cause_of_concern", "area_for_improvement", "urgent_notification"])
    )
    jtai = {"requested": True, "rationale": "r"} if draw(st.booleans()) else None
    return concern(**common, finding=finding, jtai=jtai)


@given(event=events())
def test_explain_is_route_sorted_with_topic_names_and_a_note_only_when_empty(
    event: ConcernRaised | ExceptionalPracticeIdentified,
) -> None:
    explained = explain(event, SHIPPED)
    destinations = route(event, SHIPPED.rules)
    assert len(explained) == len(destinations)
    assert {(e.programme, e.rule, e.reason) for e in explained} == {
        (d.programme, d.rule, d.reason) for d in destinations
    }
    keys = [(e.programme.value, e.rule) for e in explained]
    assert keys == sorted(keys)
    assert all(e.topic_name == Topics().programme(e.programme) for e in explained)
    assert (unmatched_note(event, SHIPPED) is None) == bool(explained)


def test_a_not_progressing_review_is_explained_rule_by_rule() -> None:
    reviewed = review(progress="not_progressing")  # HMICFRS's, to the police
    assert [(e.topic_name, e.rule) for e in explain(reviewed, SHIPPED)] == [
        ("liaison.programme.ilacs", "recommendation.police"),
        ("liaison.jtai", "review.not_progressing.jtai"),
    ]
    assert unmatched_note(reviewed, SHIPPED) is None


def test_a_recommendation_only_to_its_publisher_s_own_programmes_says_so() -> None:
    made = recommendation(source="cqc", programme="clas", recipient="health",
                          subject_agencies=["health"])  # fmt: skip
    rules = RuleSet(rules=(Rule(id="to.cqc", reason="r", to=(Programme.CLAS,),
                                event_types=(made.type,)),))  # fmt: skip
    note = unmatched_note(made, rules)
    assert note is not None
    assert "rule to.cqc matched but was excluded" in note
    assert "cqc's own programme" in note
