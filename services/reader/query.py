"""What an analyst asks the feed for, checked before anything is read.

Pure: no I/O, and the day is passed in. Every value an analyst types is checked against
the reference data and the contract: an unknown area, a retired or lower-tier code, a
misspelt theme, region, source or type is a ``SchemaError`` naming the value and the
nearest valid ones, so a typo is never mistaken for "no concerns here".

``query_refusal`` decides what is outside the analyst's scope (refused and audited, never
answered with nothing); ``in_scope`` is what every view shows: the query *and* the scope.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Final

from consumers.analysis import KINDS, FeedQuery, Item
from schemas.audit import AnalystScope
from schemas.errors import SchemaError
from schemas.inspectorates import Inspectorate
from schemas.reference import (
    LocalAuthority,
    check_area,
    local_authorities,
    regions,
    successors,
)
from services.reader.scope import (
    OUT_OF_SCOPE,
    Refusal,
    _area_names,
    _fold,
    _shown,
    _unknown,
    area_in_scope,
    describe,
    parse_regions,
    parse_themes,
)

__all__ = [
    "build_query",
    "in_scope",
    "parse_feed_areas",
    "parse_kinds",
    "parse_severity",
    "parse_sources",
    "query_refusal",
    "scoped_areas",
]

_GSS: Final = re.compile(r"^E\d{8}$")
_LOWER_TIER: Final = ("E07",)
_SEVERITIES: Final = range(1, 5)


def _label(authority: LocalAuthority) -> str:
    return f"{authority.code} {authority.name}"


def _retired(authority: LocalAuthority) -> SchemaError:
    after = successors(authority.code)
    use = " or ".join(_label(a) for a in after) if after else "a live authority"
    return SchemaError(
        f"{authority.code} ({authority.name}) ended on {authority.terminated_on}: its"
        f" findings are under {use} since; nearest: {', '.join(a.code for a in after) or '-'}"
    )


def _live(authority: LocalAuthority, today: dt.date) -> bool:
    return authority.live_on(today)


def parse_feed_areas(values: Iterable[str], today: dt.date) -> tuple[str, ...]:
    """Live upper-tier authorities' GSS codes from codes or names, sorted, once each.

    A retired code (or a name only retired codes carried) names its successors; a
    lower-tier (district) code says feeds are by upper-tier authority; anything else
    names the nearest valid values.
    """
    authorities = local_authorities()
    names = _area_names()
    chosen: set[str] = set()
    for value in values:
        text = value.strip()
        code = text.upper()
        if code in authorities:
            if today < authorities[code].operational_from:
                check_area(code, today)  # names the authority in use on that day
            if not _live(authorities[code], today):
                raise _retired(authorities[code])
            chosen.add(code)
        elif _fold(text) in names:
            codes = names[_fold(text)]
            live = [c for c in codes if _live(authorities[c], today)]
            if not live:
                raise _retired(authorities[codes[-1]])
            chosen.update(live)
        elif _GSS.fullmatch(code) and code.startswith(_LOWER_TIER):
            raise SchemaError(
                f"{_shown(text)} is a lower-tier (district) code: findings are by upper-tier"
                " local authority (a county or unitary, e.g. E10000034 or Worcestershire)"
            )
        else:
            live_names = sorted({a.name for a in authorities.values() if _live(a, today)})
            live_codes = sorted(c for c, a in authorities.items() if _live(a, today))
            raise _unknown(
                "an upper-tier local authority (a GSS code or a name)",
                text,
                [*live_names, *live_codes],
                "E08000035 or Leeds",
            )
    return tuple(sorted(chosen))


def parse_sources(values: Iterable[str]) -> frozenset[str]:
    """Publishers by wire value (``ofsted``, ``hmi_probation``..., ``liaison`` for the bus)."""
    known = [*(i.value for i in Inspectorate), "liaison"]  # the bus: considerations
    chosen: set[str] = set()
    for value in values:
        key = "_".join(value.strip().casefold().replace("-", " ").split())
        if key not in known:
            raise _unknown("an inspectorate", value, known, "ofsted")
        chosen.add(key)
    return frozenset(chosen)


def parse_kinds(values: Iterable[str]) -> frozenset[str]:
    """Event kinds by short name (``concern``, ``outcome``...) or wire type."""
    short = sorted(set(KINDS.values()))
    chosen: set[str] = set()
    for value in values:
        key = value.strip()
        kind = KINDS.get(key) or ("_".join(key.casefold().replace("-", " ").split()))
        if kind not in short:
            raise _unknown("an event type", value, short, "concern")
        chosen.add(kind)
    return frozenset(chosen)


def parse_severity(value: str | int | None) -> int | None:
    """The least severity asked for (1 to 4), or None."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or int(text) not in _SEVERITIES:
        raise SchemaError(f"{_shown(text)} is not a severity: give 1, 2, 3 or 4 (the least shown)")
    return int(text)


def build_query(
    *,
    today: dt.date,
    areas: Iterable[str] = (),
    region_names: Iterable[str] = (),
    themes: Iterable[str] = (),
    sources: Iterable[str] = (),
    kinds: Iterable[str] = (),
    severity: str | int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    received_since: dt.datetime | None = None,
) -> FeedQuery:
    """A checked query; ``SchemaError`` names the first value that is not valid."""
    if since is not None and until is not None and until <= since:
        raise SchemaError("the end of the window must be after its start")
    return FeedQuery(
        areas=frozenset(parse_feed_areas(areas, today)),
        regions=frozenset(parse_regions(region_names)),
        themes=frozenset(parse_themes(themes)),
        sources=parse_sources(sources),
        kinds=parse_kinds(kinds),
        min_severity=parse_severity(severity),
        since=since,
        until=until,
        received_since=received_since,
    )


def query_refusal(scope: AnalystScope, query: FeedQuery) -> Refusal | None:
    """``Refusal`` when the query names an area, region or theme outside the scope.

    A region is inside the scope when the scope names it; a region the scope does not
    name is refused even when some of its areas are named (ask for those areas).
    """
    for area in sorted(query.areas):
        if not area_in_scope(scope, area):
            authority = local_authorities()[area]
            return Refusal(
                OUT_OF_SCOPE,
                f"area {area} ({authority.name}, {authority.region.name}) is outside your"
                f" scope ({describe(scope)})",
            )
    for region in sorted(query.regions):
        if region not in scope.regions:
            return Refusal(
                OUT_OF_SCOPE,
                f"region {region} is outside your scope: ask for the areas of it you may"
                f" read ({describe(scope)})",
            )
    for theme in sorted(query.themes):
        if theme not in scope.themes:
            return Refusal(
                OUT_OF_SCOPE, f"theme {theme.value} is outside your scope ({describe(scope)})"
            )
    return None


def in_scope(scope: AnalystScope, query: FeedQuery, item: Item) -> bool:
    """Whether ``item`` is shown: it matches the query and lies inside the scope."""
    return item.theme in scope.themes and area_in_scope(scope, item.area) and query.admits(item)


def scoped_areas(scope: AnalystScope, today: dt.date) -> tuple[str, ...]:
    """The live authorities inside the scope, by region (reference order) then name."""
    order = {r.name: i for i, r in enumerate(regions().values())}
    live = [
        a for a in local_authorities().values() if _live(a, today) and area_in_scope(scope, a.code)
    ]
    live.sort(key=lambda a: (order.get(a.region.name, len(order)), a.name, a.code))
    return tuple(a.code for a in live)
