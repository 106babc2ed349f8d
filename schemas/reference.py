"""Reference data: English regions, upper-tier local authorities and police force areas.

Events name the area they concern by its GSS code. ``check_area`` says whether a code
names an English upper-tier local authority (the tier that runs children's services) on
the day of the event, and when it does not, says in plain English which code to use.

The data are the Department for Education's published CSV files, packaged unchanged in
``schemas/data`` (see ``ATTRIBUTION.md`` there). This module is pure: it reads only those
files, lazily and once, and never the network or the clock.
"""

from __future__ import annotations

import csv
import datetime
import functools
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo

from schemas.errors import SchemaError

__all__ = [
    "UPPER_TIER_ENTITIES",
    "LocalAuthority",
    "PoliceForceArea",
    "Region",
    "check_area",
    "check_area_at",
    "check_known_area",
    "local_authorities",
    "police_force_areas",
    "police_force_of",
    "regions",
    "successors",
]

UPPER_TIER_ENTITIES: Final = frozenset({"E06", "E08", "E09", "E10"})
"""GSS entity codes of upper-tier authorities: unitaries, metropolitan districts,
London boroughs (with the City of London) and counties."""

_GSS_CODE: Final = re.compile(r"E\d{8}")
_REGION_ENTITY: Final = "E12"
_ONE_DAY: Final = datetime.timedelta(days=1)
_SHOWN_CHARS: Final = 40


@dataclass(frozen=True, slots=True)
class Region:
    """An English region (GSS entity E12)."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class LocalAuthority:
    """An English upper-tier local authority under one GSS code, for the days it was in use."""

    code: str
    name: str
    region: Region
    entity: str
    operational_from: datetime.date
    terminated_on: datetime.date | None
    """The last day of operation (inclusive); ``None`` while the authority is live."""

    def live_on(self, day: datetime.date) -> bool:
        """Whether this code named a live authority on ``day``."""
        if day < self.operational_from:
            return False
        return self.terminated_on is None or day <= self.terminated_on


@dataclass(frozen=True, slots=True)
class PoliceForceArea:
    """A police force area, as the published list names it."""

    code: str
    name: str
    active: bool


def regions() -> Mapping[str, Region]:
    """The nine English regions, keyed by GSS code."""
    return _regions()


def local_authorities() -> Mapping[str, LocalAuthority]:
    """Every English upper-tier local authority in the data, live or not, keyed by GSS code."""
    return _local_authorities()


def police_force_areas() -> Mapping[str, PoliceForceArea]:
    """Every police force area in the published list, keyed by code."""
    return _police_force_areas()


def police_force_of(code: str) -> PoliceForceArea:
    """The police force area that polices the upper-tier authority ``code``.

    From ``data/la-police-force-area.csv`` (compiled for Liaison; its sources and checks
    are in ``data/ATTRIBUTION.md``). Raises ``SchemaError`` for a code that is not an
    upper-tier authority in the data.
    """
    authority = _authority(code)
    return police_force_areas()[_force_of_authority()[authority.code]]


def successors(code: str) -> tuple[LocalAuthority, ...]:
    """The authorities that took over from ``code`` when it ended; ``()`` when live or none known.

    Raises ``SchemaError`` when ``code`` is not an upper-tier authority in the data, so a
    mistyped code is not mistaken for one that simply has no successor.
    """
    return _successor_table()[_authority(code).code]


_ENGLAND: Final = ZoneInfo("Europe/London")


def check_area_at(code: str, when: object) -> None:
    """``check_area`` on the date ``when`` falls on in England (authorities change at local
    midnight); does nothing when ``when`` is not a datetime (its own check reports that)."""
    if isinstance(when, datetime.datetime):
        check_area(code, when.astimezone(_ENGLAND).date())


def check_known_area(code: str) -> LocalAuthority:
    """The upper-tier LA with this GSS code, live or not; else raise SchemaError.

    For records about an earlier finding (an outcome, a JTAI decision): the finding was
    checked against its own date, and an area that has ended since must still be named.
    """
    return _authority(code)


def check_area(code: str, on: datetime.date) -> LocalAuthority:
    """The upper-tier LA with this GSS code, live on `on`; else raise SchemaError."""
    authority = _authority(code)
    if authority.live_on(on):
        return authority
    if authority.terminated_on is not None and on > authority.terminated_on:
        raise SchemaError(_after_end(authority, authority.terminated_on, on))
    raise SchemaError(_before_start(authority, on))


def _authority(code: str) -> LocalAuthority:
    authority = _local_authorities().get(code)
    if authority is None:
        # The code is echoed so a person can find the mistake; a long run of junk would only
        # bury the message.
        shown = code if len(code) <= _SHOWN_CHARS else code[:_SHOWN_CHARS] + "..."
        shown = shown or "An empty code"
        raise SchemaError(f"{shown} is not the GSS code of an English upper-tier local authority")
    return authority


def _after_end(authority: LocalAuthority, end: datetime.date, on: datetime.date) -> str:
    heirs = _successor_table()[authority.code]
    if not heirs:
        return f"{_label(authority)} ended on {end}; the reference data names no successor"
    message = (
        f"{_label(authority)} ended on {end}; for events from {end + _ONE_DAY} use {_either(heirs)}"
    )
    # A successor may itself have ended by `on` (Northumberland's county code of 2009 gave
    # way to a unitary code that was replaced in 2013), so carry on down the chain until the
    # advice reaches a code that is live on `on`.
    for heir in heirs:
        if heir.terminated_on is not None and on > heir.terminated_on:
            message += "; " + _after_end(heir, heir.terminated_on, on)
    return message


def _before_start(authority: LocalAuthority, on: datetime.date) -> str:
    start = authority.operational_from
    live = _live_ancestors(authority, on)
    if live:
        return f"{_label(authority)} began on {start}; on {on} use {_either(live)}"
    forebears = _predecessor_table()[authority.code]
    if forebears:
        return (
            f"{_label(authority)} began on {start}; before then its area was covered by "
            f"{_either(forebears)}, but no code in the reference data covers {on}"
        )
    return f"{_label(authority)} began on {start}; no earlier code for its area is known"


def _live_ancestors(authority: LocalAuthority, on: datetime.date) -> tuple[LocalAuthority, ...]:
    found: dict[str, LocalAuthority] = {}
    pending = list(_predecessor_table()[authority.code])
    while pending:
        forebear = pending.pop()
        if forebear.live_on(on):
            found[forebear.code] = forebear
        elif on < forebear.operational_from:
            pending.extend(_predecessor_table()[forebear.code])
    return tuple(found[code] for code in sorted(found))


def _label(authority: LocalAuthority) -> str:
    return f"{authority.code} ({authority.name})"


def _either(authorities: Iterable[LocalAuthority]) -> str:
    return " or ".join(_label(authority) for authority in authorities)


def _read_csv(name: str) -> list[dict[str, str]]:
    # utf-8-sig: police-force-areas.csv starts with a byte order mark, which would otherwise
    # end up inside its first column name.
    text = files("schemas").joinpath("data", name).read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _parse_date(text: str) -> datetime.date:
    """A date as las.csv writes it: dd/mm/yyyy."""
    day, month, year = text.split("/")
    return datetime.date(int(year), int(month), int(day))


@functools.cache
def _regions() -> Mapping[str, Region]:
    # regions.csv also lists Inner and Outer London (E13): statistical halves of the London
    # region, not regions, and no authority names them as its parent.
    return MappingProxyType(
        {
            row["region_code"]: Region(code=row["region_code"], name=row["region_name"])
            for row in _read_csv("regions.csv")
            if row["region_code"].startswith(_REGION_ENTITY)
        }
    )


@functools.cache
def _authority_rows() -> tuple[Mapping[str, str], ...]:
    # las.csv has rows for pairs of authorities that share children's services, such as
    # "E06000063 / E06000064" (Cumberland / Westmorland and Furness) and Kingston upon
    # Thames / Richmond upon Thames, and a "z" row for British Forces Post Office overseas.
    # None is a single authority, and each member of a pair has its own row.
    return tuple(
        MappingProxyType(row)
        for row in _read_csv("las.csv")
        if _GSS_CODE.fullmatch(row["new_la_code"]) and row["entity_code"] in UPPER_TIER_ENTITIES
    )


@functools.cache
def _local_authorities() -> Mapping[str, LocalAuthority]:
    found: dict[str, LocalAuthority] = {}
    for row in _authority_rows():
        code = row["new_la_code"]
        if code in found:
            raise ValueError(f"las.csv lists {code} twice")
        ended = row["date_of_termination"]
        found[code] = LocalAuthority(
            code=code,
            name=row["la_name"],
            region=_regions()[row["parent_geography_code"]],
            entity=row["entity_code"],
            operational_from=_parse_date(row["date_of_operation"]),
            terminated_on=_parse_date(ended) if ended else None,
        )
    return MappingProxyType(found)


@functools.cache
def _old_la_codes() -> Mapping[str, str]:
    """The DfE's three-digit LA number of each authority, where it has one."""
    return MappingProxyType(
        {
            row["new_la_code"]: row["old_la_code"]
            for row in _authority_rows()
            # "x" marks an authority the DfE never numbered.
            if row["old_la_code"].isdigit()
        }
    )


@functools.cache
def _police_force_areas() -> Mapping[str, PoliceForceArea]:
    return MappingProxyType(
        {
            row["pfa_code"]: PoliceForceArea(
                code=row["pfa_code"], name=row["pfa_name"], active=row["status"] == "active"
            )
            for row in _read_csv("police-force-areas.csv")
        }
    )


@functools.cache
def _force_of_authority() -> Mapping[str, str]:
    return MappingProxyType(
        {row["la_code"]: row["pfa_code"] for row in _read_csv("la-police-force-area.csv")}
    )


@functools.cache
def _successor_table() -> Mapping[str, tuple[LocalAuthority, ...]]:
    authorities = _local_authorities()
    return MappingProxyType({code: _derive_successors(la) for code, la in authorities.items()})


def _derive_successors(authority: LocalAuthority) -> tuple[LocalAuthority, ...]:
    """The authorities in the same region that began the day after ``authority`` ended.

    The data has no explicit successor column, so successors are inferred, in order of
    preference, from:

    1. the same DfE LA number: the same authority under a new GSS code (North Yorkshire,
       Somerset, Buckinghamshire; Barnsley and Sheffield in 2025);
    2. when the ended authority has no LA number, the same name: the 2009 county codes
       (Durham, Northumberland, Shropshire, Wiltshire, Cornwall and Isles of Scilly) lasted
       three months, have no number, and ended on the same day as their unrelated
       neighbours; their names are the only link the data gives. Where a number exists and
       differs, a shared name is no guide (Bedfordshire became Bedford and Central
       Bedfordshire), so this step is skipped;
    3. otherwise all of them (Cumbria became Cumberland and Westmorland and Furness).

    Step 3 over-reaches once: Bournemouth and Poole (2019) each get Bournemouth,
    Christchurch and Poole *and* the new Dorset. Dorset county's area did go to both (its
    Christchurch district joined BCP), and nothing in the data tells the three apart.
    """
    end = authority.terminated_on
    if end is None:
        return ()
    candidates = [
        la
        for la in _local_authorities().values()
        if la.region == authority.region and la.operational_from == end + _ONE_DAY
    ]
    old_codes = _old_la_codes()
    number = old_codes.get(authority.code)
    if number is not None:
        renumbered = [la for la in candidates if old_codes.get(la.code) == number]
        chosen = renumbered or candidates
    else:
        renamed = [la for la in candidates if _names_overlap(la.name, authority.name)]
        chosen = renamed or candidates
    return tuple(sorted(chosen, key=_code_of))


def _names_overlap(first: str, second: str) -> bool:
    """Whether one name is a whole-word part of the other ("Durham" of "County Durham")."""
    a = " " + " ".join(re.findall(r"[a-z]+", first.lower())) + " "
    b = " " + " ".join(re.findall(r"[a-z]+", second.lower())) + " "
    return a in b or b in a


@functools.cache
def _predecessor_table() -> Mapping[str, tuple[LocalAuthority, ...]]:
    # The inverse of the successor table, so the two can never disagree.
    found: dict[str, list[LocalAuthority]] = {code: [] for code in _local_authorities()}
    for code, heirs in _successor_table().items():
        for heir in heirs:
            found[heir.code].append(_local_authorities()[code])
    return MappingProxyType(
        {code: tuple(sorted(forebears, key=_code_of)) for code, forebears in found.items()}
    )


def _code_of(authority: LocalAuthority) -> str:
    return authority.code
