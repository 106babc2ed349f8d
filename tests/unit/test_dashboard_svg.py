"""The dashboard's tile grid (services/dashboard/tiles.py) and SVG (services/dashboard/svg.py):
known layouts, blocks that never overlap, every authority once, escaped text, charts whose
plotted figures add up to the series."""

from __future__ import annotations

import datetime as dt
import math
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.analysis import AreaTotals, Item, Series, counts_over_time
from schemas.events import Theme
from schemas.reference import local_authorities, regions
from services.dashboard.svg import (
    MAX_SERIES,
    NO_CONCERNS,
    abbreviation,
    chart_table,
    theme_chart,
    tile_legend,
    tile_map,
    tile_title,
)
from services.dashboard.tiles import GAP, LABEL_CHARS_PER_COL, Layout, RegionLabel, Tile, layout

SVG = "{http://www.w3.org/2000/svg}"
LEEDS, BRADFORD, BIRMINGHAM, KENT = "E08000035", "E08000032", "E08000025", "E10000016"
ALL_CODES = sorted(local_authorities())
LIVE_CODES = sorted(c for c, a in local_authorities().items() if a.terminated_on is None)
REGION_NAMES = [r.name for r in regions().values()]

Mark = Literal["", "considered", "selected"]


# -- the tile grid -------------------------------------------------------------------------


def test_a_tiny_layout_known_answer() -> None:
    # Leeds (Yorkshire and The Humber), Birmingham (West Midlands), Kent (South East): each
    # block one tile under its label, as wide as its label needs (24, 13 and 10 characters
    # at six a column), one above the other with one empty row between.
    assert layout([KENT, LEEDS, BIRMINGHAM]) == Layout(
        tiles=(
            Tile(LEEDS, "Leeds", "Yorkshire and The Humber", col=0, row=1),
            Tile(BIRMINGHAM, "Birmingham", "West Midlands", col=0, row=4),
            Tile(KENT, "Kent", "South East", col=0, row=7),
        ),
        labels=(
            RegionLabel("Yorkshire and The Humber", col=0, row=0),
            RegionLabel("West Midlands", col=0, row=3),
            RegionLabel("South East", col=0, row=6),
        ),
        cols=4,
        rows=8,
    )


def test_a_block_lays_its_authorities_by_name_in_rows() -> None:
    grid = layout([LEEDS, BRADFORD])
    assert [(t.name, t.col, t.row) for t in grid.tiles] == [("Bradford", 0, 1), ("Leeds", 1, 1)]
    assert (grid.cols, grid.rows) == (4, 2)


def test_blocks_side_by_side_keep_one_empty_column_between() -> None:
    # North West (Manchester) to the left of North East (Newcastle upon Tyne).
    grid = layout(["E08000003", "E08000021"])
    assert [(t.name, t.col, t.row) for t in grid.tiles] == [
        ("Newcastle upon Tyne", 3, 1),
        ("Manchester", 0, 1),
    ]
    assert [(label.region, label.col) for label in grid.labels] == [
        ("North East", 3),
        ("North West", 0),
    ]


def test_the_whole_of_england_in_a_rough_geographic_picture() -> None:
    grid = layout(LIVE_CODES)
    where = {label.region: (label.col, label.row) for label in grid.labels}
    assert list(where) == REGION_NAMES
    col = {region: c for region, (c, _) in where.items()}
    row = {region: r for region, (_, r) in where.items()}
    assert col["North West"] < col["North East"]
    assert row["North East"] < row["Yorkshire and The Humber"]
    assert col["North West"] < col["Yorkshire and The Humber"]
    assert col["West Midlands"] < col["East Midlands"] < col["East of England"]
    assert col["South West"] < col["London"] < col["South East"]
    assert row["Yorkshire and The Humber"] < row["East Midlands"] < row["London"]
    assert (grid.cols, grid.rows) == (19, 24)


def test_every_code_once_in_its_region_and_no_two_tiles_share_a_cell() -> None:
    grid = layout([*ALL_CODES, *ALL_CODES])
    assert sorted(t.code for t in grid.tiles) == ALL_CODES
    cells = [(t.col, t.row) for t in grid.tiles] + [(la.col, la.row) for la in grid.labels]
    assert len(set(cells)) == len(cells)
    for tile in grid.tiles:
        authority = local_authorities()[tile.code]
        assert (tile.name, tile.region) == (authority.name, authority.region.name)
        assert 0 <= tile.col < grid.cols
        assert 0 <= tile.row < grid.rows


@pytest.mark.parametrize("code", ["", "E07000123", "leeds", "Leeds", "E08000035 "])
def test_a_code_not_in_the_reference_data_is_refused(code: str) -> None:
    with pytest.raises(ValueError, match="not an upper-tier local authority"):
        layout([LEEDS, code])


def test_no_codes_no_tiles() -> None:
    assert layout([]) == Layout(tiles=(), labels=(), cols=0, rows=0)


def footprints(grid: Layout) -> dict[str, tuple[int, int, int, int]]:
    """Each block's cells (first col, first row, last col, last row), its label included
    at the width it needs."""
    boxes: dict[str, tuple[int, int, int, int]] = {}
    for label in grid.labels:
        tiles = [t for t in grid.tiles if t.region == label.region]
        label_end = label.col + math.ceil(len(label.region) / LABEL_CHARS_PER_COL) - 1
        boxes[label.region] = (
            label.col,
            label.row,
            max(label_end, *(t.col for t in tiles)),
            max(t.row for t in tiles),
        )
    return boxes


def assert_well_laid(grid: Layout, codes: Sequence[str]) -> None:
    assert sorted(t.code for t in grid.tiles) == sorted(set(codes))
    cells = [(t.col, t.row) for t in grid.tiles]
    assert len(set(cells)) == len(cells)
    boxes = footprints(grid)
    assert set(boxes) == {local_authorities()[c].region.name for c in codes}
    for region, (left, top, right, bottom) in boxes.items():
        members = [t for t in grid.tiles if t.region == region]
        # Compact: the tiles fill rows under the label, by name, all rows full but the last.
        width = len({t.col for t in members})
        assert [(t.col, t.row) for t in members] == [
            (left + i % width, top + 1 + i // width) for i in range(len(members))
        ]
        assert [t.name for t in members] == sorted(t.name for t in members)
        assert right < grid.cols
        assert bottom < grid.rows
    for a, (a_left, a_top, a_right, a_bottom) in boxes.items():
        for b, (b_left, b_top, b_right, b_bottom) in boxes.items():
            if a >= b:
                continue
            apart = (
                b_left - a_right - 1 >= GAP
                or a_left - b_right - 1 >= GAP
                or b_top - a_bottom - 1 >= GAP
                or a_top - b_bottom - 1 >= GAP
            )
            assert apart, (a, b, boxes[a], boxes[b])
    if grid.tiles:
        assert min(left for left, _, _, _ in boxes.values()) == 0
        assert min(top for _, top, _, _ in boxes.values()) == 0
        assert grid.cols == max(right for _, _, right, _ in boxes.values()) + 1
        assert grid.rows == max(bottom for _, _, _, bottom in boxes.values()) + 1


@given(st.lists(st.sampled_from(LIVE_CODES), unique=True))
def test_blocks_of_any_live_authorities_never_overlap(codes: list[str]) -> None:
    assert_well_laid(layout(codes), codes)


@given(st.sets(st.sampled_from(REGION_NAMES)), st.data())
def test_blocks_of_any_regions_never_overlap(chosen: set[str], data: st.DataObject) -> None:
    # Whole regions, some cut to one tile: the widest and narrowest blocks side by side.
    codes = []
    for code, authority in local_authorities().items():
        if authority.region.name in chosen and (
            data.draw(st.booleans(), label=code) or authority.region.name == "London"
        ):
            codes.append(code)
    assert_well_laid(layout(codes), codes)


def test_ended_and_live_authorities_together_never_overlap() -> None:
    assert_well_laid(layout(ALL_CODES), ALL_CODES)


# -- the tile map --------------------------------------------------------------------------


def totals_for(code: str, total: int = 0, severity: int = 0, jtai: Mark = "") -> AreaTotals:
    authority = local_authorities()[code]
    return AreaTotals(
        code=code,
        name=authority.name,
        region=authority.region.name,
        by_theme={Theme.NEGLECT: total} if total else {},
        total=total,
        max_severity=severity,
        severe=total if severity >= 3 else 0,
        jtai=jtai,
    )


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # noqa: S314 - our own output, parsed to check it


def tiles_of(root: ET.Element) -> dict[str, tuple[ET.Element, ET.Element]]:
    found: dict[str, tuple[ET.Element, ET.Element]] = {}
    for link in root.iter(f"{SVG}a"):
        (group,) = link.findall(f"{SVG}g")
        code = group.attrib["data-area"]
        assert code not in found
        found[code] = (link, group)
    return found


a_totals = st.builds(
    totals_for,
    st.sampled_from(LIVE_CODES),
    st.integers(min_value=0, max_value=500),
    st.integers(min_value=0, max_value=4),
    st.sampled_from(["", "considered", "selected"]),
)


@given(st.lists(a_totals, unique_by=lambda t: t.code))
def test_every_authority_appears_once_with_its_figures(given_totals: list[AreaTotals]) -> None:
    root = parse(tile_map(given_totals, title="Concerns", window_label="the last 90 days"))
    assert root.tag == f"{SVG}svg"
    assert root.attrib["id"] == "tile-map"
    assert root.attrib["role"] == "img"
    assert root.attrib["aria-labelledby"] == "tile-map-title tile-map-desc"
    found = tiles_of(root)
    assert set(found) == {t.code for t in given_totals}
    for totals in given_totals:
        link, group = found[totals.code]
        assert link.attrib["href"] == f"/area/{totals.code}"
        assert group.attrib["class"].split() == ["tile", f"sev-{totals.max_severity}"]
        assert group.attrib["data-total"] == str(totals.total)
        assert group.attrib["data-jtai"] == totals.jtai
        title = group.find(f"{SVG}title")
        assert title is not None
        assert title.text == tile_title(totals, "the last 90 days")
        count = group.find(f"{SVG}text[@class='tile-count']")
        assert count is not None
        assert count.text == str(totals.total)
        markers = [c.attrib["class"] for c in group.iter(f"{SVG}circle")]
        assert markers == ([f"jtai-{totals.jtai}"] if totals.jtai else [])
    order = [t.code for t in layout([t.code for t in given_totals]).tiles]
    assert list(found) == order
    regions_shown = {t.region for t in given_totals}
    labels = [t.text for t in root.iter(f"{SVG}text") if t.attrib.get("class") == "region-label"]
    assert labels == [name for name in REGION_NAMES if name in regions_shown]


def test_a_tile_known_answer() -> None:
    markup = tile_map(
        [totals_for(LEEDS, 3, 4, "selected")], title="Concerns", window_label="the last 7 days"
    )
    link = str(markup).split("<a ", 1)[1].split("</a>", 1)[0]
    assert link == (
        'href="/area/E08000035"><g class="tile sev-4" data-area="E08000035" data-total="3"'
        ' data-jtai="selected"><title>Leeds (E08000035): 3 concerns in the last 7 days;'
        " gravest severity 4; JTAI: selected</title>"
        '<rect x="0" y="40" width="36" height="36" rx="3"/>'
        '<text class="tile-abbr" x="18" y="59" text-anchor="middle">Leed</text>'
        '<text class="tile-count" x="18" y="71" text-anchor="middle">3</text>'
        '<circle class="jtai-selected" cx="31" cy="45" r="3.5"/></g>'
    )


def test_a_tile_without_concerns_says_so() -> None:
    assert tile_title(totals_for(KENT), "the last 90 days") == (
        "Kent (E10000016): 0 concerns in the last 90 days; gravest severity none; JTAI: none"
    )
    assert tile_title(totals_for(KENT, 1, 2, "considered"), "the last 7 days") == (
        "Kent (E10000016): 1 concern in the last 7 days; gravest severity 2; JTAI: considered"
    )


def test_short_forms_of_live_authorities_are_distinct_and_short() -> None:
    live = {a.name for a in local_authorities().values() if a.terminated_on is None}
    shorts = [abbreviation(name) for name in sorted(live)]
    assert len(set(shorts)) == len(shorts)
    assert all(1 <= len(s) <= 4 for s in shorts)
    assert abbreviation("North Yorkshire") == "NYor"
    assert abbreviation("Derby") != abbreviation("Derbyshire")


def test_the_map_is_deterministic_and_empty_maps_still_parse() -> None:
    totals = [totals_for(code, i % 5, i % 5, "") for i, code in enumerate(LIVE_CODES)]
    first = tile_map(totals, title="t", window_label="w")
    assert first == tile_map(list(reversed(totals)), title="t", window_label="w")
    assert len(tiles_of(parse(first))) == len(LIVE_CODES)
    empty = parse(tile_map([], title="Nothing", window_label="w"))
    assert tiles_of(empty) == {}
    assert "No areas to show" in "".join(empty.itertext())


def test_an_unknown_code_in_the_totals_is_refused() -> None:
    bogus = AreaTotals("E99999999", "X", "", {}, 0, 0, 0, "")
    with pytest.raises(ValueError, match="E99999999"):
        tile_map([bogus], title="t", window_label="w")


awkward = st.one_of(
    st.text(),
    st.sampled_from(['Leeds & "Bradford"', "<script>alert(1)</script>", "it's ]]> &amp;"]),
)


def xml_safe(text: str) -> str:
    """What survives into XML: line ends as ``\\n``, characters XML cannot carry as U+FFFD."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        c
        if c in "\t\n\r"
        or "\x20" <= c <= "\ud7ff"
        or "\ue000" <= c <= "\ufffd"
        or c >= "\U00010000"
        else "\ufffd"
        for c in text
    )


@given(awkward, awkward, awkward)
def test_any_text_is_escaped_in_the_map(title: str, window: str, name: str) -> None:
    totals = totals_for(KENT, 2, 3, "considered")
    renamed = AreaTotals(
        totals.code, name, totals.region, totals.by_theme, 2, 3, 2, "considered", ()
    )
    root = parse(tile_map([renamed], title=title, window_label=window))
    shown = root.find(f"{SVG}title")
    assert shown is not None
    assert (shown.text or "") == xml_safe(title)
    (_, group) = tiles_of(root)[KENT]
    tooltip = group.find(f"{SVG}title")
    assert tooltip is not None
    assert tooltip.text == xml_safe(tile_title(renamed, window))


def test_the_legend_names_every_shade_and_marker() -> None:
    root = parse(tile_legend())
    assert root.tag == "ul"
    assert root.attrib["class"] == "map-legend"
    entries = ["".join(li.itertext()).strip() for li in root.iter("li")]
    assert entries == [
        "No concerns",
        "Gravest severity 1",
        "Gravest severity 2",
        "Gravest severity 3",
        "Gravest severity 4",
        "JTAI considering",
        "JTAI selected",
    ]
    classes = [el.attrib["class"] for el in root.iter() if el.tag in {f"{SVG}rect", f"{SVG}circle"}]
    assert classes == [f"swatch sev-{n}" for n in range(5)] + ["jtai-considered", "jtai-selected"]


# -- the chart of concerns over time -------------------------------------------------------

START = dt.date(2026, 1, 5)


def series_of(counts: dict[Theme, tuple[int, ...]], buckets: int, days: int = 7) -> Series:
    starts = tuple(START + dt.timedelta(days=i * days) for i in range(buckets))
    ordered = dict(sorted(counts.items(), key=lambda kv: (-sum(kv[1]), kv[0].value)))
    return Series(starts=starts, counts=ordered, bucket_days=days)


@st.composite
def some_series(draw: st.DrawFn) -> Series:
    buckets = draw(st.integers(min_value=1, max_value=60))
    themes = draw(st.lists(st.sampled_from(list(Theme)), unique=True))
    counts = {
        theme: tuple(
            draw(
                st.lists(
                    st.integers(min_value=0, max_value=40), min_size=buckets, max_size=buckets
                ).filter(any)
            )
        )
        for theme in themes
    }
    days = draw(st.sampled_from([1, 7, 14, 30]))
    return series_of(counts, buckets, days)


def plotted(root: ET.Element) -> list[tuple[str, list[int]]]:
    lines = []
    for group in root.iter(f"{SVG}g"):
        if group.attrib.get("class") == "series":
            (line,) = group.findall(f"{SVG}polyline")
            lines.append(
                (group.attrib["data-theme"], [int(v) for v in line.attrib["data-values"].split()])
            )
    return lines


@given(some_series())
@settings(max_examples=60)
def test_the_chart_plots_every_concern_of_the_series(series: Series) -> None:
    markup = theme_chart(series, title="Leeds")
    root = parse(markup)
    assert root.attrib["id"] == "theme-chart"
    assert root.attrib["aria-labelledby"] == "theme-chart-title theme-chart-desc"
    if series.total == 0:
        assert NO_CONCERNS in "".join(root.itertext())
        assert plotted(root) == []
        return
    lines = plotted(root)
    assert sum(sum(values) for _, values in lines) == series.total
    assert len(lines) == min(len(series.counts), MAX_SERIES)
    names = [t.value.replace("_", " ") for t in series.counts]
    if len(names) <= MAX_SERIES:
        assert [label for label, _ in lines] == names
    else:
        assert [label for label, _ in lines] == [*names[: MAX_SERIES - 1], "other themes"]
    for number, (_, values) in enumerate(lines):
        assert len(values) == len(series.starts)
        colour = f"series-{number}"
        drawn = [el for el in root.iter() if colour in el.attrib.get("class", "").split()]
        assert {el.tag for el in drawn} >= {f"{SVG}polyline", f"{SVG}rect"}
    points = [int(c.attrib["data-value"]) for c in root.iter(f"{SVG}circle")]
    assert sum(points) == series.total
    ticks = [t.text or "" for t in root.iter(f"{SVG}text") if t.attrib.get("class") == "tick"]
    dates = [t for t in ticks if "-" in t]
    assert dates[0] == series.starts[0].isoformat()
    assert dates[-1] == series.starts[-1].isoformat()
    assert all(dt.date.fromisoformat(d) in series.starts for d in dates)
    assert len(dates) <= 5
    counts = [int(t) for t in ticks if "-" not in t]
    peak = max(max(values) for _, values in lines)
    assert counts[0] == 0
    assert counts[-1] >= peak
    assert markup == theme_chart(series, title="Leeds")


@given(some_series())
@settings(max_examples=40)
def test_the_table_gives_the_chart_s_figures(series: Series) -> None:
    root = parse(chart_table(series))
    assert root.tag == "table"
    assert root.attrib["class"] == "chart-data"
    caption = root.find("caption")
    assert caption is not None
    assert caption.text
    if series.total == 0:
        assert NO_CONCERNS in "".join(root.itertext())
        return
    head = [th.text for th in root.iterfind("thead/tr/th")]
    assert all(th.attrib["scope"] == "col" for th in root.iterfind("thead/tr/th"))
    lines = plotted(parse(theme_chart(series, title="t")))
    assert head[1:] == [*(label for label, _ in lines), "All themes"]
    rows = root.findall("tbody/tr")
    assert len(rows) == len(series.starts)
    for index, row in enumerate(rows):
        th = row.find("th")
        assert th is not None
        assert th.attrib["scope"] == "row"
        assert th.text == series.starts[index].isoformat()
        cells = [int(td.text or "") for td in row.findall("td")]
        assert cells[:-1] == [values[index] for _, values in lines]
        assert cells[-1] == sum(cells[:-1])
    foot = [int(td.text or "") for td in root.findall("tfoot/tr/td")]
    assert foot[-1] == series.total
    assert foot[:-1] == [sum(values) for _, values in lines]


def test_a_chart_known_answer() -> None:
    series = series_of({Theme.NEGLECT: (0, 2), Theme.DOMESTIC_ABUSE: (1, 0)}, buckets=2)
    root = parse(theme_chart(series, title="Leeds: concerns"))
    assert plotted(root) == [("neglect", [0, 2]), ("domestic abuse", [1, 0])]
    lines = [el.attrib["points"] for el in root.iter(f"{SVG}polyline")]
    # Counts 0..2 in ticks of 1; two buckets at the plot's left and right edges.
    assert lines == ["48,196 430,16", "48,106 430,196"]
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.attrib.get("class") == "tick"]
    assert ticks == ["0", "1", "2", "2026-01-05", "2026-01-12"]
    keys = [t.text for t in root.iter(f"{SVG}text") if t.attrib.get("font-size") == "11"]
    assert keys == ["neglect", "domestic abuse"]
    desc = root.find(f"{SVG}desc")
    assert desc is not None
    assert desc.text == (
        "Concerns per theme in each week from 2026-01-05 (the last starting 2026-01-12):"
        " 3 concerns in all; the busiest theme is neglect (2). The table that follows gives"
        " the same figures."
    )


def test_more_than_eight_themes_fold_into_other_themes() -> None:
    themes = list(Theme)[:10]
    series = series_of({t: (i + 1, 0) for i, t in enumerate(themes)}, buckets=2)
    lines = plotted(parse(theme_chart(series, title="t")))
    assert len(lines) == MAX_SERIES
    assert lines[-1] == ("other themes", [1 + 2 + 3, 0])
    assert sum(sum(v) for _, v in lines) == series.total == 55


@pytest.mark.parametrize(
    "series",
    [
        Series(starts=(), counts={}, bucket_days=7),
        Series(starts=(START,), counts={}, bucket_days=7),
    ],
)
def test_an_empty_series_says_no_concerns(series: Series) -> None:
    root = parse(theme_chart(series, title="Kent & Medway"))
    assert root.attrib["id"] == "theme-chart"
    title = root.find(f"{SVG}title")
    assert title is not None
    assert title.text == "Kent & Medway"
    assert NO_CONCERNS in "".join(root.itertext())
    assert NO_CONCERNS in "".join(parse(chart_table(series)).itertext())


def test_a_chart_from_real_concerns() -> None:
    def item(day: int, theme: Theme) -> Item:
        when = dt.datetime(2026, 1, day, 12, tzinfo=dt.UTC)
        return Item(
            id=uuid.uuid4(),
            type="uk.inspectorate.concern.raised.v1",
            kind="concern",
            source="ofsted",
            occurred_at=when,
            received_at=when,
            area=LEEDS,
            area_name="Leeds",
            region="Yorkshire and The Humber",
            theme=theme,
            summary="s",
            severity=2,
        )

    items = [item(5, Theme.NEGLECT), item(6, Theme.NEGLECT), item(20, Theme.EARLY_HELP)]
    series = counts_over_time(items, START, dt.date(2026, 2, 2))
    assert plotted(parse(theme_chart(series, title="t"))) == [
        ("neglect", [2, 0, 0, 0]),
        ("early help", [0, 0, 1, 0]),
    ]


@given(awkward)
def test_any_title_is_escaped_in_the_chart(title: str) -> None:
    series = series_of({Theme.NEGLECT: (1,)}, buckets=1)
    for markup in (theme_chart(series, title=title), theme_chart(series_of({}, 1), title=title)):
        shown = parse(markup).find(f"{SVG}title")
        assert shown is not None
        assert (shown.text or "") == xml_safe(title)
    caption = parse(chart_table(series, caption=title)).find("caption")
    assert caption is not None
    assert (caption.text or "") == xml_safe(title) or not title
