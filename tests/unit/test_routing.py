from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.routing import route
from consumers.rules import Rule
from schemas.events import ConcernRaised, ExceptionalPracticeIdentified
from schemas.inspectorates import PROGRAMMES, Agency, Inspectorate, Programme, owner_of
from services.rules_file import load_rules
from tests.factories import concern, good_practice

# The rules the router ships with: this table is what deploy/rules.toml must do.
SHIPPED = load_rules(Path(__file__).resolve().parents[2] / "deploy" / "rules.toml")


def programmes(event: ConcernRaised | ExceptionalPracticeIdentified) -> set[str]:
    return {d.programme.value for d in route(event, SHIPPED.rules)}


def rules_of(event: ConcernRaised | ExceptionalPracticeIdentified) -> set[str]:
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
