"""Analysts' scopes and credentials: the reader service's pure decisions, and the registry."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.audit import AnalystScope
from schemas.errors import ConfigurationError, SchemaError
from schemas.events import Theme
from schemas.reference import local_authorities, regions
from schemas.signed import OpenedSigned as Opened
from services.reader.analysts import (
    TOKEN_PREFIX,
    Analyst,
    AnalystError,
    Registry,
    RegistryFile,
    new_token,
    token_sha256,
)
from services.reader.scope import (
    OUT_OF_SCOPE,
    admits,
    area_in_scope,
    make_scope,
    parse_areas,
    parse_regions,
    parse_themes,
    refusal,
    select,
    split_values,
)
from services.settings import Settings
from tests.factories import NOW, concern, key_for

LEEDS, KENT, BRADFORD = "E08000035", "E10000016", "E08000032"
YORKSHIRE = "Yorkshire and The Humber"
TRUSTED = key_for("ofsted").trusted(valid_from=NOW - dt.timedelta(days=1))


def opened(area: str, theme: str = "neglect") -> Opened:
    """A verified event about ``area`` (signature checks are envelope tests' business)."""
    return Opened(event=concern(area=area, theme=theme), payload=b"", key=TRUSTED, judged_at=NOW)


YORKSHIRE_NEGLECT = AnalystScope(regions=(YORKSHIRE,), themes=(Theme.NEGLECT,))

# -- resolving what an operator types -------------------------------------------------------


def test_areas_by_code_or_name_any_case_sorted_once() -> None:
    assert parse_areas(["Leeds", "e10000016", " kent ", LEEDS]) == (LEEDS, KENT)


def test_a_name_stands_for_every_code_it_carried() -> None:
    # North Yorkshire: the county until 31 March 2023, the unitary since.
    assert parse_areas(["North Yorkshire"]) == ("E06000065", "E10000023")


@pytest.mark.parametrize(
    ("given_value", "nearest"),
    [("Leedz", "Leeds"), ("E0800035", "E08000035"), ("Yorkshire", "North Yorkshire")],
)
def test_an_unknown_area_is_named_with_the_nearest_valid_ones(
    given_value: str, nearest: str
) -> None:
    with pytest.raises(SchemaError) as refused:
        parse_areas([given_value])
    message = str(refused.value)
    assert message.startswith(f"{given_value!r} is not an upper-tier local authority")
    assert f"nearest: {nearest}" in message


def test_an_unknown_value_is_shown_short_and_printable() -> None:
    with pytest.raises(SchemaError) as refused:
        parse_areas(["\x1b[31m" + "x" * 200])
    message = str(refused.value)
    assert "\x1b" not in message
    assert "x" * 41 not in message


def test_regions_by_name_any_case_or_code() -> None:
    assert parse_regions(["yorkshire and the humber", "E12000007", YORKSHIRE]) == (
        YORKSHIRE,
        "London",
    )
    with pytest.raises(SchemaError, match=r"'Yorkshire' is not an English region; nearest: "):
        parse_regions(["Yorkshire"])


def test_themes_by_wire_value_or_words() -> None:
    assert parse_themes(["Domestic abuse", "neglect", "missing-children"]) == (
        Theme.DOMESTIC_ABUSE,
        Theme.MISSING_CHILDREN,
        Theme.NEGLECT,
    )
    with pytest.raises(SchemaError, match=r"'neglet' is not a theme; nearest: neglect"):
        parse_themes(["neglet"])


def test_comma_separated_values_keep_a_name_that_holds_a_comma() -> None:
    known = [la.name for la in local_authorities().values()]
    assert split_values(["Leeds,Kingston upon Hull, City of,Kent", "Bradford"], known) == [
        "Leeds",
        "Kingston upon Hull, City of",
        "Kent",
        "Bradford",
    ]
    assert split_values(["neglect, ,domestic_abuse"]) == ["neglect", "domestic_abuse"]


def test_no_theme_given_means_every_theme_written_out() -> None:
    scope = make_scope([], [YORKSHIRE], [])
    assert scope == AnalystScope(regions=(YORKSHIRE,), themes=tuple(Theme))


def test_a_scope_with_no_area_and_no_region_is_refused() -> None:
    with pytest.raises(SchemaError, match="at least one area or region"):
        make_scope([], [], ["neglect"])


# -- decisions -----------------------------------------------------------------------------


def test_yorkshire_scope_admits_leeds_and_refuses_kent() -> None:
    assert area_in_scope(YORKSHIRE_NEGLECT, LEEDS)
    assert admits(YORKSHIRE_NEGLECT, opened(LEEDS))
    assert not admits(YORKSHIRE_NEGLECT, opened(KENT))
    assert not admits(YORKSHIRE_NEGLECT, opened(LEEDS, theme="domestic_abuse"))
    assert refusal(YORKSHIRE_NEGLECT, LEEDS, "neglect") is None
    assert refusal(YORKSHIRE_NEGLECT, None, None) is None
    kent = refusal(YORKSHIRE_NEGLECT, KENT, None)
    assert kent is not None
    assert kent.reason == OUT_OF_SCOPE
    assert kent.detail.startswith("area E10000016 (Kent, South East) is outside your scope")
    assert "regions: Yorkshire and The Humber" in kent.detail
    theme = refusal(YORKSHIRE_NEGLECT, LEEDS, "domestic_abuse")
    assert theme is not None
    assert theme.detail.startswith("theme domestic_abuse is outside your scope")


def test_an_area_listed_by_itself_is_in_scope_outside_its_region() -> None:
    scope = AnalystScope(areas=(KENT,), regions=(YORKSHIRE,), themes=tuple(Theme))
    assert [where for where, _ in select(scope, [(1, opened(KENT)), (2, opened(LEEDS))])] == [
        1,
        2,
    ]
    assert select(scope, [(3, opened("E08000025"))]) == []  # Birmingham: West Midlands


LIVE_AREAS = sorted(code for code, la in local_authorities().items() if la.terminated_on is None)
REGION_NAMES = [region.name for region in regions().values()]

scopes = st.builds(
    AnalystScope,
    areas=st.lists(st.sampled_from(LIVE_AREAS), max_size=5, unique=True).map(tuple),
    regions=st.lists(st.sampled_from(REGION_NAMES), max_size=3, unique=True).map(tuple),
    themes=st.lists(st.sampled_from(list(Theme)), max_size=5, unique=True).map(tuple),
)
events = st.lists(
    st.tuples(st.sampled_from(LIVE_AREAS), st.sampled_from([t.value for t in Theme])),
    max_size=12,
)


def in_scope_oracle(scope: AnalystScope, area: str, theme: str) -> bool:
    """Need-to-know, written out plainly from the reference data."""
    region = local_authorities()[area].region.name
    return (area in scope.areas or region in scope.regions) and theme in scope.themes


@settings(max_examples=200, deadline=None)
@given(scope=scopes, found=events)
def test_select_never_returns_an_event_outside_the_scope(
    scope: AnalystScope, found: list[tuple[str, str]]
) -> None:
    items = [(i, opened(area, theme)) for i, (area, theme) in enumerate(found)]
    chosen = select(scope, items)
    expected = [i for i, (area, theme) in enumerate(found) if in_scope_oracle(scope, area, theme)]
    assert [i for i, _ in chosen] == expected


@settings(max_examples=200, deadline=None)
@given(
    scope=scopes,
    area=st.none() | st.sampled_from(LIVE_AREAS),
    theme=st.none() | st.sampled_from([t.value for t in Theme]),
)
def test_a_request_is_refused_exactly_when_its_area_or_theme_is_outside_the_scope(
    scope: AnalystScope, area: str | None, theme: str | None
) -> None:
    region_ok = area is None or (
        area in scope.areas or local_authorities()[area].region.name in scope.regions
    )
    theme_ok = theme is None or theme in scope.themes
    refused = refusal(scope, area, theme)
    assert (refused is None) == (region_ok and theme_ok)
    if refused is not None:
        assert refused.reason == OUT_OF_SCOPE


# -- credentials and the registry -------------------------------------------------------------


def test_token_hash_is_sha256_of_the_utf8_bytes() -> None:
    # FIPS 180-2, appendix B.1: SHA-256("abc").
    assert token_sha256("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_new_tokens_are_prefixed_random_and_urlsafe() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert token.startswith(TOKEN_PREFIX)
        assert len(token) == len(TOKEN_PREFIX) + 43  # 32 bytes, base64 without padding
        assert token[len(TOKEN_PREFIX) :].replace("-", "").replace("_", "").isalnum()


def entry(name: str, token: str, scope: AnalystScope = YORKSHIRE_NEGLECT) -> Analyst:
    return Analyst(
        name=name, scope=scope, credential_sha256=token_sha256(token), added_at=NOW,
        added_by="operator:test",
    )  # fmt: skip


def test_authenticate_finds_the_active_analyst_and_no_one_else() -> None:
    khan, jones = new_token(), new_token()
    registry = Registry().with_added(entry("a.khan", khan)).with_added(entry("b.jones", jones))
    assert registry.authenticate(khan) == registry.get("a.khan")
    assert registry.authenticate(jones) == registry.get("b.jones")
    for other in ("", new_token(), khan + "x", khan[:-1], token_sha256(khan), "x" * 10_000):
        assert registry.authenticate(other) is None
    revoked = registry.with_revoked("a.khan", "left the team", NOW, "operator:test")
    assert revoked.authenticate(khan) is None
    assert revoked.authenticate(jones) == registry.get("b.jones")


def test_registry_changes_an_operator_cannot_make() -> None:
    registry = Registry().with_added(entry("a.khan", new_token()))
    with pytest.raises(AnalystError, match="already has a credential: revoke it first"):
        registry.with_added(entry("a.khan", new_token()))
    with pytest.raises(AnalystError, match=r"no analyst b\.jones"):
        registry.with_revoked("b.jones", "why", NOW, "operator:test")
    revoked = registry.with_revoked("a.khan", "why", NOW, "operator:test")
    with pytest.raises(AnalystError, match="already revoked"):
        revoked.with_revoked("a.khan", "why", NOW, "operator:test")
    # A revoked analyst may be issued a new credential, which replaces the old entry.
    token = new_token()
    again = revoked.with_added(entry("a.khan", token))
    assert [a.name for a in again.analysts] == ["a.khan"]
    assert again.authenticate(token) is not None


def test_registry_file_is_private_and_round_trips(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", topic_prefix="t.")
    file = RegistryFile(settings)
    assert file.load() == Registry()
    registry = Registry().with_added(entry("a.khan", new_token()))
    with file.locked():
        file.save(registry)
    file.save(registry)  # again: replaces atomically
    assert file.load() == registry
    assert file.path == tmp_path / "home" / "analysts" / "prefix-t." / "registry.json"
    assert stat.S_IMODE(file.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.root.stat().st_mode) == 0o700
    assert "lsn_" not in file.path.read_text()
    file.path.write_text('{"analysts": "nope"}')
    with pytest.raises(ConfigurationError, match="is not an analysts' registry"):
        file.load()
