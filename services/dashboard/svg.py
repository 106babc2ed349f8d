"""Server-rendered SVG for the dashboard: the overview's tile map and an area's chart of
concerns per theme over time, with a data table for the chart.

Pure: every function returns ``markupsafe.Markup`` built from numbers and escaped text
(``markupsafe.escape``, after dropping the characters XML cannot carry), so a name with
``&``, ``<`` or quotes can never break the page or the markup around it. The output is
deterministic (the same input gives the same bytes) and parses as XML.

Colours are the stylesheet's (``static/``), by CSS class:

- tile map: ``tile`` with ``sev-0`` (no concerns) to ``sev-4`` (gravest severity 4) on
  each tile's ``<g>``; ``tile-abbr`` (the name's short form) and ``tile-count`` (the
  count) texts; ``jtai-considered`` and ``jtai-selected`` marker circles;
  ``region-label`` texts; in ``tile_legend``: ``swatch`` rects with the same ``sev-N``
  classes and the two marker classes;
- chart: ``series-0`` to ``series-7`` on each line (``line``), point (``point``) and
  legend swatch (``swatch``); ``axis``, ``grid``, ``tick`` and ``axis-label``.

When the overview updates live, a tile's ``data-total``, ``data-jtai``, ``sev-N`` class,
``.tile-count`` text, ``<title>`` text and marker circle follow its ``AreaTotals``
(``tile_title`` gives the title's text).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Final

from markupsafe import Markup, escape

from consumers.analysis import AreaTotals, Series
from schemas.reference import local_authorities
from services.dashboard.tiles import layout

__all__ = [
    "MAX_SERIES",
    "NO_CONCERNS",
    "abbreviation",
    "chart_table",
    "theme_chart",
    "tile_legend",
    "tile_map",
    "tile_title",
]

MAX_SERIES: Final = 8
"""Lines a chart draws: the busiest themes, and the rest together as "other themes"."""

NO_CONCERNS: Final = "No concerns in this period"

_SVG_NS: Final = "http://www.w3.org/2000/svg"
_PITCH: Final = 40
"""Pixels from one tile to the next."""
_TILE: Final = 36
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> Markup:
    """``value`` as text XML can carry, escaped (for element text and attribute values);
    line ends become ``\\n``, as any parser would read them."""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return escape(_NOT_XML.sub("\ufffd", text))


def _num(value: float) -> str:
    """A coordinate, the same text for the same value (one decimal at most)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _element(tag: str, attributes: Mapping[str, object], *children: Markup) -> Markup:
    attrs = "".join(f' {name}="{_text(value)}"' for name, value in attributes.items())
    if not children:
        return Markup(f"<{tag}{attrs}/>")  # noqa: S704 - names are literals, values escaped
    return Markup(f"<{tag}{attrs}>{''.join(children)}</{tag}>")  # noqa: S704 - as above


def _svg(name: str, size: tuple[int, int], title: str, desc: str, body: Iterable[Markup]) -> Markup:
    head = (
        _element("title", {"id": f"{name}-title"}, _text(title)),
        _element("desc", {"id": f"{name}-desc"}, _text(desc)),
    )
    attributes = {
        "xmlns": _SVG_NS,
        "id": name,
        "role": "img",
        "aria-labelledby": f"{name}-title {name}-desc",
        "viewBox": f"0 0 {size[0]} {size[1]}",
    }
    return _element("svg", attributes, *head, *body)


# -- tile map ------------------------------------------------------------------------------

_COMPASS: Final = frozenset({"North", "East", "South", "West"})
_MINOR_WORDS: Final = frozenset({"and", "of", "upon", "on", "with", "City", "County"})


def _words(name: str) -> list[str]:
    words = [w for w in re.split(r"[^A-Za-z]+", name) if w]
    return [w for w in words if w not in _MINOR_WORDS] or words or ["?"]


def _first_try(name: str) -> str:
    words = _words(name)
    if len(words) > 1 and words[0] in _COMPASS:
        return words[0][0] + words[1][:3]
    return "".join(words)[:4]


def _second_try(name: str) -> str:
    words = _words(name)
    if len(words) > 1:
        return (words[0][:2] + "".join(w[0] for w in words[1:]))[:4]
    return words[0][:3] + words[0][-1]


def _third_try(name: str) -> str:
    return "".join(re.split(r"[^A-Za-z]+", name))[:4] or "?"


@cache
def _abbreviations() -> Mapping[str, str]:
    """A short form for every live authority's name, distinct where the rules allow (one
    name keeps one short form whatever else is on the map); an ended authority's name
    takes the first rule's form (it may share it with its successor)."""
    chosen: dict[str, str] = {}
    authorities = local_authorities().values()
    pending = sorted({a.name for a in authorities if a.terminated_on is None})
    for rule in (_first_try, _second_try, _third_try):
        tried = [rule(name) for name in pending]
        left = []
        for name, short in zip(pending, tried, strict=True):
            if tried.count(short) == 1 and short not in chosen.values():
                chosen[name] = short
            else:
                left.append(name)
        pending = left
    chosen.update({name: _first_try(name) for name in pending})
    for authority in authorities:
        chosen.setdefault(authority.name, _first_try(authority.name))
    return chosen


def abbreviation(name: str) -> str:
    """The short form a tile shows for an authority's name (at most four characters)."""
    return _abbreviations().get(name) or _first_try(name)


def _concerns(count: int) -> str:
    return f"{count} concern" if count == 1 else f"{count} concerns"


def tile_title(totals: AreaTotals, window_label: str) -> str:
    """A tile's tooltip: the authority, its concerns in the window, the gravest severity
    and its JTAI mark."""
    gravest = str(totals.max_severity) if totals.max_severity else "none"
    return (
        f"{totals.name} ({totals.code}): {_concerns(totals.total)} in {window_label};"
        f" gravest severity {gravest}; JTAI: {totals.jtai or 'none'}"
    )


def _tile(totals: AreaTotals, name: str, col: int, row: int, window_label: str) -> Markup:
    x, y = col * _PITCH, row * _PITCH
    parts = [
        _element("title", {}, _text(tile_title(totals, window_label))),
        _element("rect", {"x": x, "y": y, "width": _TILE, "height": _TILE, "rx": 3}),
        _element(
            "text",
            {"class": "tile-abbr", "x": x + _TILE // 2, "y": y + 19, "text-anchor": "middle"},
            _text(abbreviation(name)),
        ),
        _element(
            "text",
            {"class": "tile-count", "x": x + _TILE // 2, "y": y + 31, "text-anchor": "middle"},
            _text(totals.total),
        ),
    ]
    if totals.jtai:
        parts.append(
            _element(
                "circle", {"class": f"jtai-{totals.jtai}", "cx": x + 31, "cy": y + 5, "r": 3.5}
            )
        )
    group = _element(
        "g",
        {
            "class": f"tile sev-{totals.max_severity}",
            "data-area": totals.code,
            "data-total": totals.total,
            "data-jtai": totals.jtai,
        },
        *parts,
    )
    return _element("a", {"href": f"/area/{totals.code}"}, group)


def tile_map(totals: Sequence[AreaTotals], *, title: str, window_label: str) -> Markup:
    """The overview's tile map: one linked tile per authority in ``totals``, shaded by its
    gravest severity, marked when JTAI considers or selected it, in ``layout`` order.

    ``ValueError`` when a code is not an upper-tier authority in the reference data.
    """
    by_code = {t.code: t for t in totals}
    grid = layout(list(by_code))
    with_concerns = sum(1 for t in by_code.values() if t.total)
    desc = (
        f"{len(grid.tiles)} upper-tier local authorities as a tile grid, grouped by region"
        f" (not to scale). Each tile's shade shows the gravest severity of its concerns in"
        f" {window_label}; a ring marks a JTAI consideration and a dot a JTAI selection."
        f" {with_concerns} of them have concerns, {sum(t.total for t in by_code.values())} in"
        " all. The table of areas gives the same figures."
    )
    body: list[Markup] = [
        _element(
            "text",
            {
                "class": "region-label",
                "x": label.col * _PITCH,
                "y": label.row * _PITCH + 28,
                "font-size": 12,
            },
            _text(label.region),
        )
        for label in grid.labels
    ]
    body.extend(
        _tile(by_code[tile.code], tile.name, tile.col, tile.row, window_label)
        for tile in grid.tiles
    )
    if not grid.tiles:
        body.append(_element("text", {"x": 8, "y": 24}, _text("No areas to show")))
    width = max(grid.cols * _PITCH - (_PITCH - _TILE), 240)
    height = max(grid.rows * _PITCH - (_PITCH - _TILE), 40)
    return _svg("tile-map", (width, height), title, desc, body)


_SEVERITY_KEYS: Final = (
    (0, "No concerns"),
    (1, "Gravest severity 1"),
    (2, "Gravest severity 2"),
    (3, "Gravest severity 3"),
    (4, "Gravest severity 4"),
)


def tile_legend() -> Markup:
    """The tile map's key, as a list (``<ul class="map-legend">``): the five shades and
    the two JTAI markers, each a small picture (hidden from assistive technology) and text."""

    def entry(picture: Markup, label: str) -> Markup:
        icon = _element(
            "svg",
            {
                "xmlns": _SVG_NS,
                "viewBox": "0 0 16 16",
                "width": 16,
                "height": 16,
                "aria-hidden": "true",
                "focusable": "false",
            },
            picture,
        )
        return _element("li", {}, icon, Markup(" "), _text(label))

    items = [
        entry(
            _element(
                "rect",
                {"class": f"swatch sev-{severity}", "width": 16, "height": 16, "rx": 2},
            ),
            label,
        )
        for severity, label in _SEVERITY_KEYS
    ]
    items.append(
        entry(
            _element("circle", {"class": "jtai-considered", "cx": 8, "cy": 8, "r": 5}),
            "JTAI considering",
        )
    )
    items.append(
        entry(
            _element("circle", {"class": "jtai-selected", "cx": 8, "cy": 8, "r": 5}),
            "JTAI selected",
        )
    )
    return _element("ul", {"class": "map-legend"}, *items)


# -- chart of concerns per theme over time -------------------------------------------------

_WIDTH: Final = 640
_HEIGHT: Final = 250
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 430, 16, 196
_LEGEND_X: Final = 450
_MAX_DATE_TICKS: Final = 5
_MAX_COUNT_TICKS: Final = 5
_OTHER: Final = "other themes"


def _lines(series: Series) -> list[tuple[str, tuple[int, ...]]]:
    """The lines drawn (and the table's columns): the busiest themes, then the rest as one."""
    named = [(theme.value.replace("_", " "), counts) for theme, counts in series.counts.items()]
    if len(named) <= MAX_SERIES:
        return named
    kept, rest = named[: MAX_SERIES - 1], named[MAX_SERIES - 1 :]
    folded = tuple(sum(values) for values in zip(*(c for _, c in rest), strict=True))
    return [*kept, (_OTHER, folded)]


def _count_step(top: int) -> int:
    """The gap between count ticks: 1, 2 or 5 times a power of ten, at most five ticks."""
    power = 1
    while True:
        for step in (power, 2 * power, 5 * power):
            if math.ceil(top / step) <= _MAX_COUNT_TICKS:
                return step
        power *= 10


def _date_ticks(buckets: int) -> list[int]:
    """The buckets whose start is written under the axis: the first, the last and evenly
    between, at most five."""
    if buckets <= _MAX_DATE_TICKS:
        return list(range(buckets))
    last = _MAX_DATE_TICKS - 1
    return sorted({round(i * (buckets - 1) / last) for i in range(_MAX_DATE_TICKS)})


def _period(bucket_days: int) -> str:
    return {1: "day", 7: "week"}.get(bucket_days, f"{bucket_days}-day period")


@dataclass(frozen=True)
class _Scale:
    """Where a bucket and a count fall on the plot."""

    buckets: int
    top: int

    def x(self, index: int) -> str:
        if self.buckets == 1:
            return _num((_LEFT + _RIGHT) / 2)
        return _num(_LEFT + index * (_RIGHT - _LEFT) / (self.buckets - 1))

    def y(self, count: int, shift: float = 0) -> str:
        return _num(_BOTTOM - count * (_BOTTOM - _TOP) / self.top + shift)


def _axes(series: Series, scale: _Scale, step: int) -> list[Markup]:
    """Grid lines with count ticks, date ticks, both axes and their labels."""
    parts: list[Markup] = []
    for value in range(0, scale.top + 1, step):
        y = scale.y(value)
        parts.append(
            _element("line", {"class": "grid", "x1": _LEFT, "x2": _RIGHT, "y1": y, "y2": y})
        )
        parts.append(
            _element(
                "text",
                {"class": "tick", "x": _LEFT - 6, "y": scale.y(value, 4), "text-anchor": "end"},
                _text(value),
            )
        )
    parts.extend(
        _element(
            "text",
            {"class": "tick", "x": scale.x(index), "y": _BOTTOM + 18, "text-anchor": "middle"},
            _text(series.starts[index].isoformat()),
        )
        for index in _date_ticks(scale.buckets)
    )
    middle = (_TOP + _BOTTOM) // 2
    parts.extend(
        [
            _element(
                "line", {"class": "axis", "x1": _LEFT, "x2": _RIGHT, "y1": _BOTTOM, "y2": _BOTTOM}
            ),
            _element(
                "line", {"class": "axis", "x1": _LEFT, "x2": _LEFT, "y1": _TOP, "y2": _BOTTOM}
            ),
            _element(
                "text",
                {
                    "class": "axis-label",
                    "x": (_LEFT + _RIGHT) // 2,
                    "y": _HEIGHT - 10,
                    "text-anchor": "middle",
                },
                _text(f"Start of each {_period(series.bucket_days)}"),
            ),
            _element(
                "text",
                {
                    "class": "axis-label",
                    "x": 12,
                    "y": middle,
                    "text-anchor": "middle",
                    "transform": f"rotate(-90 12 {middle})",
                },
                _text("Concerns"),
            ),
        ]
    )
    return parts


def _line(
    series: Series, scale: _Scale, number: int, label: str, counts: tuple[int, ...]
) -> Markup:
    """One theme's line, a point (with its figure) where it has concerns, and its key entry."""
    colour = f"series-{number}"
    period = _period(series.bucket_days)
    points = [
        _element(
            "circle",
            {
                "class": f"point {colour}",
                "cx": scale.x(i),
                "cy": scale.y(count),
                "r": 3,
                "data-value": count,
            },
            _element(
                "title",
                {},
                _text(f"{label}, {period} from {series.starts[i].isoformat()}: {_concerns(count)}"),
            ),
        )
        for i, count in enumerate(counts)
        if count
    ]
    line = _element(
        "polyline",
        {
            "class": f"line {colour}",
            "points": " ".join(f"{scale.x(i)},{scale.y(c)}" for i, c in enumerate(counts)),
            "fill": "none",
            "data-values": " ".join(str(c) for c in counts),
        },
    )
    key_y = _TOP + 4 + number * 20
    key = _element(
        "g",
        {"class": "key"},
        _element(
            "rect",
            {"class": f"swatch {colour}", "x": _LEGEND_X, "y": key_y, "width": 14, "height": 14},
        ),
        _element("text", {"x": _LEGEND_X + 20, "y": key_y + 11, "font-size": 11}, _text(label)),
    )
    return _element("g", {"class": "series", "data-theme": label}, line, *points, key)


def theme_chart(series: Series, *, title: str) -> Markup:
    """A line chart of concerns per theme in each bucket of ``series`` (busiest themes
    first; beyond ``MAX_SERIES`` the rest as "other themes"), with axes, ticks and a key."""
    if not series.starts or series.total == 0:
        empty = [_element("text", {"x": 8, "y": 28, "font-size": 14}, _text(NO_CONCERNS))]
        return _svg("theme-chart", (_WIDTH, 48), title, NO_CONCERNS, empty)
    lines = _lines(series)
    peak = max(max(counts) for _, counts in lines)
    step = _count_step(peak)
    scale = _Scale(buckets=len(series.starts), top=step * math.ceil(peak / step))
    body = _axes(series, scale, step)
    body.extend(
        _line(series, scale, number, label, counts) for number, (label, counts) in enumerate(lines)
    )
    busiest, busiest_counts = lines[0]
    desc = (
        f"Concerns per theme in each {_period(series.bucket_days)} from"
        f" {series.starts[0].isoformat()} (the last starting {series.starts[-1].isoformat()}):"
        f" {_concerns(series.total)} in all; the busiest theme is {busiest}"
        f" ({sum(busiest_counts)}). The table that follows gives the same figures."
    )
    return _svg("theme-chart", (_WIDTH, _HEIGHT), title, desc, body)


def chart_table(series: Series, *, caption: str | None = None) -> Markup:
    """The chart's figures as a table (``<table class="chart-data">``): a row per bucket,
    a column per line drawn, and totals."""
    period = _period(series.bucket_days)
    shown = caption or f"Concerns per theme in each {period} (the chart's figures)"
    lines = _lines(series)
    if not series.starts or series.total == 0:
        return _element(
            "table",
            {"class": "chart-data"},
            _element("caption", {}, _text(shown)),
            _element("tbody", {}, _element("tr", {}, _element("td", {}, _text(NO_CONCERNS)))),
        )

    def head(text: str) -> Markup:
        return _element("th", {"scope": "col"}, _text(text))

    header = _element(
        "tr",
        {},
        head(f"{period.capitalize()} from"),
        *(head(label) for label, _ in lines),
        head("All themes"),
    )
    rows = [
        _element(
            "tr",
            {},
            _element("th", {"scope": "row"}, _text(start.isoformat())),
            *(_element("td", {}, _text(counts[index])) for _, counts in lines),
            _element("td", {}, _text(sum(counts[index] for _, counts in lines))),
        )
        for index, start in enumerate(series.starts)
    ]
    footer = _element(
        "tr",
        {},
        _element("th", {"scope": "row"}, _text("All")),
        *(_element("td", {}, _text(sum(counts))) for _, counts in lines),
        _element("td", {}, _text(series.total)),
    )
    return _element(
        "table",
        {"class": "chart-data"},
        _element("caption", {}, _text(shown)),
        _element("thead", {}, header),
        _element("tbody", {}, *rows),
        _element("tfoot", {}, footer),
    )
