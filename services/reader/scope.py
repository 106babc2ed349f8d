"""What an analyst may read (need-to-know), and the reader service's pure decisions.

A scope (``schemas.audit.AnalystScope``) names areas (GSS codes), regions (their names in
the reference data) and themes. An event is inside it when its area is one of the areas
or lies in one of the regions, *and* its theme is one of the themes. Empty means none:
an operator who names no theme gets every theme written out (``make_scope``), so what an
analyst may see is always explicit in the registry and in the ``analyst.added`` record.

Invariants, pinned by hypothesis in ``tests/unit/test_reader_scope.py``:

- ``select`` never returns an event outside the scope, whatever the request;
- ``refusal`` refuses every request whose area or theme is outside the scope, so an
  analyst is told no rather than handed an empty answer that hides the rule.

Nothing here reads a file, the clock or the network.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from schemas.audit import AnalystScope
from schemas.errors import SchemaError
from schemas.events import Theme
from schemas.reference import local_authorities, regions
from schemas.signed import OpenedSigned

__all__ = [
    "OUT_OF_SCOPE",
    "Refusal",
    "admits",
    "area_in_scope",
    "describe",
    "make_scope",
    "parse_areas",
    "parse_regions",
    "parse_themes",
    "refusal",
    "select",
    "split_values",
]

OUT_OF_SCOPE: Final = "out_of_scope"
"""The ``feed.refused`` reason code of a read outside the analyst's scope."""

_SHOWN_CHARS: Final = 40
_SUGGESTIONS: Final = 3

T = TypeVar("T")


# -- what an operator types ----------------------------------------------------------------


def _shown(value: str) -> str:
    """``value`` as an error message may show it: printable, and short."""
    text = "".join(c if unicodedata.category(c)[0] not in "CZ" or c == " " else "?" for c in value)
    text = text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
    return repr(text)


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def _area_names() -> dict[str, tuple[str, ...]]:
    """Every authority name (folded) and the GSS codes that carried it, oldest first."""
    names: dict[str, list[str]] = {}
    for code, authority in sorted(local_authorities().items()):
        names.setdefault(_fold(authority.name), []).append(code)
    return {name: tuple(codes) for name, codes in names.items()}


def split_values(values: Iterable[str], known: Iterable[str] = ()) -> list[str]:
    """Comma-separated values, each option value split, a known name kept whole.

    Some authorities' names hold a comma ("Kingston upon Hull, City of"): where pieces
    joined again with ", " make a name in ``known`` (compared case-insensitively), they
    stay one value. Blank pieces are dropped. Linear in the number of pieces: a join is
    tried only as long as the longest known name (in pieces).
    """
    whole = {_fold(name) for name in known}
    longest = max((name.count(",") + 1 for name in whole), default=1)
    found: list[str] = []
    for value in values:
        pieces = [piece.strip() for piece in value.split(",")]
        start = 0
        while start < len(pieces):
            end = next(
                (
                    stop
                    for stop in range(min(len(pieces), start + longest), start + 1, -1)
                    if _fold(", ".join(pieces[start:stop])) in whole
                ),
                start + 1,
            )
            joined = ", ".join(pieces[start:end])
            if joined:
                found.append(joined)
            start = end
    return found


def _unknown(what: str, value: str, candidates: Sequence[str], example: str) -> SchemaError:
    folded = {_fold(candidate): candidate for candidate in candidates}
    key = _fold(value)
    containing = [candidate for candidate in folded if key and key in candidate]
    close = difflib.get_close_matches(key, list(folded), n=_SUGGESTIONS, cutoff=0.6)
    near = list(dict.fromkeys([*close, *containing]))[:_SUGGESTIONS]
    hint = f"; nearest: {', '.join(folded[n] for n in near)}" if near else f" (e.g. {example})"
    return SchemaError(f"{_shown(value)} is not {what}{hint}")


def parse_areas(values: Iterable[str]) -> tuple[str, ...]:
    """GSS codes of upper-tier local authorities, from codes or names, sorted, once each.

    A name stands for every code it has carried (North Yorkshire: the county until 2023,
    the unitary since). ``SchemaError`` names the first unknown value and the nearest
    valid ones.
    """
    authorities = local_authorities()
    names = _area_names()
    codes: set[str] = set()
    for value in values:
        text = value.strip()
        if text.upper() in authorities:
            codes.add(text.upper())
        elif _fold(text) in names:
            codes.update(names[_fold(text)])
        else:
            raise _unknown(
                "an upper-tier local authority (a GSS code or a name)",
                text,
                [*sorted({la.name for la in authorities.values()}), *sorted(authorities)],
                "E08000035 or Leeds",
            )
    return tuple(sorted(codes))


def parse_regions(values: Iterable[str]) -> tuple[str, ...]:
    """English regions' names as the reference data spells them, from names (any case) or
    GSS codes (E12...), in the reference data's order, once each."""
    by_key = {}
    for code, region in regions().items():
        by_key[code.casefold()] = region.name
        by_key[_fold(region.name)] = region.name
    order = [region.name for region in regions().values()]
    chosen: set[str] = set()
    for value in values:
        name = by_key.get(_fold(value))
        if name is None:
            raise _unknown("an English region", value, order, "Yorkshire and The Humber")
        chosen.add(name)
    return tuple(name for name in order if name in chosen)


def parse_themes(values: Iterable[str]) -> tuple[Theme, ...]:
    """Themes by their wire values (``neglect``; spaces or dashes for underscores), in the
    contract's order, once each."""
    known = {theme.value: theme for theme in Theme}
    chosen: set[Theme] = set()
    for value in values:
        key = "_".join(value.strip().casefold().replace("-", " ").split())
        if key not in known:
            raise _unknown("a theme", value, list(known), "neglect")
        chosen.add(known[key])
    return tuple(theme for theme in Theme if theme in chosen)


def make_scope(
    areas: Iterable[str], region_names: Iterable[str], themes: Iterable[str]
) -> AnalystScope:
    """The scope an operator typed; no theme given means every theme, written out.

    ``SchemaError`` for an unknown value, or for a scope with no area and no region (an
    analyst who could read nothing).
    """
    scope = AnalystScope(
        areas=parse_areas(areas),
        regions=parse_regions(region_names),
        themes=parse_themes(themes) or tuple(Theme),
    )
    if not scope.areas and not scope.regions:
        raise SchemaError("a scope needs at least one area or region (--areas, --regions)")
    return scope


def describe(scope: AnalystScope) -> str:
    """The scope in one line, for messages and tables."""
    areas = ", ".join(scope.areas) or "none"
    names = ", ".join(scope.regions) or "none"
    themes = "all" if set(scope.themes) == set(Theme) else ", ".join(scope.themes) or "none"
    return f"areas: {areas}; regions: {names}; themes: {themes}"


# -- the reader service's decisions --------------------------------------------------------


def area_in_scope(scope: AnalystScope, area: str) -> bool:
    """Whether events about ``area`` (a GSS code) are inside the scope."""
    if area in scope.areas:
        return True
    authority = local_authorities().get(area)
    return authority is not None and authority.region.name in scope.regions


def admits(scope: AnalystScope, opened: OpenedSigned) -> bool:
    """Whether a verified event is inside the scope (its signed content decides)."""
    event = opened.event
    return getattr(event, "theme", None) in scope.themes and area_in_scope(scope, event.area)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: a stable ``reason`` code and a sentence naming the rule
    (only values already checked against the reference data, never free text)."""

    reason: str
    detail: str


def refusal(scope: AnalystScope, area: str | None, theme: str | None) -> Refusal | None:
    """``Refusal`` when the request names an area or theme outside the scope; else None.

    ``area`` and ``theme`` must already be valid (``services.inputs.check_filters``).
    """
    if area is not None and not area_in_scope(scope, area):
        authority = local_authorities().get(area)
        label = f"{area} ({authority.name}, {authority.region.name})" if authority else area
        return Refusal(
            OUT_OF_SCOPE,
            f"area {label} is outside your scope: you may read the areas listed and the"
            f" areas in the regions listed ({describe(scope)})",
        )
    if theme is not None and theme not in scope.themes:
        return Refusal(
            OUT_OF_SCOPE,
            f"theme {theme} is outside your scope: you may read only the themes listed"
            f" ({describe(scope)})",
        )
    return None


def select(
    scope: AnalystScope, found: Iterable[tuple[T, OpenedSigned]]
) -> list[tuple[T, OpenedSigned]]:
    """The verified events of ``found`` (each with where it was read) inside the scope."""
    return [(where, opened) for where, opened in found if admits(scope, opened)]
