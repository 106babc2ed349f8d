"""Reference data: known answers from the DfE's published lists, and check_area's advice."""

from __future__ import annotations

import dataclasses
import datetime
import re
from importlib.resources import files

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import SchemaError
from schemas.reference import (
    UPPER_TIER_ENTITIES,
    LocalAuthority,
    Region,
    check_area,
    local_authorities,
    police_force_areas,
    regions,
    successors,
)

D = datetime.date
GSS = re.compile(r"E\d{8}")

# Every terminated authority in las.csv and the successors the rule must find, written out
# by hand from the reorganisations themselves, not from the code under test.
SUCCESSORS: dict[str, tuple[str, ...]] = {
    # 2009: seven counties became (or were split into) unitaries.
    "E10000001": ("E06000055", "E06000056"),  # Bedfordshire -> Bedford, Central Bedfordshire
    "E10000004": ("E06000049", "E06000050"),  # Cheshire -> Cheshire East, Cheshire West
    "E10000005": ("E06000052", "E06000053"),  # Cornwall and Isles of Scilly -> each
    "E10000010": ("E06000047",),  # Durham -> County Durham
    "E10000022": ("E06000048",),  # Northumberland county -> Northumberland unitary
    "E10000026": ("E06000051",),  # Shropshire
    "E10000033": ("E06000054",),  # Wiltshire
    # 2013: new codes for boundary changes.
    "E06000048": ("E06000057",),  # Northumberland
    "E08000020": ("E08000037",),  # Gateshead
    # 2019: Dorset. Bournemouth and Poole went wholly to BCP; the data cannot tell them from
    # Dorset county (part of which, Christchurch, also went to BCP), so they get both.
    "E06000028": ("E06000058", "E06000059"),
    "E06000029": ("E06000058", "E06000059"),
    "E10000009": ("E06000058", "E06000059"),
    # 2020-2025.
    "E10000002": ("E06000060",),  # Buckinghamshire
    "E10000021": ("E06000061", "E06000062"),  # Northamptonshire -> North, West
    "E10000006": ("E06000063", "E06000064"),  # Cumbria -> Cumberland, Westmorland and Furness
    "E10000023": ("E06000065",),  # North Yorkshire
    "E10000027": ("E06000066",),  # Somerset
    "E08000016": ("E08000038",),  # Barnsley
    "E08000019": ("E08000039",),  # Sheffield
}

# (old code, old name, last day, new codes and names) for the reorganisations of 2023-2025.
RECENT = [
    (
        "E10000006",
        "Cumbria",
        D(2023, 3, 31),
        [("E06000063", "Cumberland"), ("E06000064", "Westmorland and Furness")],
    ),
    ("E10000023", "North Yorkshire", D(2023, 3, 31), [("E06000065", "North Yorkshire")]),
    ("E10000027", "Somerset", D(2023, 3, 31), [("E06000066", "Somerset")]),
    ("E08000016", "Barnsley", D(2025, 4, 30), [("E08000038", "Barnsley")]),
    ("E08000019", "Sheffield", D(2025, 4, 30), [("E08000039", "Sheffield")]),
]

AUTHORITIES = sorted(local_authorities().values(), key=lambda la: la.code)
ENDED = [la for la in AUTHORITIES if la.terminated_on is not None]
DATA_STARTS = min(la.operational_from for la in AUTHORITIES)
LATEST = D(2200, 12, 31)


def codes_in(message: str) -> set[str]:
    return set(re.findall(r"E\d{8}", message))


def error_for(code: str, on: datetime.date) -> str:
    with pytest.raises(SchemaError) as caught:
        check_area(code, on)
    return str(caught.value)


# --- what the data holds ------------------------------------------------------------------


def test_every_authority_is_a_single_upper_tier_code() -> None:
    # 176 data rows in las.csv: 3 combined pairs and the British Forces row are not authorities.
    assert len(AUTHORITIES) == 172
    for la in AUTHORITIES:
        assert GSS.fullmatch(la.code), la
        assert la.code.startswith(la.entity), la
        assert la.entity in UPPER_TIER_ENTITIES
        assert la.region in regions().values()
        assert la.terminated_on is None or la.operational_from <= la.terminated_on


@pytest.mark.parametrize(
    "code",
    ["E06000063 / E06000064", "E06000061 / E06000062", "E09000021 / E09000027", "z"],
)
def test_combined_and_pseudo_rows_are_not_authorities(code: str) -> None:
    assert code not in local_authorities()
    assert error_for(code, D(2024, 1, 1)) == (
        f"{code} is not the GSS code of an English upper-tier local authority"
    )


def test_members_of_a_combined_row_are_authorities_in_their_own_right() -> None:
    assert check_area("E06000063", D(2024, 1, 1)).name == "Cumberland"
    assert check_area("E06000064", D(2024, 1, 1)).name == "Westmorland and Furness"
    assert check_area("E09000027", D(2024, 1, 1)).name == "Richmond upon Thames"


def test_a_london_borough() -> None:
    camden = check_area("E09000007", D(2024, 6, 1))
    assert camden == LocalAuthority(
        code="E09000007",
        name="Camden",
        region=Region("E12000007", "London"),
        entity="E09",
        operational_from=D(2009, 1, 1),
        terminated_on=None,
    )


def test_a_county() -> None:
    kent = check_area("E10000016", D(2024, 6, 1))
    assert (kent.name, kent.entity, kent.region.name) == ("Kent", "E10", "South East")
    assert kent.terminated_on is None
    assert successors("E10000016") == ()


def test_a_metropolitan_district_and_a_name_with_a_comma() -> None:
    assert check_area("E08000025", D(2024, 6, 1)).name == "Birmingham"
    assert check_area("E06000010", D(2024, 6, 1)).name == "Kingston upon Hull, City of"


def test_regions() -> None:
    assert len(regions()) == 9
    assert regions()["E12000003"] == Region("E12000003", "Yorkshire and The Humber")
    assert regions()["E12000001"].name == "North East"
    # Inner and Outer London are halves of the London region, not regions.
    assert "E13000001" not in regions()
    assert local_authorities()["E08000035"].region.name == "Yorkshire and The Humber"  # Leeds


def test_police_force_areas() -> None:
    areas = police_force_areas()
    assert len(areas) == 47
    # The file starts with a byte order mark; read naively it would hide inside the first key.
    met = areas["E23000001"]
    assert (met.name, met.active) == ("Metropolitan Police", True)
    assert areas["E23000034"].name == "London, City of"
    assert sum(code.startswith("E23") for code in areas) == 39
    assert all(area.active for area in areas.values())


def test_the_data_is_read_only() -> None:
    with pytest.raises(TypeError):
        local_authorities()["E99999999"] = AUTHORITIES[0]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        AUTHORITIES[0].name = "Elsewhere"  # type: ignore[misc]


def test_the_licence_and_attribution_ship_beside_the_data() -> None:
    data = files("schemas").joinpath("data")
    assert data.joinpath("LICENSE-dfe-published-data-qa").read_text().startswith("MIT License")
    attribution = " ".join(data.joinpath("ATTRIBUTION.md").read_text().split())
    assert "Department for Education" in attribution
    assert "unchanged" in attribution


# --- successors and predecessors ----------------------------------------------------------


def test_successor_table() -> None:
    found = {la.code: tuple(s.code for s in successors(la.code)) for la in ENDED}
    assert found == SUCCESSORS


def test_every_terminated_authority_has_a_successor_beginning_the_next_day() -> None:
    # Stronger than "every one terminated after 2019": every terminated one, back to 2009.
    assert ENDED
    for la in ENDED:
        assert la.terminated_on is not None
        heirs = successors(la.code)
        assert heirs, la
        for heir in heirs:
            assert heir.operational_from == la.terminated_on + datetime.timedelta(days=1)
            assert heir.region == la.region


def test_live_authorities_have_no_successors() -> None:
    for la in AUTHORITIES:
        if la.terminated_on is None:
            assert successors(la.code) == (), la


def test_successors_of_an_unknown_code_is_an_error_not_an_empty_answer() -> None:
    with pytest.raises(SchemaError, match="E10999999 is not the GSS code"):
        successors("E10999999")


@pytest.mark.parametrize(("old", "old_name", "last_day", "new"), RECENT)
def test_after_the_end_the_message_names_the_successors(
    old: str, old_name: str, last_day: datetime.date, new: list[tuple[str, str]]
) -> None:
    assert [(la.code, la.name) for la in successors(old)] == new
    message = error_for(old, last_day + datetime.timedelta(days=1))
    assert message.startswith(f"{old} ({old_name}) ended on {last_day.isoformat()}")
    for code, name in new:
        assert f"{code} ({name})" in message


@pytest.mark.parametrize(("old", "old_name", "last_day", "new"), RECENT)
def test_before_the_start_the_message_names_the_predecessor(
    old: str, old_name: str, last_day: datetime.date, new: list[tuple[str, str]]
) -> None:
    for code, name in new:
        message = error_for(code, last_day)
        assert message == (
            f"{code} ({name}) began on {(last_day + datetime.timedelta(days=1)).isoformat()}; "
            f"on {last_day.isoformat()} use {old} ({old_name})"
        )


def test_cumbria_split_message() -> None:
    assert error_for("E10000006", D(2023, 4, 1)) == (
        "E10000006 (Cumbria) ended on 2023-03-31; for events from 2023-04-01 use "
        "E06000063 (Cumberland) or E06000064 (Westmorland and Furness)"
    )
    assert error_for("E06000063", D(2022, 12, 1)) == (
        "E06000063 (Cumberland) began on 2023-04-01; on 2022-12-01 use E10000006 (Cumbria)"
    )


def test_advice_follows_a_chain_of_code_changes() -> None:
    # Northumberland: county code until 2009-03-31, a unitary code until 2013-03-31, then
    # the unitary code in use now.
    message = error_for("E10000022", D(2020, 1, 1))
    assert {"E06000048", "E06000057"} <= codes_in(message)
    assert "E06000057 (Northumberland)" in message
    assert error_for("E06000057", D(2009, 2, 1)) == (
        "E06000057 (Northumberland) began on 2013-04-01; on 2009-02-01 use E10000022 "
        "(Northumberland)"
    )


def test_a_merger_names_every_predecessor() -> None:
    message = error_for("E06000058", D(2018, 1, 1))
    assert codes_in(message) == {"E06000058", "E06000028", "E06000029", "E10000009"}


def test_before_the_data_begins_the_message_says_so() -> None:
    assert error_for("E08000025", D(2008, 12, 31)) == (
        "E08000025 (Birmingham) began on 2009-01-01; no earlier code for its area is known"
    )
    message = error_for("E06000063", D(2005, 1, 1))
    assert "E10000006 (Cumbria)" in message
    assert "2005-01-01" in message


# --- live-on boundaries -------------------------------------------------------------------


@pytest.mark.parametrize(("old", "old_name", "last_day", "new"), RECENT)
def test_the_last_day_is_live_and_the_next_is_not(
    old: str, old_name: str, last_day: datetime.date, new: list[tuple[str, str]]
) -> None:
    next_day = last_day + datetime.timedelta(days=1)
    ended = local_authorities()[old]
    assert ended.name == old_name
    assert ended.live_on(last_day)
    assert not ended.live_on(next_day)
    assert check_area(old, last_day) == ended
    for code, _ in new:
        assert not local_authorities()[code].live_on(last_day)
        assert local_authorities()[code].live_on(next_day)
        assert check_area(code, next_day).code == code


def test_every_authority_at_its_boundaries() -> None:
    one_day = datetime.timedelta(days=1)
    for la in AUTHORITIES:
        assert check_area(la.code, la.operational_from) == la
        assert not la.live_on(la.operational_from - one_day)
        with pytest.raises(SchemaError):
            check_area(la.code, la.operational_from - one_day)
        if la.terminated_on is not None:
            assert check_area(la.code, la.terminated_on) == la
            with pytest.raises(SchemaError):
                check_area(la.code, la.terminated_on + one_day)


# --- codes that are not upper-tier authorities --------------------------------------------


def test_unknown_code_message() -> None:
    assert error_for("E08999999", D(2024, 1, 1)) == (
        "E08999999 is not the GSS code of an English upper-tier local authority"
    )


@pytest.mark.parametrize(
    "code",
    [
        "E07000026",  # a shire district (lower tier); las.csv lists none, so invented
        "E12000007",  # a region, not an authority
        "E23000001",  # a police force area
        "W06000015",  # a Welsh unitary
        "e08000025",  # Birmingham, lower-cased
        " E08000025",
        "E080000250",
        "880",  # Devon's DfE LA number, not its GSS code
    ],
)
def test_codes_that_are_not_upper_tier_authorities_are_rejected(code: str) -> None:
    message = error_for(code, D(2024, 1, 1))
    assert message == f"{code} is not the GSS code of an English upper-tier local authority"


def test_an_empty_or_very_long_code_is_named_readably() -> None:
    assert error_for("", D(2024, 1, 1)).startswith("An empty code is not the GSS code")
    message = error_for("E" * 5000, D(2024, 1, 1))
    assert len(message) < 200
    assert message.startswith("EEEE")


def test_the_error_is_a_schema_error_and_a_value_error() -> None:
    with pytest.raises(ValueError, match="not the GSS code"):
        check_area("E08999999", D(2024, 1, 1))


# --- properties ---------------------------------------------------------------------------


def assert_plain_english(message: str) -> None:
    for python in ("None", "datetime", "Traceback", "LocalAuthority", "'", "()"):
        assert python not in message, message


@given(st.sampled_from(AUTHORITIES), st.data())
def test_any_day_in_the_operational_range_is_accepted(
    la: LocalAuthority, data: st.DataObject
) -> None:
    day = data.draw(st.dates(la.operational_from, la.terminated_on or LATEST))
    assert check_area(la.code, day) == la


@given(st.sampled_from(ENDED), st.data())
def test_any_day_after_the_end_names_every_successor(
    la: LocalAuthority, data: st.DataObject
) -> None:
    assert la.terminated_on is not None
    day = data.draw(st.dates(la.terminated_on + datetime.timedelta(days=1), LATEST))
    message = error_for(la.code, day)
    assert_plain_english(message)
    assert f"{la.code} ({la.name})" in message
    assert {heir.code for heir in successors(la.code)} <= codes_in(message)
    # The advice leads somewhere: some code it names is live on that day.
    assert any(local_authorities()[code].live_on(day) for code in codes_in(message))


@given(st.sampled_from(AUTHORITIES), st.data())
def test_any_day_before_the_start_is_refused_with_usable_advice(
    la: LocalAuthority, data: st.DataObject
) -> None:
    day = data.draw(st.dates(D(1900, 1, 1), la.operational_from - datetime.timedelta(days=1)))
    message = error_for(la.code, day)
    assert_plain_english(message)
    assert message.startswith(f"{la.code} ({la.name}) began on {la.operational_from}")
    # From the first day the data covers, the advice names codes that are live on that day.
    if day >= DATA_STARTS:
        suggested = codes_in(message) - {la.code}
        assert suggested
        assert all(check_area(code, day).code == code for code in suggested)
