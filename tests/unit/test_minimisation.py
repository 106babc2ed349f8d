"""The data-minimisation lint: each rule's catches and near-misses, and no echo of the data."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import SchemaError
from schemas.minimisation import (
    RULE_DESCRIPTIONS,
    Rule,
    Violation,
    check_minimised,
    nhs_number_is_valid,
    scan,
    violated_rules,
)


def spans_of(rule: Rule, text: str) -> list[str]:
    """The substrings ``rule`` flagged in ``text``."""
    return [text[v.start : v.end] for v in scan(text) if v.rule is rule]


# (text, the part of it that must be flagged)
NHS_POSITIVES = [
    ("9434765919", "9434765919"),
    ("NHS number 943 476 5919 was recorded", "943 476 5919"),
    ("ref 943-476-5919.", "943-476-5919"),
    ("(4010232137)", "4010232137"),
    ("401 023 2137", "401 023 2137"),
    ("id:4010232137;", "4010232137"),
    ("943\u00a0476\u00a05919", "943\u00a0476\u00a05919"),
    ("patient9434765919x", "9434765919"),
]
NHS_NEGATIVES = [
    "9434765918",  # fails the check digit
    "400 000 0080",  # check digit computes to 10: never issued
    "19434765919",  # part of a longer digit run
    "94347659190",
    "943 476 591",  # nine digits
    "94 3476 5919",  # not 3-3-4
    "943 476 59190",
    "in 2024, 1,200 children were seen",
]


@pytest.mark.parametrize(("text", "number"), NHS_POSITIVES)
def test_nhs_numbers_are_caught(text: str, number: str) -> None:
    assert spans_of(Rule.NHS_NUMBER, text) == [number]


@pytest.mark.parametrize("text", NHS_NEGATIVES)
def test_nhs_near_misses_are_not_nhs_numbers(text: str) -> None:
    assert spans_of(Rule.NHS_NUMBER, text) == []


@pytest.mark.parametrize("digits", ["9434765919", "4010232137", "0000000000"])
def test_nhs_check_accepts_known_valid_numbers(digits: str) -> None:
    assert nhs_number_is_valid(digits)


@pytest.mark.parametrize(
    "digits",
    [
        "9434765918",  # wrong check digit
        "4010232138",
        "943 476 5919",  # spaces are not digits
        "943476591",  # too short
        "94347659190",  # too long
        "",
        "\u0669\u0664\u0663\u0664\u0667\u0666\u0665\u0669\u0661\u0669",  # Arabic-Indic
    ],
)
def test_nhs_check_rejects_invalid_input(digits: str) -> None:
    assert not nhs_number_is_valid(digits)


def test_nhs_check_rejects_every_number_whose_check_computes_to_ten() -> None:
    # 10*4 = 40, 2*8 = 16: 56 % 11 = 1, so the check digit would be 10.
    assert not any(nhs_number_is_valid(f"400000008{d}") for d in "0123456789")


DOB_POSITIVES = [
    ("born 12/03/2011", "born 12/03/2011"),
    ("DOB: 12-03-11.", "DOB: 12-03-11"),
    ("child (D.O.B. 1.3.2011)", "D.O.B. 1.3.2011"),
    ("date of birth 12 March 2011", "date of birth 12 March 2011"),
    ("his birthday is 12th Mar 2011", "birthday is 12th Mar 2011"),
    ("J (b. March 12, 2011)", "b. March 12, 2011"),
    ("Born on 2011-03-12 in", "Born on 2011-03-12"),
    ("born on the 12th of March 2011", "born on the 12th of March 2011"),
    ("dob:12/03/2011", "dob:12/03/2011"),
    ("birth date 3-Sept-2011", "birth date 3-Sept-2011"),
    ("a boy aged 7 (born 2016)", "aged 7 (born 2016"),
    ("age 7, b. 2016", "age 7, b. 2016"),
    ("aged 12, born in 2012.", "aged 12, born in 2012"),
    ("aged 7 years (DOB March 2016)", "aged 7 years (DOB March 2016"),
]
DOB_NEGATIVES = [
    "the inspection on 12 March 2024",
    "12 March 2024 inspection found delays",
    "the review on 12/03/2024 found that",
    "children born in 2016 were not seen",  # a cohort, not a birth date
    "babies born in March 2016",
    "date of birth was missing from 4 of 12 records",
    "the service was born out of the 2019 review on 12 March 2020",
    "birthday parties on 12 March 2024",
    "children aged 7 to 11 on 12 March 2024",
    "newborn visits from 1/3/2024",
    "a team born after 1/4/2023 reforms",  # only on/is/was/in/of may join cue and date
]


@pytest.mark.parametrize(("text", "date"), DOB_POSITIVES)
def test_dates_of_birth_are_caught(text: str, date: str) -> None:
    assert spans_of(Rule.DATE_OF_BIRTH, text) == [date]


@pytest.mark.parametrize("text", DOB_NEGATIVES)
def test_dates_without_a_birth_cue_are_not_dates_of_birth(text: str) -> None:
    assert spans_of(Rule.DATE_OF_BIRTH, text) == []


POSTCODE_POSITIVES = [
    ("SW1A 1AA", "SW1A 1AA"),
    ("at M1 1AE.", "M1 1AE"),
    ("B33 8TH", "B33 8TH"),
    ("(CR2 6XH)", "CR2 6XH"),
    ("DN55 1PT", "DN55 1PT"),
    ("EC1A 1BB", "EC1A 1BB"),
    ("W1A 0AX", "W1A 0AX"),
    ("GIR 0AA", "GIR 0AA"),
    ("sw1a1aa", "sw1a1aa"),
    ("lives at ls1 4ap, Leeds", "ls1 4ap"),
]
POSTCODE_NEGATIVES = [
    "SW1A",  # outward code alone
    "the M1 area",
    "partners across B33 and B34",
    "DN55",
    "pupils in KS2 3rd year",  # KS is not a postcode area
    "CR2 6CI",  # C and I are never in an inward code
    "EC1A 1BBC",  # glued to more letters
    "Q1 1AA",  # Q is not a postcode area
    "M1 12AB",  # inward codes have one digit
    "W1Z 1AA",  # no district ends in Z
]


@pytest.mark.parametrize(("text", "postcode"), POSTCODE_POSITIVES)
def test_full_postcodes_are_caught(text: str, postcode: str) -> None:
    assert spans_of(Rule.POSTCODE, text) == [postcode]


@pytest.mark.parametrize("text", POSTCODE_NEGATIVES)
def test_partial_or_impossible_postcodes_are_not_caught(text: str) -> None:
    assert spans_of(Rule.POSTCODE, text) == []


EMAIL_POSITIVES = [
    ("jo.bloggs@example.org.uk", "jo.bloggs@example.org.uk"),
    ("write to J.Bloggs+cp@Example.COM today", "J.Bloggs+cp@Example.COM"),
    ("contact: a_b-c@sub.example.gov.uk.", "a_b-c@sub.example.gov.uk"),
    ("<zo\u00eb@example.fr>", "zo\u00eb@example.fr"),
    ("o'neill@example.co.uk", "o'neill@example.co.uk"),
    ("x@y.io", "x@y.io"),
]
EMAIL_NEGATIVES = [
    "user at example dot com",
    "follow @ofstednews",
    "user@localhost",
    "jo @ example.com",
    "see example.com",
    "user@example.c",
    "email@address",
]


@pytest.mark.parametrize(("text", "address"), EMAIL_POSITIVES)
def test_email_addresses_are_caught(text: str, address: str) -> None:
    assert spans_of(Rule.EMAIL, text) == [address]


@pytest.mark.parametrize("text", EMAIL_NEGATIVES)
def test_things_that_are_not_email_addresses_are_not_caught(text: str) -> None:
    assert spans_of(Rule.EMAIL, text) == []


PHONE_POSITIVES = [
    ("07700 900123", "07700 900123"),
    ("call +44 7700 900123.", "+44 7700 900123"),
    ("020 7946 0018", "020 7946 0018"),
    ("on (0161) 496 0000,", "(0161) 496 0000"),
    ("0113-496-0000", "0113-496-0000"),
    ("01632 960 001", "01632 960 001"),
    ("0800 123 4567", "0800 123 4567"),
    ("0044 7700 900123", "0044 7700 900123"),
    ("+44 (0)20 7946 0018", "+44 (0)20 7946 0018"),
    ("+447700900123", "+447700900123"),
    ("(+44) 7700 900123", "(+44) 7700 900123"),
    ("+44 07700 900123", "+44 07700 900123"),
    ("0800 123456", "0800 123456"),
    ("01632 96000", "01632 96000"),
]
PHONE_NEGATIVES = [
    "in 2024",
    "1,200 children",
    "a section 47 enquiry",
    "support under s.17",
    "the 0-19 service",
    "07700 9001",  # too short
    "077009001234",  # too long
    "0456 789 0123",  # no UK numbers start 04
    "06123 456789",  # nor 06
    "44 7700 900123",  # no + or 00
    "ref07700900123",  # glued to a word
    "on 01/02/2024",
]


@pytest.mark.parametrize(("text", "number"), PHONE_POSITIVES)
def test_uk_phone_numbers_are_caught(text: str, number: str) -> None:
    assert spans_of(Rule.PHONE_NUMBER, text) == [number]


@pytest.mark.parametrize("text", PHONE_NEGATIVES)
def test_years_counts_and_references_are_not_phone_numbers(text: str) -> None:
    assert spans_of(Rule.PHONE_NUMBER, text) == []


# One sample per rule, each in text that breaks no other rule.
SAMPLES = {
    Rule.NHS_NUMBER: "943 476 5919",
    Rule.DATE_OF_BIRTH: "DOB 12/03/2011",
    Rule.POSTCODE: "SW1A 1AA",
    Rule.EMAIL: "jo.bloggs@example.org.uk",
    Rule.PHONE_NUMBER: "07700 900123",
}


@pytest.mark.parametrize("rule", list(Rule))
def test_check_names_field_and_rule_but_never_the_data(
    rule: Rule, caplog: pytest.LogCaptureFixture
) -> None:
    secret = SAMPLES[rule]
    text = f"The partnership found that {secret} was shared."
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SchemaError) as caught:
        check_minimised(text, "shareable_learning")
    exc = caught.value
    assert str(exc).startswith("shareable_learning contains ")
    assert f"{RULE_DESCRIPTIONS[rule]} (rule {rule.value})" in str(exc)
    assert secret not in str(exc)
    assert secret not in repr(exc)
    assert all(secret not in str(arg) for arg in exc.args)
    assert exc.__cause__ is None
    assert exc.__context__ is None
    violations = scan(text)
    assert [v.rule for v in violations] == [rule]
    assert all(secret not in repr(v) for v in violations)
    assert caplog.records == []


def test_check_message_lists_every_rule_in_enum_order() -> None:
    text = "email jo@example.org, NHS 9434765919"
    with pytest.raises(SchemaError) as caught:
        check_minimised(text, "summary")
    assert str(caught.value) == (
        "summary contains an NHS number (rule nhs_number) and an email address (rule email);"
        " events describe practice in an area, not children: remove them"
    )


def test_check_message_joins_three_rules_and_one_rule() -> None:
    with pytest.raises(SchemaError, match=r"number\), a date of birth .* and a full postcode"):
        check_minimised("9434765919 born 1/2/2011 at M1 1AE", "summary")
    with pytest.raises(SchemaError, match=r"\(rule postcode\); .*: remove it$"):
        check_minimised("M1 1AE", "summary")


def test_schema_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="rule email"):
        check_minimised("x@y.io", "summary")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Leaders in the M1 area improved section 47 enquiries after the inspection on"
        " 12 March 2024; 1,200 children were seen in 2023-24 and 95% had a plan.",
    ],
)
def test_clean_text_passes(text: str) -> None:
    check_minimised(text, "summary")
    assert scan(text) == ()
    assert violated_rules(text) == ()


def test_violated_rules_are_distinct_and_in_enum_order() -> None:
    text = "a@b.io then 07700 900123 then c@d.io then 9434765919"
    assert violated_rules(text) == (Rule.NHS_NUMBER, Rule.EMAIL, Rule.PHONE_NUMBER)


def test_scan_orders_violations_by_position() -> None:
    text = "a@b.io then 9434765919 then M1 1AE"
    assert [(v.rule, v.start, v.end) for v in scan(text)] == [
        (Rule.EMAIL, 0, 6),
        (Rule.NHS_NUMBER, 12, 22),
        (Rule.POSTCODE, 28, 34),
    ]


def test_a_candidate_failing_its_check_does_not_hide_an_overlapping_one() -> None:
    # "0456 0161 496 0" is phone-shaped but starts 04; the real number starts inside it.
    text = "0456 0161 496 0000"
    assert spans_of(Rule.PHONE_NUMBER, text) == ["0161 496 0000"]


def test_one_string_can_break_two_rules() -> None:
    # An old-style 0800 number run together that happens to pass the NHS check.
    text = "0800123468"
    assert nhs_number_is_valid(text)
    assert violated_rules(text) == (Rule.NHS_NUMBER, Rule.PHONE_NUMBER)


def test_violation_holds_offsets_only() -> None:
    assert [f.name for f in dataclasses.fields(Violation)] == ["rule", "start", "end"]
    violation = Violation(Rule.EMAIL, 3, 9)
    assert repr(violation) == "Violation(rule=<Rule.EMAIL: 'email'>, start=3, end=9)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        violation.start = 4  # type: ignore[misc]


@pytest.mark.parametrize(("start", "end"), [(-1, 2), (3, 3), (5, 2)])
def test_violation_refuses_empty_or_negative_spans(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="start < end"):
        Violation(Rule.EMAIL, start, end)


def test_every_rule_has_a_description() -> None:
    assert set(RULE_DESCRIPTIONS) == set(Rule)
    assert [r.value for r in Rule] == [
        "nhs_number",
        "date_of_birth",
        "postcode",
        "email",
        "phone_number",
    ]


# Inputs built to make a careless regex backtrack for minutes (4,000+ characters each).
# They must simply finish; pytest-timeout stops the run if one does not.
ADVERSARIAL = [
    ("1" * 4000, 0),
    ("1 " * 2000, 0),
    ("0" * 4000, 0),
    ("0 " * 2000, 0),
    ("+44 " * 1000, 0),
    ("(0" * 2000, 0),
    ("0)" * 2000, 0),
    ("a" * 4000, 0),
    ("a." * 2000, 0),
    ("a@" * 2000, 0),
    ("a@" + "b." * 2000, 0),
    ("a@" + "b-" * 2000, 0),
    ("." * 4000 + "@", 0),
    ("born " * 800, 0),
    ("DOB 12/" * 600, 0),
    ("aged 7 " * 600, 0),
    ("the 12th of " * 350, 0),
    ("SW1A " * 800, 0),
    ("-" * 4000, 0),
    ("1-" * 2000, 0),
    ("9434765918 " * 364, 0),  # every candidate fails its check and is retried
    ("943 476 5918 " * 308, 0),
    ("0456 789 0123; " * 267, 0),
    ("9434765919 " * 364, 364),
    ("07700 900123 " * 308, 308),
    ("x@y.io " * 572, 572),
]


@pytest.mark.parametrize(("text", "count"), ADVERSARIAL, ids=lambda v: str(v)[:12])
def test_long_adversarial_input_completes(text: str, count: int) -> None:
    assert len(text) >= 4000
    assert len(scan(text)) == count


NINE_DIGITS = st.text(alphabet="0123456789", min_size=9, max_size=9)
SURROUNDING = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ABCXYZ", max_size=40)
NHS_FORMATS = [
    "{0}{1}{2}",
    "{0} {1} {2}",
    "{0}-{1}-{2}",
    "{0}\u00a0{1}\u00a0{2}",
]


def nhs_from(nine: str) -> str:
    """Nine digits with their NHS check digit, or "" when the check would be 10."""
    total = sum(weight * int(digit) for weight, digit in zip(range(10, 1, -1), nine, strict=True))
    check = (11 - total % 11) % 11
    return "" if check == 10 else nine + str(check)


@given(
    nhs=NINE_DIGITS.map(nhs_from).filter(bool),
    layout=st.sampled_from(NHS_FORMATS),
    before=SURROUNDING,
    after=SURROUNDING,
)
def test_any_valid_nhs_number_in_any_layout_is_caught(
    nhs: str, layout: str, before: str, after: str
) -> None:
    assert nhs_number_is_valid(nhs)
    written = layout.format(nhs[:3], nhs[3:6], nhs[6:])
    text = before + written + after
    assert Violation(Rule.NHS_NUMBER, len(before), len(before) + len(written)) in scan(text)


# Words that start some rule's pattern, so the property reaches deep into each regex.
CUES = st.sampled_from(
    ["born ", "DOB ", "date of birth ", "b. ", "aged ", "March ", "the ", "of ", "GIR ", "SW"]
)
PROSE = st.text(
    alphabet=st.characters(categories=["L", "P", "Zs"], exclude_characters="@"), max_size=30
)


@given(st.lists(st.one_of(CUES, PROSE), max_size=12).map("".join))
def test_text_without_digits_or_at_sign_is_never_flagged(text: str) -> None:
    assert scan(text) == ()


SCANNABLE = st.lists(
    st.one_of(
        st.text(alphabet="0123456789 -/.()+@abAMSWxy:", max_size=20),
        st.sampled_from(
            [
                "9434765919",
                "943 476 5919",
                "SW1A 1AA",
                "jo@example.org",
                "07700 900123",
                "+44 (0)20 7946 0018",
                "DOB 12/03/2011",
                "aged 7 (born 2016)",
                "12 March 2011",
            ]
        ),
    ),
    max_size=8,
).map("".join)


@given(SCANNABLE)
def test_scan_offsets_slice_to_non_empty_text_in_bounds(text: str) -> None:
    violations = scan(text)
    positions = [(v.start, v.end) for v in violations]
    assert positions == sorted(positions)
    for violation in violations:
        assert 0 <= violation.start < violation.end <= len(text)
        assert text[violation.start : violation.end].strip()


@given(SCANNABLE)
def test_each_flagged_span_is_flagged_on_its_own(text: str) -> None:
    # A span carries everything that made it a violation (cue included), so a UI that
    # highlights it shows the whole of what must go.
    for violation in scan(text):
        alone = text[violation.start : violation.end]
        assert Violation(violation.rule, 0, len(alone)) in scan(alone)
