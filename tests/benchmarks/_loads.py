"""The benchmark's loads: typical concerns, spread over areas and themes or in one hot spot.

Sources rotate over the five inspectorates (each under its own programme); areas are
local authorities live today and over the last year, so every concern validates now.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from consumers.copartition import partition_for
from schemas.errors import SchemaError
from schemas.events import ConcernRaised
from schemas.inspectorates import PROGRAMMES, Inspectorate
from schemas.reference import check_area, local_authorities
from tests.factories import concern

__all__ = [
    "SOURCES",
    "THEMES",
    "balanced_areas",
    "hot_spot",
    "live_areas",
    "spread",
    "write_jsonl",
]

SOURCES: Final = tuple(Inspectorate)
THEMES: Final = (
    "front_door",
    "domestic_abuse",
    "neglect",
    "missing_children",
    "mental_health",
    "children_in_care",
)
_AGENCIES: Final = ("police", "health")
_APART: Final = dt.timedelta(seconds=10)
"""Event time between two concerns of a load (the newest an hour before now)."""


def live_areas(today: dt.date, count: int) -> list[str]:
    """``count`` local authorities (sorted by code) that exist today and a year ago."""
    found = _live_codes(today)
    if len(found) < count:
        msg = f"only {len(found)} live local authorities, {count} wanted"
        raise ValueError(msg)
    return found[:count]


def balanced_areas(today: dt.date, count: int, partitions: int) -> list[str]:
    """``count`` live local authorities (as ``live_areas``) whose records spread evenly
    over ``partitions`` (Kafka's default partitioner of the area key): a partition's
    areas then differ in number by at most one, so routers sharing the partitions share
    the load as evenly as the partitions allow."""
    by_partition: list[list[str]] = [[] for _ in range(partitions)]
    for code in _live_codes(today):
        by_partition[partition_for(code.encode(), partitions)].append(code)
    picked = [code for row in zip(*by_partition, strict=False) for code in row]
    if len(picked) < count:
        msg = f"only {len(picked)} live local authorities spread evenly, {count} wanted"
        raise ValueError(msg)
    return picked[:count]


def _live_codes(today: dt.date) -> list[str]:
    codes = []
    for code in sorted(local_authorities()):
        try:
            check_area(code, today)
            check_area(code, today - dt.timedelta(days=366))
        except (SchemaError, ValueError):
            continue
        codes.append(code)
    return codes


def _concern(index: int, count: int, area: str, theme: str, now: dt.datetime) -> ConcernRaised:
    source = SOURCES[index % len(SOURCES)]
    return concern(
        source=source,
        programme=PROGRAMMES[source][0],
        area=area,
        theme=theme,
        subject_agencies=list(_AGENCIES),
        occurred_at=now - dt.timedelta(hours=1) - (count - index) * _APART,
    )


def spread(count: int, areas: Sequence[str], now: dt.datetime) -> list[ConcernRaised]:
    """``count`` concerns over every area and theme (area fastest), sources rotating."""
    return [
        _concern(i, count, areas[i % len(areas)], THEMES[(i // len(areas)) % len(THEMES)], now)
        for i in range(count)
    ]


def hot_spot(count: int, area: str, now: dt.datetime) -> list[ConcernRaised]:
    """``count`` concerns in one area and theme, sources rotating."""
    return [_concern(i, count, area, "neglect", now) for i in range(count)]


def write_jsonl(path: Path, events: Sequence[ConcernRaised]) -> Path:
    """``events`` as JSON Lines, as ``liaison publish`` reads them."""
    with path.open("w", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps(event.model_dump(mode="json")) + "\n")
    return path
