"""A regional tile grid of English upper-tier local authorities, for the overview map.

The reference data hold no coordinates, so the map does not pretend to be one: each of
the nine regions is a compact block of square tiles (its authorities sorted by name, then
code, laid row by row in a width chosen for the region), under a label row naming it; the
blocks sit in a rough picture of England::

    North West   North East
    North West   Yorkshire and The Humber
    West Midlands   East Midlands   East of England
    South West   London   South East

Each block is placed by the blocks that must lie to its left and above it (a longest path
over those relations, so a region with no authorities given takes no room and the others
close up). Invariants, pinned by hypothesis in ``tests/unit/test_dashboard_svg.py``:

- every code given has one tile, and no two tiles share a cell;
- blocks (their label row, as wide as the label needs at ``LABEL_CHARS_PER_COL``, and
  their tiles) never overlap and have at least one empty cell between them.

Pure: reads only the reference data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from schemas.reference import LocalAuthority, local_authorities, regions

__all__ = ["GAP", "LABEL_CHARS_PER_COL", "Layout", "RegionLabel", "Tile", "layout"]

GAP: Final = 1
"""Empty cells between two blocks."""

LABEL_CHARS_PER_COL: Final = 6
"""Characters of a region's label one column holds; a block is at least as wide as its
label needs, so a label never runs over the block beside it."""

_NORTH_EAST, _NORTH_WEST, _YORKSHIRE = "E12000001", "E12000002", "E12000003"
_EAST_MIDLANDS, _WEST_MIDLANDS, _EAST = "E12000004", "E12000005", "E12000006"
_LONDON, _SOUTH_EAST, _SOUTH_WEST = "E12000007", "E12000008", "E12000009"

_WIDTH: Final[Mapping[str, int]] = {
    _NORTH_EAST: 3,
    _NORTH_WEST: 4,
    _YORKSHIRE: 5,
    _EAST_MIDLANDS: 4,
    _WEST_MIDLANDS: 4,
    _EAST: 4,
    _LONDON: 6,
    _SOUTH_EAST: 5,
    _SOUTH_WEST: 6,
}
"""Tiles a row of each region's block holds (the North East tall and narrow, the South
West long, London square)."""

_LEFT_OF: Final[Mapping[str, tuple[str, ...]]] = {
    _NORTH_EAST: (_NORTH_WEST,),
    _YORKSHIRE: (_NORTH_WEST,),
    _EAST_MIDLANDS: (_WEST_MIDLANDS,),
    _EAST: (_EAST_MIDLANDS,),
    _LONDON: (_SOUTH_WEST,),
    _SOUTH_EAST: (_LONDON,),
}
"""The blocks that lie wholly to the left of each block."""

_ABOVE: Final[Mapping[str, tuple[str, ...]]] = {
    _YORKSHIRE: (_NORTH_EAST,),
    _WEST_MIDLANDS: (_NORTH_WEST, _YORKSHIRE),
    _EAST_MIDLANDS: (_NORTH_WEST, _YORKSHIRE),
    _EAST: (_NORTH_WEST, _YORKSHIRE),
    _SOUTH_WEST: (_WEST_MIDLANDS, _EAST_MIDLANDS, _EAST),
    _LONDON: (_WEST_MIDLANDS, _EAST_MIDLANDS, _EAST),
    _SOUTH_EAST: (_WEST_MIDLANDS, _EAST_MIDLANDS, _EAST),
}
"""The blocks that lie wholly above each block. With ``_LEFT_OF``, every two blocks are
ordered one way or the other (directly or through others), which is what keeps them apart."""

_PLACING_ORDER: Final = (
    _NORTH_WEST,
    _NORTH_EAST,
    _YORKSHIRE,
    _WEST_MIDLANDS,
    _EAST_MIDLANDS,
    _EAST,
    _SOUTH_WEST,
    _LONDON,
    _SOUTH_EAST,
)
"""Every block after the blocks it is placed by."""


@dataclass(frozen=True)
class Tile:
    """One authority's cell: column and row from the top left, in tiles."""

    code: str
    name: str
    region: str
    col: int
    row: int


@dataclass(frozen=True)
class RegionLabel:
    """Where a region's name is written: the first cell of its block's label row."""

    region: str
    col: int
    row: int


@dataclass(frozen=True)
class Layout:
    """Tiles (regions in reference order, each by name), labels and the grid's size."""

    tiles: tuple[Tile, ...]
    labels: tuple[RegionLabel, ...]
    cols: int
    rows: int


@dataclass(frozen=True)
class _Block:
    members: tuple[LocalAuthority, ...]
    width: int
    """Tiles a row holds."""
    cols: int
    """Columns the block takes: its tile rows or its label, whichever is wider."""
    rows: int
    """Rows the block takes: the label row and the tile rows."""


def _block(region_name: str, code: str, members: list[LocalAuthority]) -> _Block:
    ordered = tuple(sorted(members, key=lambda a: (a.name, a.code)))
    width = min(_WIDTH[code], len(ordered))
    label_cols = math.ceil(len(region_name) / LABEL_CHARS_PER_COL)
    return _Block(
        members=ordered,
        width=width,
        cols=max(width, label_cols),
        rows=1 + math.ceil(len(ordered) / width),
    )


def layout(codes: Sequence[str]) -> Layout:
    """The tile grid of exactly ``codes`` (each once); ``ValueError`` names a code that
    is not an upper-tier authority in the reference data."""
    authorities = local_authorities()
    chosen: dict[str, LocalAuthority] = {}
    for code in codes:
        authority = authorities.get(code)
        if authority is None:
            raise ValueError(f"{code!r} is not an upper-tier local authority's GSS code")
        chosen[code] = authority
    names = {region.code: region.name for region in regions().values()}
    by_region: dict[str, list[LocalAuthority]] = {}
    for authority in chosen.values():
        by_region.setdefault(authority.region.code, []).append(authority)
    blocks = {
        code: _block(names[code], code, members) for code, members in by_region.items() if members
    }
    # Where each block starts, and where the next block beside or below it may start: an
    # absent block takes no room but still passes its neighbours' edges on.
    col: dict[str, int] = {}
    row: dict[str, int] = {}
    right: dict[str, int] = {}
    below: dict[str, int] = {}
    for code in _PLACING_ORDER:
        col[code] = max((right[left] for left in _LEFT_OF.get(code, ())), default=0)
        row[code] = max((below[up] for up in _ABOVE.get(code, ())), default=0)
        block = blocks.get(code)
        right[code] = col[code] + (block.cols + GAP if block else 0)
        below[code] = row[code] + (block.rows + GAP if block else 0)
    tiles: list[Tile] = []
    labels: list[RegionLabel] = []
    for code, region_name in names.items():
        block = blocks.get(code)
        if block is None:
            continue
        labels.append(RegionLabel(region=region_name, col=col[code], row=row[code]))
        for index, authority in enumerate(block.members):
            tiles.append(
                Tile(
                    code=authority.code,
                    name=authority.name,
                    region=region_name,
                    col=col[code] + index % block.width,
                    row=row[code] + 1 + index // block.width,
                )
            )
    return Layout(
        tiles=tuple(tiles),
        labels=tuple(labels),
        cols=max((col[c] + b.cols for c, b in blocks.items()), default=0),
        rows=max((row[c] + b.rows for c, b in blocks.items()), default=0),
    )
