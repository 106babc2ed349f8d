"""The upper-tier authority to police force area lookup: complete, consistent, known answers."""

from __future__ import annotations

import csv
import io
from collections import Counter
from importlib.resources import files

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import SchemaError
from schemas.reference import (
    local_authorities,
    police_force_areas,
    police_force_of,
    successors,
)

ENGLISH_FORCES = [f"E23{n:06d}" for n in range(1, 40)]
HEADER = ["la_code", "la_name", "pfa_code", "pfa_name"]


def lookup_rows() -> list[dict[str, str]]:
    """The CSV as written, row by row, so a repeated code is not hidden by a dict."""
    raw = files("schemas").joinpath("data", "la-police-force-area.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), "the file must not start with a byte order mark"
    reader = csv.DictReader(io.StringIO(raw.decode("utf-8"), newline=""))
    assert reader.fieldnames == HEADER
    return list(reader)


ROWS = lookup_rows()

# Known answers, written out from the force areas themselves (Police Act 1996, Schedule 1,
# as amended), not read back from the file under test.
KNOWN: dict[str, tuple[str, str]] = {
    "E08000025": ("E23000014", "West Midlands"),  # Birmingham
    "E08000035": ("E23000010", "West Yorkshire"),  # Leeds
    "E08000003": ("E23000005", "Greater Manchester"),  # Manchester
    "E08000012": ("E23000004", "Merseyside"),  # Liverpool
    "E09000033": ("E23000001", "Metropolitan Police"),  # Westminster
    "E09000001": ("E23000034", "London, City of"),  # City of London: its own force
    "E06000052": ("E23000035", "Devon & Cornwall"),  # Cornwall
    "E06000053": ("E23000035", "Devon & Cornwall"),  # Isles of Scilly
    "E06000042": ("E23000029", "Thames Valley"),  # Milton Keynes
    "E06000060": ("E23000029", "Thames Valley"),  # Buckinghamshire (2020)
    "E10000025": ("E23000029", "Thames Valley"),  # Oxfordshire
    "E06000001": ("E23000013", "Cleveland"),  # Hartlepool
    "E06000005": ("E23000008", "Durham"),  # Darlington
    "E06000015": ("E23000018", "Derbyshire"),  # Derby
    "E06000017": ("E23000021", "Leicestershire"),  # Rutland
    "E06000058": ("E23000039", "Dorset"),  # Bournemouth, Christchurch and Poole
    "E06000014": ("E23000009", "North Yorkshire"),  # York
    "E06000010": ("E23000012", "Humberside"),  # Kingston upon Hull
    "E06000019": ("E23000016", "West Mercia"),  # Herefordshire
    "E06000020": ("E23000016", "West Mercia"),  # Telford and Wrekin
    "E06000021": ("E23000015", "Staffordshire"),  # Stoke-on-Trent
    "E06000030": ("E23000038", "Wiltshire"),  # Swindon
    "E06000031": ("E23000023", "Cambridgeshire"),  # Peterborough
    "E06000032": ("E23000026", "Bedfordshire"),  # Luton
    "E06000034": ("E23000028", "Essex"),  # Thurrock
    "E06000035": ("E23000032", "Kent"),  # Medway
    "E06000043": ("E23000033", "Sussex"),  # Brighton and Hove
    "E06000046": ("E23000030", "Hampshire"),  # Isle of Wight
    "E06000006": ("E23000006", "Cheshire"),  # Halton
    "E06000008": ("E23000003", "Lancashire"),  # Blackburn with Darwen
    "E06000023": ("E23000036", "Avon and Somerset"),  # Bristol
    "E06000063": ("E23000002", "Cumbria"),  # Cumberland
    "E06000064": ("E23000002", "Cumbria"),  # Westmorland and Furness
    "E06000061": ("E23000022", "Northamptonshire"),  # North Northamptonshire
    "E08000037": ("E23000007", "Northumbria"),  # Gateshead
    "E08000039": ("E23000011", "South Yorkshire"),  # Sheffield (2025 code)
    "E10000013": ("E23000037", "Gloucestershire"),  # Gloucestershire
    "E10000015": ("E23000027", "Hertfordshire"),  # Hertfordshire
    "E10000019": ("E23000020", "Lincolnshire"),  # Lincolnshire
    "E10000020": ("E23000024", "Norfolk"),  # Norfolk
    "E10000024": ("E23000019", "Nottinghamshire"),  # Nottinghamshire
    "E10000029": ("E23000025", "Suffolk"),  # Suffolk
    "E10000030": ("E23000031", "Surrey"),  # Surrey
    "E10000031": ("E23000017", "Warwickshire"),  # Warwickshire
    # Retired codes: stored events may still name them.
    "E06000028": ("E23000039", "Dorset"),  # Bournemouth (to 2019)
    "E06000029": ("E23000039", "Dorset"),  # Poole (to 2019)
    "E10000009": ("E23000039", "Dorset"),  # Dorset county (to 2019)
    "E10000006": ("E23000002", "Cumbria"),  # Cumbria county (to 2023)
    "E10000023": ("E23000009", "North Yorkshire"),  # North Yorkshire county (to 2023)
    "E10000027": ("E23000036", "Avon and Somerset"),  # Somerset county (to 2023)
    "E10000021": ("E23000022", "Northamptonshire"),  # Northamptonshire (to 2021)
    "E10000001": ("E23000026", "Bedfordshire"),  # Bedfordshire (to 2009)
    "E10000002": ("E23000029", "Thames Valley"),  # Buckinghamshire county (to 2020)
    "E10000004": ("E23000006", "Cheshire"),  # Cheshire (to 2009)
    "E10000005": ("E23000035", "Devon & Cornwall"),  # Cornwall and Isles of Scilly (2009)
    "E10000010": ("E23000008", "Durham"),  # Durham county (2009)
    "E10000022": ("E23000007", "Northumbria"),  # Northumberland county (2009)
    "E06000048": ("E23000007", "Northumbria"),  # Northumberland (to 2013)
    "E10000026": ("E23000016", "West Mercia"),  # Shropshire county (2009)
    "E10000033": ("E23000038", "Wiltshire"),  # Wiltshire county (2009)
    "E08000016": ("E23000011", "South Yorkshire"),  # Barnsley (to 2025)
}


def test_every_authority_has_exactly_one_row() -> None:
    counts = Counter(row["la_code"] for row in ROWS)
    assert [code for code, n in counts.items() if n > 1] == []
    assert set(counts) == set(local_authorities())
    assert len(ROWS) == len(local_authorities()) == 172


def test_names_are_the_reference_names() -> None:
    authorities = local_authorities()
    forces = police_force_areas()
    for row in ROWS:
        assert row["la_name"] == authorities[row["la_code"]].name, row
        force = forces[row["pfa_code"]]
        assert row["pfa_name"] == force.name, row


def test_every_force_named_is_an_active_english_force() -> None:
    forces = police_force_areas()
    for row in ROWS:
        assert row["pfa_code"] in ENGLISH_FORCES, row
        assert forces[row["pfa_code"]].active, row


def test_every_english_force_polices_a_live_authority() -> None:
    live = [code for code, la in local_authorities().items() if la.terminated_on is None]
    assert len(live) == 153
    covered = {police_force_of(code).code for code in live}
    assert sorted(covered) == ENGLISH_FORCES


def test_the_city_of_london_is_the_only_london_authority_outside_the_met() -> None:
    london = [la for la in local_authorities().values() if la.region.name == "London"]
    assert len(london) == 33
    outside = [la.code for la in london if police_force_of(la.code).code != "E23000001"]
    assert outside == ["E09000001"]


@pytest.mark.parametrize(("code", "expected"), sorted(KNOWN.items()))
def test_known_answers(code: str, expected: tuple[str, str]) -> None:
    force = police_force_of(code)
    assert (force.code, force.name) == expected
    assert force.active


def test_successors_keep_the_force() -> None:
    # No reorganisation since 2009 crossed a force boundary, so an authority and every
    # authority that took over from it must be policed by the same force.
    for code in local_authorities():
        force = police_force_of(code)
        for heir in successors(code):
            assert police_force_of(heir.code) == force, (code, heir.code)


@pytest.mark.parametrize(
    "code",
    [
        "",
        "E23000001",  # a force, not an authority
        "E07000223",  # a lower-tier district (Adur), policed as part of West Sussex
        "E06999999",
        "W06000015",  # Cardiff: Welsh, outside the data
        "e08000025",  # codes are upper case
        " E08000025",
    ],
)
def test_unknown_codes_raise(code: str) -> None:
    with pytest.raises(SchemaError, match="not the GSS code of an English upper-tier"):
        police_force_of(code)


@given(st.text(max_size=60))
def test_anything_else_raises_schema_error(code: str) -> None:
    if code in local_authorities():
        assert police_force_of(code).code in ENGLISH_FORCES
        return
    with pytest.raises(SchemaError):
        police_force_of(code)
