"""The routing rules file: the shipped file, every problem's message, and round trips."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from consumers.rules import EventType, JtaiSettings, Rule, RuleSet
from schemas.errors import ConfigurationError
from schemas.events import (
    CONCERN_RAISED,
    EXCEPTIONAL_PRACTICE_IDENTIFIED,
    FINDING_TYPES,
    RECOMMENDATION_MADE,
    RECOMMENDATION_REVIEWED,
    Finding,
    Progress,
    Theme,
)
from schemas.inspectorates import JTAI, Agency, Programme
from services.rules_file import load_rules

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "rules.toml"

_CONCERN: tuple[EventType, ...] = (CONCERN_RAISED,)
_RECOMMENDATION: tuple[EventType, ...] = (RECOMMENDATION_MADE, RECOMMENDATION_REVIEWED)

# The rules Liaison routed by before they moved to deploy/rules.toml (the Python
# DEFAULT_RULES, verbatim), then those of issue 11 (severe concerns about children's
# social care, recommendations and their reviews): the shipped file must say exactly this.
EXPECTED = RuleSet(
    rules=(
        Rule(
            id="police.ncpi",
            reason="concern about police practice: HMICFRS national child protection inspection",
            event_types=_CONCERN,
            agencies=(Agency.POLICE,),
            to=(Programme.NCPI,),
        ),
        Rule(
            id="police.peel",
            reason="cause of concern about police practice: HMICFRS PEEL",
            event_types=_CONCERN,
            agencies=(Agency.POLICE,),
            findings=(Finding.CAUSE_OF_CONCERN,),
            to=(Programme.PEEL,),
        ),
        Rule(
            id="health.clas",
            reason="concern about health services: CQC children looked after and safeguarding",
            event_types=_CONCERN,
            agencies=(Agency.HEALTH,),
            to=(Programme.CLAS,),
        ),
        Rule(
            id="health.saas",
            reason="sexual abuse theme in health services: CQC sexual assault services",
            event_types=_CONCERN,
            agencies=(Agency.HEALTH,),
            themes=(Theme.CHILD_SEXUAL_ABUSE_IN_FAMILY, Theme.CHILD_SEXUAL_EXPLOITATION),
            to=(Programme.SAAS,),
        ),
        Rule(
            id="social_care.ilacs",
            reason="concern about children's social care: Ofsted ILACS",
            event_types=_CONCERN,
            agencies=(Agency.LOCAL_AUTHORITY,),
            to=(Programme.ILACS,),
        ),
        Rule(
            id="front_door.ilacs",
            reason="concern about the front door: Ofsted ILACS",
            event_types=_CONCERN,
            themes=(Theme.FRONT_DOOR,),
            to=(Programme.ILACS,),
        ),
        Rule(
            id="youth_justice.probation",
            reason="concern about youth justice or probation: HMI Probation youth justice",
            event_types=_CONCERN,
            agencies=(Agency.YOUTH_JUSTICE_SERVICE, Agency.PROBATION),
            to=(Programme.YOUTH_JUSTICE,),
        ),
        Rule(
            id="custody.prisons",
            reason="concern about custody: HMI Prisons custody inspection",
            event_types=_CONCERN,
            agencies=(Agency.CUSTODY,),
            to=(Programme.CUSTODY,),
        ),
        Rule(
            id="jtai.requested",
            reason="the publishing inspectorate requested a JTAI",
            event_types=_CONCERN,
            jtai_requested=True,
            to=(JTAI,),
        ),
        Rule(
            id="jtai.urgent",
            reason="urgent notification: JTAI partners must know",
            event_types=_CONCERN,
            findings=(Finding.URGENT_NOTIFICATION,),
            to=(JTAI,),
        ),
        Rule(
            id="jtai.deep_dive",
            reason="theme of the current JTAI deep dive",
            event_types=_CONCERN,
            themes=(Theme.SERIOUS_YOUTH_VIOLENCE, Theme.MENTAL_HEALTH),
            to=(JTAI,),
        ),
        Rule(
            id="social_care.severe.partners",
            reason="severe concern about children's social care: the safeguarding partners'"
            " inspectorates",
            event_types=_CONCERN,
            agencies=(Agency.LOCAL_AUTHORITY,),
            min_severity=4,
            to=(Programme.CLAS, Programme.NCPI, Programme.YOUTH_JUSTICE),
        ),
        Rule(
            id="jtai.severe",
            reason="severity 4 concern: it raises a JTAI consideration",
            event_types=_CONCERN,
            min_severity=4,
            to=(JTAI,),
        ),
        Rule(
            id="recommendation.police",
            reason="recommendation to the police, or its review: Ofsted ILACS and HMICFRS NCPI",
            event_types=_RECOMMENDATION,
            agencies=(Agency.POLICE,),
            to=(Programme.ILACS, Programme.NCPI),
        ),
        Rule(
            id="recommendation.health",
            reason="recommendation to health services, or its review: Ofsted ILACS and CQC CLAS",
            event_types=_RECOMMENDATION,
            agencies=(Agency.HEALTH,),
            to=(Programme.ILACS, Programme.CLAS),
        ),
        Rule(
            id="recommendation.social_care",
            reason="recommendation to children's social care, or its review: ILACS and the"
            " partners' inspectorates",
            event_types=_RECOMMENDATION,
            agencies=(Agency.LOCAL_AUTHORITY,),
            to=(Programme.ILACS, Programme.CLAS, Programme.NCPI),
        ),
        Rule(
            id="recommendation.youth_justice",
            reason="recommendation to youth justice or probation, or its review: ILACS and HMI"
            " Probation",
            event_types=_RECOMMENDATION,
            agencies=(Agency.YOUTH_JUSTICE_SERVICE, Agency.PROBATION),
            to=(Programme.ILACS, Programme.YOUTH_JUSTICE),
        ),
        Rule(
            id="recommendation.custody",
            reason="recommendation to custody, or its review: HMI Prisons and HMI Probation"
            " youth justice",
            event_types=_RECOMMENDATION,
            agencies=(Agency.CUSTODY,),
            to=(Programme.CUSTODY, Programme.YOUTH_JUSTICE),
        ),
        Rule(
            id="recommendation.education",
            reason="recommendation to education, or its review: Ofsted ILACS",
            event_types=_RECOMMENDATION,
            agencies=(Agency.EDUCATION,),
            to=(Programme.ILACS,),
        ),
        Rule(
            id="recommendation.multi_agency",
            reason="recommendation to the multi-agency partnership, or its review: every"
            " partner's inspectorate and JTAI",
            event_types=_RECOMMENDATION,
            agencies=(Agency.MULTI_AGENCY,),
            to=(Programme.ILACS, Programme.CLAS, Programme.NCPI, Programme.YOUTH_JUSTICE, JTAI),
        ),
        Rule(
            id="review.not_progressing.jtai",
            reason="recommendation reviewed as not progressing: it counts towards a JTAI",
            event_types=(RECOMMENDATION_REVIEWED,),
            progress=(Progress.NOT_PROGRESSING,),
            to=(JTAI,),
        ),
        Rule(
            id="exceptional_practice.share",
            reason="exceptional practice is shared with every other inspectorate",
            event_types=(EXCEPTIONAL_PRACTICE_IDENTIFIED,),
            to=tuple(programme for programme in Programme if programme is not JTAI),
        ),
    ),
    jtai=JtaiSettings(window_days=180, min_inspectorates=2),
)

GOOD = '[[rule]]\nid = "x"\nreason = "r"\nto = ["ilacs"]\n'

ALL_AGENCIES = (
    "local_authority, police, health, youth_justice_service, probation, custody,"
    " education, multi_agency"
)
ALL_PROGRAMMES = (
    "ilacs, focused_visit, monitoring_visit, clas, saas, core_service, peel, ncpi,"
    " youth_justice, probation_service, custody, jtai"
)
RULE_KEYS = (
    "id, reason, to, event_types, agencies, themes, findings, jtai_requested, min_severity,"
    " progress"
)


def problems_in(tmp_path: Path, text: str) -> list[str]:
    """The problems ``load_rules`` reports for a file holding ``text``, file name removed."""
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return problems_of(path)


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        load_rules(path)
    lines = str(caught.value).splitlines()
    for line in lines:
        assert line.startswith(f"{path}: "), line  # every line names the file
    return [line.removeprefix(f"{path}: ") for line in lines]


def rule(body: str, rule_id: str | None = "x") -> str:
    """One [[rule]] block: an id (unless None), a reason and ``to`` unless ``body`` sets them."""
    lines = ["[[rule]]"]
    if rule_id is not None and "id =" not in body:
        lines.append(f'id = "{rule_id}"')
    if "reason =" not in body:
        lines.append('reason = "r"')
    if "to =" not in body:
        lines.append('to = ["ilacs"]')
    return "\n".join([*lines, body, ""])


# --- the shipped file --------------------------------------------------------------------


def test_shipped_rules_are_the_rules_liaison_routes_by() -> None:
    assert load_rules(SHIPPED) == EXPECTED


def test_shipped_file_explains_its_format_and_the_deep_dive_list() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    assert "EVERY condition" in text
    assert "ANY" in text
    assert "liaison.jtai" in text
    assert "never to a programme of its own" in text
    assert "The current JTAI deep-dive list" in text


def test_jtai_table_may_be_left_out_for_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(GOOD, encoding="utf-8")
    assert load_rules(path).jtai == JtaiSettings(window_days=180, min_inspectorates=2)


# --- one problem, its message --------------------------------------------------------------

# (file text, the one problem reported)
ONE_PROBLEM: list[tuple[str, str]] = [
    (
        rule('agencies = ["polise"]', "police.ncpi"),
        f"rule 'police.ncpi' (#1): agencies.0: 'polise' is not an agency (one of: {ALL_AGENCIES})",
    ),
    (
        rule('to = ["nowhere"]'),
        f"rule 'x' (#1): to.0: 'nowhere' is not a programme (one of: {ALL_PROGRAMMES})",
    ),
    (rule("to = []"), "rule 'x' (#1): to: must list at least one programme"),
    (
        rule('themes = ["neglekt"]'),
        "rule 'x' (#1): themes.0: 'neglekt' is not a theme (one of: front_door, domestic_abuse,"
        " child_sexual_exploitation, child_criminal_exploitation, missing_children, neglect,"
        " child_sexual_abuse_in_family, serious_youth_violence, mental_health,"
        " children_in_care, care_leavers, children_in_custody, early_help, other)",
    ),
    (
        rule('findings = ["serious"]'),
        "rule 'x' (#1): findings.0: 'serious' is not a finding (one of: cause_of_concern,"
        " area_for_improvement, area_for_priority_action, urgent_notification)",
    ),
    (
        rule('event_types = ["uk.inspectorate.concern.raised.v2"]'),
        "rule 'x' (#1): event_types.0: 'uk.inspectorate.concern.raised.v2' is not an event"
        " type (one of: uk.inspectorate.concern.raised.v1,"
        " uk.inspectorate.exceptional_practice.identified.v1,"
        " uk.inspectorate.recommendation.made.v1, uk.inspectorate.recommendation.reviewed.v1)",
    ),
    (rule("min_severity = 5"), "rule 'x' (#1): min_severity: must be at most 4, not 5"),
    (rule("min_severity = 0"), "rule 'x' (#1): min_severity: must be at least 1, not 0"),
    (
        rule('min_severity = "4"'),
        "rule 'x' (#1): min_severity: must be a whole number (without quotes), not '4'",
    ),
    (
        rule("min_severity = 4.0"),
        "rule 'x' (#1): min_severity: must be a whole number (without quotes), not 4.0",
    ),
    (
        rule('progress = ["stalled"]'),
        "rule 'x' (#1): progress.0: 'stalled' is not a progress judgement (one of: achieved,"
        " progressing, not_progressing, no_longer_applicable)",
    ),
    (
        rule('progress = "not_progressing"'),
        "rule 'x' (#1): progress: must be a list, e.g. progress = [\"...\"], not 'not_progressing'",
    ),
    (
        rule('min_severity = 4\nprogress = ["not_progressing"]'),
        "rule 'x' (#1): sets min_severity, which only concerns have, and progress, which only"
        " recommendation reviews have: no event can match it",
    ),
    (
        rule('findings = ["cause_of_concern"]\njtai_requested = true\nprogress = ["achieved"]'),
        "rule 'x' (#1): sets findings and jtai_requested, which only concerns have, and"
        " progress, which only recommendation reviews have: no event can match it",
    ),
    (
        rule('event_types = ["uk.inspectorate.recommendation.made.v1"]\nmin_severity = 3'),
        "rule 'x' (#1): sets min_severity, which only uk.inspectorate.concern.raised.v1 events"
        " have, but event_types leaves that type out: no event can match it",
    ),
    (
        rule(
            'event_types = ["uk.inspectorate.recommendation.made.v1"]\n'
            'progress = ["not_progressing"]'
        ),
        "rule 'x' (#1): sets progress, which only uk.inspectorate.recommendation.reviewed.v1"
        " events have, but event_types leaves that type out: no event can match it",
    ),
    (
        rule('themes = "neglect"'),
        "rule 'x' (#1): themes: must be a list, e.g. themes = [\"...\"], not 'neglect'",
    ),
    (
        rule('jtai_requested = "true"'),
        "rule 'x' (#1): jtai_requested: must be true or false (without quotes), not 'true'",
    ),
    (rule('reason = ""'), "rule 'x' (#1): reason: must not be empty"),
    (
        rule(f'reason = "{"r" * 201}"'),
        "rule 'x' (#1): reason: must be at most 200 characters (it has 201)",
    ),
    (
        rule('agency = ["police"]'),
        "rule 'x' (#1): unknown key 'agency' (did you mean 'agencies'?)",
    ),
    (rule('colour = "red"'), f"rule 'x' (#1): unknown key 'colour' (expected one of: {RULE_KEYS})"),
    (GOOD + rule("", rule_id=None), "rule #2: id is required"),
    ('[[rule]]\nid = "x"\nto = ["ilacs"]\n', "rule 'x' (#1): reason is required"),
    ('[[rule]]\nid = "x"\nreason = "r"\n', "rule 'x' (#1): to is required"),
    (
        rule('id = "Police NCPI"'),
        "rule #1: id: 'Police NCPI' is not a valid id (use lowercase letters, digits, '.',"
        " '_' and '-', starting with a letter or digit)",
    ),
    (rule('id = ""'), "rule #1: id: must not be empty"),
    (rule("id = 7"), "rule #1: id: must be a string in double quotes, not 7"),
    (
        GOOD + rule("", "y") + rule("", "x"),
        "rule 'x': duplicate id, used by rules #1 and #3",
    ),
    (GOOD + GOOD + GOOD, "rule 'x': duplicate id, used by rules #1, #2 and #3"),
    ("", "no rules: add at least one [[rule]] block"),
    ("rule = []\n", "no rules: add at least one [[rule]] block"),
    (
        '[rule]\nid = "x"\nreason = "r"\nto = ["ilacs"]\n',
        "rule: write each rule as a [[rule]] block (double brackets)",
    ),
    ("rule = [1]\n", "rule #1: must be a [[rule]] block, not a plain value"),
    (GOOD + "[[rules]]\n", "unknown top-level key 'rules' (did you mean 'rule'?)"),
    (
        'colour = "red"\n' + GOOD,
        "unknown top-level key 'colour' (only [jtai] and [[rule]] blocks belong here)",
    ),
    ("jtai = 3\n" + GOOD, "jtai: must be a table ([jtai] with window_days, min_inspectorates)"),
    ("[jtai]\nwindow_days = 0\n" + GOOD, "jtai: window_days: must be at least 1, not 0"),
    ("[jtai]\nwindow_days = 3651\n" + GOOD, "jtai: window_days: must be at most 3650, not 3651"),
    (
        "[jtai]\nwindow_days = 180.0\n" + GOOD,
        "jtai: window_days: must be a whole number (without quotes), not 180.0",
    ),
    (
        '[jtai]\nwindow_days = "180"\n' + GOOD,
        "jtai: window_days: must be a whole number (without quotes), not '180'",
    ),
    (
        "[jtai]\nmin_inspectorates = true\n" + GOOD,
        "jtai: min_inspectorates: must be a whole number (without quotes), not true",
    ),
    (
        "[jtai]\nmin_inspectorates = 1\n" + GOOD,
        "jtai: min_inspectorates: must be at least 2, not 1",
    ),
    ("[jtai]\nmin_inspectorates = 6\n" + GOOD, "jtai: min_inspectorates: must be at most 5, not 6"),
    ("[jtai]\nwindow = 30\n" + GOOD, "jtai: unknown key 'window' (did you mean 'window_days'?)"),
    ("[[rule]]\nid = \n", "not valid TOML (line 2, column 6): invalid value"),
    (
        "[jtai\n",
        "not valid TOML (line 1, column 6): expected ']' at the end of a table declaration",
    ),
    ('[[rule]]\nid = "x\n', "not valid TOML (line 2, column 8): illegal character '\\n'"),
    ("x = [1,\n", "not valid TOML (at the end of the file): invalid value"),
]


@pytest.mark.parametrize(("text", "problem"), ONE_PROBLEM)
def test_each_problem_is_named_in_plain_english(tmp_path: Path, text: str, problem: str) -> None:
    assert problems_in(tmp_path, text) == [problem]


def test_a_list_of_only_bad_items_is_not_also_called_empty(tmp_path: Path) -> None:
    # pydantic also reports `to` too short once its one item is refused: that is noise.
    (problem,) = problems_in(tmp_path, rule('to = ["nowhere"]'))
    assert problem.startswith("rule 'x' (#1): to.0: 'nowhere' is not a programme")


def test_rules_misspelt_as_rules_is_named_and_so_is_the_lack_of_rules(tmp_path: Path) -> None:
    assert problems_in(tmp_path, GOOD.replace("[[rule]]", "[[rules]]")) == [
        "unknown top-level key 'rules' (did you mean 'rule'?)",
        "no rules: add at least one [[rule]] block",
    ]


def test_missing_file(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "absent.toml") == ["file not found"]


def test_a_directory_is_not_a_rules_file(tmp_path: Path) -> None:
    assert problems_of(tmp_path) == ["is a directory, not a rules file"]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(b"# r\xe9gles\n" + GOOD.encode())
    assert problems_of(path) == ["not UTF-8 text (byte 3 cannot be decoded); TOML files are UTF-8"]


def test_the_message_names_the_path_as_given(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"^deploy/absent\.toml: file not found$"):
        load_rules(Path("deploy/absent.toml"))


# --- every problem at once -----------------------------------------------------------------


def test_every_problem_is_reported_at_once_one_per_line(tmp_path: Path) -> None:
    text = "\n".join(
        [
            'colour = "blue"',
            "[jtai]",
            "window_days = 0",
            "min_inspectorates = 9",
            rule('agencies = ["polise"]', "police.ncpi"),
            rule('id = "Bad Id"\nreason = ""\nto = []\nagency = ["police"]'),
            rule('to = ["nowhere"]\njtai_requested = "yes"', rule_id=None),
            rule('findings = ["bad"]', "police.ncpi"),
        ]
    )
    assert problems_in(tmp_path, text) == [
        "unknown top-level key 'colour' (only [jtai] and [[rule]] blocks belong here)",
        f"rule 'police.ncpi' (#1): agencies.0: 'polise' is not an agency (one of: {ALL_AGENCIES})",
        "rule #2: id: 'Bad Id' is not a valid id (use lowercase letters, digits, '.', '_' and"
        " '-', starting with a letter or digit)",
        "rule #2: reason: must not be empty",
        "rule #2: to: must list at least one programme",
        "rule #2: unknown key 'agency' (did you mean 'agencies'?)",
        "rule #3: id is required",
        f"rule #3: to.0: 'nowhere' is not a programme (one of: {ALL_PROGRAMMES})",
        "rule #3: jtai_requested: must be true or false (without quotes), not 'yes'",
        "rule 'police.ncpi' (#4): findings.0: 'bad' is not a finding (one of: cause_of_concern,"
        " area_for_improvement, area_for_priority_action, urgent_notification)",
        "rule 'police.ncpi': duplicate id, used by rules #1 and #4",
        "jtai: window_days: must be at least 1, not 0",
        "jtai: min_inspectorates: must be at most 5, not 9",
    ]


def test_configuration_error_is_a_value_error_that_no_retry_fixes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file not found") as caught:
        load_rules(tmp_path / "absent.toml")
    assert isinstance(caught.value, ConfigurationError)
    assert not caught.value.retriable


# --- the models themselves -----------------------------------------------------------------


def test_event_types_are_the_contract_s() -> None:
    assert get_args(EventType) == FINDING_TYPES


def test_rules_refuse_unknown_event_types() -> None:
    with pytest.raises(ValidationError, match="event_types"):
        Rule.model_validate({"id": "x", "reason": "r", "to": ["ilacs"], "event_types": ["concern"]})


def test_rule_set_refuses_duplicate_ids_naming_the_positions() -> None:
    one = Rule(id="x", reason="r", to=(Programme.ILACS,))
    other = Rule(id="y", reason="r", to=(Programme.ILACS,))
    with pytest.raises(ValidationError, match=r"rule id 'x' is used by rules #1, #2 and #4"):
        RuleSet(rules=(one, one, other, one))


def test_rule_set_needs_a_rule() -> None:
    with pytest.raises(ValidationError, match="rules"):
        RuleSet(rules=())


@pytest.mark.parametrize(
    "fields",
    [
        {"window_days": 0},
        {"window_days": 3651},
        {"min_inspectorates": 1},
        {"min_inspectorates": 6},
        {"window_days": 180.0},
    ],
)
def test_jtai_settings_bounds(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        JtaiSettings.model_validate(fields)


def test_models_are_frozen() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        EXPECTED.jtai.window_days = 90  # type: ignore[misc]


# --- round trip ----------------------------------------------------------------------------


def toml_string(text: str) -> str:
    """A TOML basic string: quote, backslash and control characters escaped."""
    escaped = "".join(
        f"\\{char}"
        if char in '"\\'
        else f"\\u{ord(char):04x}"
        if ord(char) < 0x20 or ord(char) == 0x7F
        else char
        for char in text
    )
    return f'"{escaped}"'


def toml_value(value: object) -> str:
    """A TOML value for what ``model_dump(mode="json")`` gives a rule set's fields."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(value)


def dump_toml(rule_set: RuleSet) -> str:
    """The rules file that says ``rule_set`` (the tiny writer the stdlib lacks)."""
    lines = ["[jtai]"]
    lines += [f"{key} = {toml_value(v)}" for key, v in rule_set.jtai.model_dump().items()]
    for one in rule_set.rules:
        lines += ["", "[[rule]]"]
        fields = one.model_dump(mode="json", exclude_defaults=True)
        lines += [f"{key} = {toml_value(v)}" for key, v in fields.items()]
    return "\n".join(lines) + "\n"


def some(values: tuple[str, ...] | list[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(st.sampled_from(values), max_size=4).map(tuple)


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    """Any valid rule: conditions of concerns or of reviews (never both), and event types
    that leave room for them."""
    event_types = draw(some(get_args(EventType)))
    concern: dict[str, Any] = {}
    review: dict[str, Any] = {}
    if draw(st.booleans()):
        concern = {
            "findings": draw(some(list(Finding))),
            "jtai_requested": draw(st.none() | st.booleans()),
            "min_severity": draw(st.none() | st.integers(min_value=1, max_value=4)),
        }
    else:
        review = {"progress": draw(some(list(Progress)))}
    needs = CONCERN_RAISED if concern else RECOMMENDATION_REVIEWED
    narrows = any(v not in (None, ()) for v in (*concern.values(), *review.values()))
    if narrows and event_types and needs not in event_types:
        event_types = (*event_types, needs)
    return Rule(
        id=draw(st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,40}", fullmatch=True)),
        reason=draw(st.text(min_size=1, max_size=200)),
        to=draw(st.lists(st.sampled_from(list(Programme)), min_size=1, max_size=4).map(tuple)),
        event_types=event_types,
        agencies=draw(some(list(Agency))),
        themes=draw(some(list(Theme))),
        **concern,
        **review,
    )


RULES = rules()

RULE_SETS = st.builds(
    RuleSet,
    rules=st.lists(RULES, min_size=1, max_size=6, unique_by=lambda r: r.id).map(tuple),
    jtai=st.builds(
        JtaiSettings,
        window_days=st.integers(min_value=1, max_value=3650),
        min_inspectorates=st.integers(min_value=2, max_value=5),
    ),
)


@given(rule_set=RULE_SETS)
def test_any_rule_set_written_as_toml_loads_back_equal(
    tmp_path_factory: pytest.TempPathFactory, rule_set: RuleSet
) -> None:
    path = tmp_path_factory.mktemp("rules") / "rules.toml"
    path.write_text(dump_toml(rule_set), encoding="utf-8")
    assert load_rules(path) == rule_set


def test_the_writer_writes_the_shipped_rules_back(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(dump_toml(EXPECTED), encoding="utf-8")
    assert load_rules(path) == EXPECTED
