"""The five native producers: each inspectorate's own findings become contract events.

Expectations are written out here from each inspectorate's documented mapping, never
read back from the producer modules, so a changed mapping fails a test.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable
from enum import Enum
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producers import cqc, hmi_prisons, hmi_probation, hmicfrs, ofsted
from producers._native import NativeFinding
from producers.cqc import CqcFinding, CqcOutcome
from producers.hmi_prisons import HealthyPrisonScore, HealthyPrisonTest, HmiPrisonsFinding
from producers.hmi_probation import HmiProbationFinding, ProbationRating
from producers.hmicfrs import HmicfrsCategory, HmicfrsFinding, PeelGrade
from producers.ofsted import OfstedFinding, OfstedJudgement
from schemas.errors import SchemaError
from schemas.events import (
    Classification,
    ConcernRaised,
    ExceptionalPracticeIdentified,
    Finding,
    JtaiRequest,
    Theme,
    decode_event,
    encode_event,
)
from schemas.inspectorates import Agency, Inspectorate, Programme
from schemas.reference import local_authorities

NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
BIRMINGHAM = "E08000025"
REC = "The force should make sure referrals are reviewed by a supervisor within a day."

Event = ConcernRaised | ExceptionalPracticeIdentified


class Producer(NamedTuple):
    """One inspectorate's module, with a factory for a valid native concern."""

    inspectorate: Inspectorate
    to_event: Callable[..., Event]
    make: Callable[..., NativeFinding]
    exceptional: dict[str, Any]
    """Overrides turning the factory's concern into exceptional practice."""


def _common(**fields: Any) -> dict[str, Any]:
    return {
        "area": BIRMINGHAM,
        "occurred_at": NOW,
        "theme": Theme.NEGLECT,
        "summary": "Referrals wait too long for a decision.",
        **fields,
    }


def make_ofsted(**overrides: Any) -> OfstedFinding:
    """An inadequate ILACS grade, unless overridden."""
    fields = _common(
        programme=Programme.ILACS,
        subject_agencies=(Agency.LOCAL_AUTHORITY,),
        judgement=OfstedJudgement.INADEQUATE,
    )
    return OfstedFinding(**(fields | overrides))


def make_cqc(**overrides: Any) -> CqcFinding:
    """A CLAS review rated inadequate, unless overridden."""
    fields = _common(
        programme=Programme.CLAS,
        subject_agencies=(Agency.HEALTH,),
        theme=Theme.CHILDREN_IN_CARE,
        outcome=CqcOutcome.INADEQUATE,
    )
    return CqcFinding(**(fields | overrides))


def make_hmicfrs(**overrides: Any) -> HmicfrsFinding:
    """A PEEL cause of concern in an area graded requires improvement, unless overridden."""
    fields = _common(
        programme=Programme.PEEL,
        subject_agencies=(Agency.POLICE,),
        theme=Theme.MISSING_CHILDREN,
        category=HmicfrsCategory.CAUSE_OF_CONCERN,
        graded_judgement=PeelGrade.REQUIRES_IMPROVEMENT,
        recommendations=(REC,),
    )
    return HmicfrsFinding(**(fields | overrides))


def make_hmi_probation(**overrides: Any) -> HmiProbationFinding:
    """A youth justice service's assessment standard rated inadequate, unless overridden."""
    fields = _common(
        programme=Programme.YOUTH_JUSTICE,
        subject_agencies=(Agency.YOUTH_JUSTICE_SERVICE,),
        theme=Theme.SERIOUS_YOUTH_VIOLENCE,
        rating=ProbationRating.INADEQUATE,
        standard="2.1 Assessment",
    )
    return HmiProbationFinding(**(fields | overrides))


def make_hmi_prisons(**overrides: Any) -> HmiPrisonsFinding:
    """A safety test scored 1 (poor), unless overridden."""
    fields = _common(
        programme=Programme.CUSTODY,
        subject_agencies=(Agency.CUSTODY,),
        theme=Theme.CHILDREN_IN_CUSTODY,
        test=HealthyPrisonTest.SAFETY,
        score=HealthyPrisonScore.POOR,
    )
    return HmiPrisonsFinding(**(fields | overrides))


PRODUCERS = {
    Inspectorate.OFSTED: Producer(
        Inspectorate.OFSTED,
        ofsted.to_event,
        make_ofsted,
        {"judgement": OfstedJudgement.OUTSTANDING},
    ),
    Inspectorate.CQC: Producer(
        Inspectorate.CQC, cqc.to_event, make_cqc, {"outcome": CqcOutcome.OUTSTANDING}
    ),
    Inspectorate.HMICFRS: Producer(
        Inspectorate.HMICFRS,
        hmicfrs.to_event,
        make_hmicfrs,
        {"category": HmicfrsCategory.INNOVATIVE_PRACTICE, "recommendations": ()},
    ),
    Inspectorate.HMI_PROBATION: Producer(
        Inspectorate.HMI_PROBATION,
        hmi_probation.to_event,
        make_hmi_probation,
        {"rating": ProbationRating.OUTSTANDING},
    ),
    Inspectorate.HMI_PRISONS: Producer(
        Inspectorate.HMI_PRISONS,
        hmi_prisons.to_event,
        make_hmi_prisons,
        {"score": HealthyPrisonScore.GOOD, "notable_practice": True},
    ),
}

EXPECTED_PROGRAMMES = {
    Inspectorate.OFSTED: {
        Programme.ILACS,
        Programme.FOCUSED_VISIT,
        Programme.MONITORING_VISIT,
        Programme.JTAI,
    },
    Inspectorate.CQC: {Programme.CLAS, Programme.SAAS, Programme.CORE_SERVICE, Programme.JTAI},
    Inspectorate.HMICFRS: {Programme.PEEL, Programme.NCPI, Programme.JTAI},
    Inspectorate.HMI_PROBATION: {
        Programme.YOUTH_JUSTICE,
        Programme.PROBATION_SERVICE,
        Programme.JTAI,
    },
    # HMI Prisons is not a JTAI inspectorate.
    Inspectorate.HMI_PRISONS: {Programme.CUSTODY},
}

MODULES = {
    Inspectorate.OFSTED: (ofsted.INSPECTORATE, ofsted.PROGRAMMES),
    Inspectorate.CQC: (cqc.INSPECTORATE, cqc.PROGRAMMES),
    Inspectorate.HMICFRS: (hmicfrs.INSPECTORATE, hmicfrs.PROGRAMMES),
    Inspectorate.HMI_PROBATION: (hmi_probation.INSPECTORATE, hmi_probation.PROGRAMMES),
    Inspectorate.HMI_PRISONS: (hmi_prisons.INSPECTORATE, hmi_prisons.PROGRAMMES),
}


class Row(NamedTuple):
    """One line of an inspectorate's documented mapping table."""

    inspectorate: Inspectorate
    native: dict[str, Any]
    finding: Finding | None
    """``None``: exceptional practice."""
    severity: int | None = None
    immediate_risk: bool = False


OF, CQ, HM, PB, PR = (
    Inspectorate.OFSTED,
    Inspectorate.CQC,
    Inspectorate.HMICFRS,
    Inspectorate.HMI_PROBATION,
    Inspectorate.HMI_PRISONS,
)
COC, AFI, AFPA, UN = (
    Finding.CAUSE_OF_CONCERN,
    Finding.AREA_FOR_IMPROVEMENT,
    Finding.AREA_FOR_PRIORITY_ACTION,
    Finding.URGENT_NOTIFICATION,
)
ILACS = Programme.ILACS

MAPPING = [
    # Ofsted: ILACS grades, then what ungraded visits and JTAI letters report.
    Row(OF, {"judgement": OfstedJudgement.INADEQUATE, "programme": ILACS}, COC, 4),
    Row(
        OF,
        {
            "judgement": OfstedJudgement.INADEQUATE,
            "programme": ILACS,
            "children_at_immediate_risk": True,
        },
        COC,
        4,
        immediate_risk=True,
    ),
    Row(
        OF,
        {"judgement": OfstedJudgement.REQUIRES_IMPROVEMENT_TO_BE_GOOD, "programme": ILACS},
        AFI,
        2,
    ),
    Row(OF, {"judgement": OfstedJudgement.OUTSTANDING, "programme": ILACS}, None),
    Row(OF, {"judgement": OfstedJudgement.AREA_FOR_PRIORITY_ACTION}, AFPA, 3),
    Row(OF, {"judgement": OfstedJudgement.AREA_FOR_IMPROVEMENT}, AFI, 2),
    Row(OF, {"judgement": OfstedJudgement.OUTSTANDING_PRACTICE_HIGHLIGHTED}, None),
    # CQC: ratings and enforcement notices.
    Row(CQ, {"outcome": CqcOutcome.INADEQUATE}, COC, 4),
    Row(CQ, {"outcome": CqcOutcome.WARNING_NOTICE}, COC, 3),
    Row(CQ, {"outcome": CqcOutcome.REQUIRES_IMPROVEMENT}, AFI, 2),
    Row(CQ, {"outcome": CqcOutcome.REQUIREMENT_NOTICE}, AFI, 2),
    Row(CQ, {"outcome": CqcOutcome.OUTSTANDING}, None),
    # HMICFRS: the category, made graver by a PEEL grade of inadequate.
    Row(
        HM,
        {
            "category": HmicfrsCategory.CAUSE_OF_CONCERN,
            "graded_judgement": PeelGrade.INADEQUATE,
            "programme": Programme.PEEL,
            "recommendations": (REC,),
        },
        COC,
        4,
    ),
    Row(
        HM,
        {
            "category": HmicfrsCategory.CAUSE_OF_CONCERN,
            "graded_judgement": PeelGrade.REQUIRES_IMPROVEMENT,
            "programme": Programme.PEEL,
            "recommendations": (REC,),
        },
        COC,
        3,
    ),
    Row(
        HM,
        {
            "category": HmicfrsCategory.CAUSE_OF_CONCERN,
            "graded_judgement": None,
            "recommendations": (REC,),
        },
        COC,
        3,
    ),
    Row(
        HM,
        {
            "category": HmicfrsCategory.AREA_FOR_IMPROVEMENT,
            "graded_judgement": PeelGrade.INADEQUATE,
            "programme": Programme.PEEL,
            "recommendations": (),
        },
        AFI,
        2,
    ),
    Row(
        HM,
        {
            "category": HmicfrsCategory.INNOVATIVE_PRACTICE,
            "graded_judgement": None,
            "recommendations": (),
        },
        None,
    ),
    # HMI Probation: a whole service rated inadequate is graver than one standard.
    Row(PB, {"rating": ProbationRating.INADEQUATE, "standard": None}, COC, 4),
    Row(PB, {"rating": ProbationRating.INADEQUATE, "standard": "2.1 Assessment"}, COC, 3),
    Row(PB, {"rating": ProbationRating.REQUIRES_IMPROVEMENT}, AFI, 2),
    Row(PB, {"rating": ProbationRating.OUTSTANDING}, None),
    # HMI Prisons: urgent notifications, then scores.
    Row(
        PR,
        {"urgent_notification": True, "score": HealthyPrisonScore.POOR},
        UN,
        4,
        immediate_risk=True,
    ),
    Row(
        PR,
        {"urgent_notification": True, "score": HealthyPrisonScore.NOT_SUFFICIENTLY_GOOD},
        UN,
        4,
        immediate_risk=True,
    ),
    Row(PR, {"score": HealthyPrisonScore.POOR}, COC, 3),
    Row(PR, {"score": HealthyPrisonScore.NOT_SUFFICIENTLY_GOOD}, AFI, 2),
    Row(PR, {"score": HealthyPrisonScore.GOOD, "notable_practice": True}, None),
]

# Judgements an inspectorate makes that are neither a concern nor exceptional practice.
NO_EVENT: list[tuple[Inspectorate, dict[str, Any], str]] = [
    (OF, {"judgement": OfstedJudgement.GOOD}, "judgement"),
    (CQ, {"outcome": CqcOutcome.GOOD}, "outcome"),
    (PB, {"rating": ProbationRating.GOOD}, "rating"),
    (PR, {"score": HealthyPrisonScore.REASONABLY_GOOD}, "score"),
    (PR, {"score": HealthyPrisonScore.GOOD}, "score"),
]


def _row_id(row: Row) -> str:
    values = "-".join(str(v) for v in row.native.values() if not isinstance(v, tuple))
    return f"{row.inspectorate}-{values}"


@pytest.mark.parametrize("row", MAPPING, ids=_row_id)
def test_native_judgement_maps_as_documented(row: Row) -> None:
    producer = PRODUCERS[row.inspectorate]
    event = producer.to_event(producer.make(**row.native))
    assert event.source is row.inspectorate
    assert event.programme in EXPECTED_PROGRAMMES[row.inspectorate]
    if row.finding is None:
        assert isinstance(event, ExceptionalPracticeIdentified)
    else:
        assert isinstance(event, ConcernRaised)
        assert (event.finding, event.severity, event.immediate_risk) == (
            row.finding,
            row.severity,
            row.immediate_risk,
        )


@pytest.mark.parametrize(("inspectorate", "native", "field"), NO_EVENT)
def test_judgements_that_are_neither_concern_nor_exceptional_raise_no_event(
    inspectorate: Inspectorate, native: dict[str, Any], field: str
) -> None:
    producer = PRODUCERS[inspectorate]
    with pytest.raises(SchemaError, match="no event to raise") as caught:
        producer.to_event(producer.make(**native))
    assert [p.path for p in caught.value.problems] == [field]


@pytest.mark.parametrize(
    ("field", "vocabulary"),
    [
        ("judgement", OfstedJudgement),
        ("outcome", CqcOutcome),
        ("category", HmicfrsCategory),
        ("rating", ProbationRating),
        ("score", HealthyPrisonScore),
    ],
)
def test_every_native_value_has_a_row(field: str, vocabulary: type[Enum]) -> None:
    covered = {row.native[field] for row in MAPPING if field in row.native}
    covered |= {native[field] for _, native, _ in NO_EVENT if field in native}
    assert covered == set(vocabulary)


@pytest.mark.parametrize("inspectorate", list(Inspectorate))
def test_each_module_declares_its_inspectorate_and_programmes(inspectorate: Inspectorate) -> None:
    declared, programmes = MODULES[inspectorate]
    assert declared is inspectorate
    assert set(programmes) == EXPECTED_PROGRAMMES[inspectorate]
    assert len(programmes) == len(set(programmes))


@pytest.mark.parametrize("inspectorate", list(Inspectorate))
def test_event_id_is_honoured_and_otherwise_random(inspectorate: Inspectorate) -> None:
    producer = PRODUCERS[inspectorate]
    fixed = uuid.UUID("6f1c1d4e-2b8a-4c39-9d0e-3a7b5c2e9f10")
    finding = producer.make()
    assert producer.to_event(finding, event_id=fixed).id == fixed
    first, second = producer.to_event(finding), producer.to_event(finding)
    assert first.id.version == 4
    assert first.id != second.id


@pytest.mark.parametrize("inspectorate", list(Inspectorate))
def test_same_finding_and_id_give_the_same_event(inspectorate: Inspectorate) -> None:
    producer = PRODUCERS[inspectorate]
    fixed = uuid.UUID(int=7)
    assert producer.to_event(producer.make(), event_id=fixed) == producer.to_event(
        producer.make(), event_id=fixed
    )


@pytest.mark.parametrize("inspectorate", list(Inspectorate))
def test_no_clock_is_read(inspectorate: Inspectorate) -> None:
    # Years ahead of any clock: only the publisher, which has one, may refuse it.
    later = dt.datetime(2031, 6, 1, 9, 0, tzinfo=dt.UTC)
    producer = PRODUCERS[inspectorate]
    assert producer.to_event(producer.make(occurred_at=later)).occurred_at == later


@pytest.mark.parametrize("inspectorate", list(Inspectorate))
def test_native_fields_are_carried_over(inspectorate: Inspectorate) -> None:
    producer = PRODUCERS[inspectorate]
    london = dt.datetime(2026, 7, 1, 0, 30, tzinfo=ZoneInfo("Europe/London"))
    native = producer.make(
        occurred_at=london,
        subject_agencies=(Agency.MULTI_AGENCY, Agency.EDUCATION),
        theme=Theme.EARLY_HELP,
        evidence_refs=("Paragraph 12",),
        classification=Classification.OFFICIAL,
        children_affected=12,
    )
    event = producer.to_event(native)
    assert isinstance(event, ConcernRaised)
    assert (event.area, event.occurred_at, event.theme) == (BIRMINGHAM, london, Theme.EARLY_HELP)
    assert event.subject_agencies == (Agency.MULTI_AGENCY, Agency.EDUCATION)
    assert event.evidence_refs[0] == "Paragraph 12"
    assert event.classification is Classification.OFFICIAL
    assert event.children_affected == 12
    assert event.summary.startswith("Referrals wait too long for a decision.")
    assert event.jtai is None
    assert producer.to_event(producer.make()).classification is Classification.OFFICIAL_SENSITIVE


@pytest.mark.parametrize("inspectorate", list(Inspectorate))
def test_jtai_rationale_requests_a_jtai(inspectorate: Inspectorate) -> None:
    producer = PRODUCERS[inspectorate]
    why = "Agencies do not share information about children missing from home."
    event = producer.to_event(producer.make(jtai_rationale=why))
    assert isinstance(event, ConcernRaised)
    assert event.jtai == JtaiRequest(requested=True, rationale=why)


@pytest.mark.parametrize("inspectorate", list(Inspectorate))
def test_exceptional_practice_carries_shareable_learning(inspectorate: Inspectorate) -> None:
    producer = PRODUCERS[inspectorate]
    learning = "A daily multi-agency huddle decides every referral before noon."
    event = producer.to_event(producer.make(**producer.exceptional, shareable_learning=learning))
    assert isinstance(event, ExceptionalPracticeIdentified)
    assert event.shareable_learning == learning


@pytest.mark.parametrize(
    ("inspectorate", "programme"),
    [
        (inspectorate, programme)
        for inspectorate in Inspectorate
        for programme in Programme
        if programme not in EXPECTED_PROGRAMMES[inspectorate]
    ],
)
def test_a_programme_the_inspectorate_does_not_run_is_refused(
    inspectorate: Inspectorate, programme: Programme
) -> None:
    producer = PRODUCERS[inspectorate]
    with pytest.raises(SchemaError, match=f"programme: '{programme}' is not a programme") as caught:
        producer.to_event(producer.make(programme=programme))
    assert "programme" in [p.path for p in caught.value.problems]


@pytest.mark.parametrize("inspectorate", list(Inspectorate))
def test_a_terminated_area_names_its_successors(inspectorate: Inspectorate) -> None:
    producer = PRODUCERS[inspectorate]
    native = producer.make(
        area="E10000006",  # Cumbria, split on 2023-04-01
        occurred_at=dt.datetime(2024, 1, 1, 10, 0, tzinfo=dt.UTC),
    )
    with pytest.raises(SchemaError) as caught:
        producer.to_event(native)
    assert "E06000063" in str(caught.value)
    assert "E06000064" in str(caught.value)
    assert [p.path for p in caught.value.problems] == ["area"]


@pytest.mark.parametrize("inspectorate", list(Inspectorate))
def test_a_naive_datetime_is_refused(inspectorate: Inspectorate) -> None:
    producer = PRODUCERS[inspectorate]
    with pytest.raises(
        SchemaError, match="occurred_at: must be an RFC 3339 date-time with an offset"
    ):
        producer.to_event(producer.make(occurred_at=NOW.replace(tzinfo=None)))


EMAIL = "jo.bloggs@example.org"


@pytest.mark.parametrize(
    ("inspectorate", "native", "field"),
    [
        *((i, {"summary": f"Ask {EMAIL} for the audit."}, "summary") for i in Inspectorate),
        (OF, {"jtai_rationale": f"Raised by {EMAIL} at the visit."}, "jtai_rationale"),
        (HM, {"recommendations": (REC, f"Copy {EMAIL} in.")}, "recommendations.1"),
        (PB, {"recommendations": (f"Write to {EMAIL}.",)}, "recommendations.0"),
        (
            CQ,
            {"outcome": CqcOutcome.OUTSTANDING, "shareable_learning": f"Email {EMAIL}."},
            "shareable_learning",
        ),
    ],
)
def test_personal_data_is_refused_naming_field_and_rule_not_the_data(
    inspectorate: Inspectorate, native: dict[str, Any], field: str
) -> None:
    producer = PRODUCERS[inspectorate]
    with pytest.raises(SchemaError) as caught:
        producer.to_event(producer.make(**native))
    message = str(caught.value)
    assert f"{field}: contains an email address (rule email)" in message
    assert "jo.bloggs" not in message
    assert "jo.bloggs" not in repr(caught.value.problems)
    assert [p.path for p in caught.value.problems] == [field]


@pytest.mark.parametrize("inspectorate", list(Inspectorate))
def test_concern_only_fields_are_refused_on_exceptional_practice(
    inspectorate: Inspectorate,
) -> None:
    producer = PRODUCERS[inspectorate]
    native = producer.make(
        **producer.exceptional,
        children_affected=3,
        children_at_immediate_risk=True,
        jtai_rationale="Partners disagree about thresholds.",
    )
    with pytest.raises(SchemaError, match="is for concerns") as caught:
        producer.to_event(native)
    paths = {p.path for p in caught.value.problems}
    assert paths == {"children_affected", "children_at_immediate_risk", "jtai_rationale"}


@pytest.mark.parametrize("inspectorate", list(Inspectorate))
def test_shareable_learning_is_refused_on_a_concern(inspectorate: Inspectorate) -> None:
    producer = PRODUCERS[inspectorate]
    with pytest.raises(SchemaError, match="shareable_learning: is for exceptional practice"):
        producer.to_event(producer.make(shareable_learning="Others could copy the triage."))


@pytest.mark.parametrize(
    ("inspectorate", "native", "field", "reason"),
    [
        (
            OF,
            {"judgement": OfstedJudgement.INADEQUATE, "programme": Programme.FOCUSED_VISIT},
            "judgement",
            "is an ILACS grade",
        ),
        (
            HM,
            {"graded_judgement": PeelGrade.INADEQUATE, "programme": Programme.NCPI},
            "graded_judgement",
            "only PEEL grades",
        ),
        (HM, {"recommendations": ()}, "recommendations", "at least one recommendation"),
        (
            HM,
            {"category": HmicfrsCategory.AREA_FOR_IMPROVEMENT},
            "recommendations",
            "carries no recommendations",
        ),
        (
            HM,
            {"category": HmicfrsCategory.INNOVATIVE_PRACTICE},
            "recommendations",
            "is for concerns",
        ),
        (
            PB,
            {"rating": ProbationRating.OUTSTANDING, "recommendations": (REC,)},
            "recommendations",
            "is for concerns",
        ),
        (
            PR,
            {"urgent_notification": True, "notable_practice": True},
            "notable_practice",
            "urgent notification",
        ),
        (
            PR,
            {"score": HealthyPrisonScore.REASONABLY_GOOD, "notable_practice": True},
            "notable_practice",
            "scored 4 (good), not 3",
        ),
        (OF, {"judgement": "satisfactory"}, "judgement", "must be one of: inadequate, requires"),
    ],
)
def test_native_findings_the_contract_cannot_express_are_refused(
    inspectorate: Inspectorate, native: dict[str, Any], field: str, reason: str
) -> None:
    producer = PRODUCERS[inspectorate]
    with pytest.raises(SchemaError) as caught:
        producer.to_event(producer.make(**native))
    (problem,) = caught.value.problems
    assert problem.path == field
    assert reason in problem.reason


def test_recommendations_are_appended_to_the_summary() -> None:
    second = "The force should train call handlers in recognising exploitation."
    event = hmicfrs.to_event(make_hmicfrs(recommendations=(REC, second)))
    assert event.summary == (
        f"Referrals wait too long for a decision.\n\nRecommendations:\n1. {REC}\n2. {second}"
    )


def test_the_rated_standard_and_the_healthy_prison_test_become_evidence_refs() -> None:
    probation = hmi_probation.to_event(make_hmi_probation(evidence_refs=("https://x.test/r",)))
    assert probation.evidence_refs == ("https://x.test/r", "standard 2.1 Assessment")
    overall = hmi_probation.to_event(make_hmi_probation(standard=None))
    assert overall.evidence_refs == ()
    prisons = hmi_prisons.to_event(
        make_hmi_prisons(test=HealthyPrisonTest.REHABILITATION_AND_RELEASE_PLANNING)
    )
    assert prisons.evidence_refs == ("healthy prison test: rehabilitation and release planning",)


# Hypothesis: any expressible native finding round-trips through the codec unchanged.

WINDOW_START = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
LIVE_AREAS = sorted(
    code
    for code, authority in local_authorities().items()
    if authority.live_on(WINDOW_START.date()) and authority.live_on(NOW.date())
)

_text = st.text(
    # Digits and "@" are what the personal-data rules hang on; without them no text trips.
    # Unicode text: a lone surrogate is not (its refusal has its own test).
    st.characters(exclude_characters="@0123456789", exclude_categories=["Cs"]),
    min_size=1,
    max_size=200,
)


@st.composite
def native_findings(draw: st.DrawFn) -> tuple[Row, Producer, NativeFinding]:
    """Any row of a documented mapping, filled in with arbitrary valid native fields."""
    row = draw(st.sampled_from(MAPPING))
    producer = PRODUCERS[row.inspectorate]
    fields: dict[str, Any] = {
        "area": draw(st.sampled_from(LIVE_AREAS)),
        "occurred_at": WINDOW_START + dt.timedelta(seconds=draw(st.integers(0, 27_000_000))),
        "programme": draw(st.sampled_from(sorted(EXPECTED_PROGRAMMES[row.inspectorate]))),
        "subject_agencies": tuple(draw(st.lists(st.sampled_from(list(Agency)), min_size=1))),
        "theme": draw(st.sampled_from(list(Theme))),
        "summary": draw(_text),
        "evidence_refs": tuple(draw(st.lists(st.text(min_size=1, max_size=80), max_size=3))),
        "classification": draw(st.sampled_from(list(Classification))),
    }
    if row.finding is None:
        fields["shareable_learning"] = draw(st.none() | _text)
    else:
        fields["children_affected"] = draw(st.none() | st.integers(0, 10_000))
        fields["children_at_immediate_risk"] = row.immediate_risk or draw(st.booleans())
        fields["jtai_rationale"] = draw(st.none() | _text)
        if row.inspectorate is Inspectorate.HMI_PROBATION:
            fields["recommendations"] = tuple(draw(st.lists(_text, max_size=3)))
    fields |= row.native
    if row.inspectorate is Inspectorate.HMICFRS and row.native.get("recommendations"):
        fields["recommendations"] = tuple(draw(st.lists(_text, min_size=1, max_size=3)))
    return row, producer, producer.make(**fields)


@given(native_findings(), st.uuids())
def test_any_native_finding_becomes_an_event_that_round_trips(
    drawn: tuple[Row, Producer, NativeFinding], event_id: uuid.UUID
) -> None:
    row, producer, native = drawn
    event = producer.to_event(native, event_id=event_id)
    assert decode_event(encode_event(event)) == event
    assert event.id == event_id
    assert event.source is row.inspectorate
    assert event.programme == native.programme
    assert (event.area, event.occurred_at, event.theme) == (
        native.area,
        native.occurred_at,
        native.theme,
    )
    assert event.subject_agencies == native.subject_agencies
    assert event.summary.startswith(native.summary)
    if row.finding is None:
        assert isinstance(event, ExceptionalPracticeIdentified)
        assert event.shareable_learning == native.shareable_learning
    else:
        assert isinstance(event, ConcernRaised)
        assert (event.finding, event.severity) == (row.finding, row.severity)
        assert event.immediate_risk == native.children_at_immediate_risk
        assert event.children_affected == native.children_affected
        assert (event.jtai is not None) == (native.jtai_rationale is not None)


@pytest.mark.parametrize("inspectorate", list(Inspectorate))
def test_native_findings_are_frozen(inspectorate: Inspectorate) -> None:
    native = PRODUCERS[inspectorate].make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        native.summary = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("inspectorate", list(Inspectorate))
def test_a_native_text_that_is_not_unicode_is_refused(inspectorate: Inspectorate) -> None:
    producer = PRODUCERS[inspectorate]
    with pytest.raises(SchemaError, match="unpaired surrogate"):
        producer.to_event(producer.make(summary="Referrals wait \ud800 days."))
