"""The fault schedule: replayable from its seed, within its bounds, printable and parseable."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.chaos.schedule import (
    Bounds,
    Fault,
    Kind,
    Role,
    Schedule,
    ScheduleError,
    Target,
    parse_schedule,
    plan,
)

REQUIRED = (
    (Kind.KILL9, Role.ROUTER),
    (Kind.STOP_CONT, Role.ROUTER),
    (Kind.KILL9, Role.AUDIT),
    (Kind.ADD_REMOVE, Role.ROUTER),
)


def test_a_known_seed_gives_a_known_schedule() -> None:
    bounds = Bounds(
        routers=2,
        roles=frozenset({Role.ROUTER, Role.AUDIT}),
        min_faults=4,
        max_faults=4,
        required=REQUIRED,
        lead_in_ms=5_000,
        quiet_tail_ms=5_000,
        min_pause_ms=2_000,
        max_pause_ms=6_000,
        min_lifetime_ms=12_000,
        max_lifetime_ms=15_000,
    )
    assert plan(13, 80.0, bounds).format() == (
        "# liaison chaos schedule: seed=13 duration=80.000 routers=2 brokers=0\n"
        "8.777 stop_cont router:0 4.670\n"
        "26.189 kill9 router:0 5.560\n"
        "40.290 add_remove router:2 12.533\n"
        "61.004 kill9 audit:0 4.176\n"
    )


def test_the_text_form_reads_back() -> None:
    text = (
        "# liaison chaos schedule: seed=7 duration=600.000 routers=3 brokers=3\n"
        "\n"
        "12.5 kill9 broker:2 3\n"
        "# a note\n"
        "40.000 add_remove router:3 20.250\n"
    )
    assert parse_schedule(text) == Schedule(
        seed=7,
        duration_ms=600_000,
        routers=3,
        brokers=3,
        faults=(
            Fault(12_500, Kind.KILL9, Target(Role.BROKER, 2), 3_000),
            Fault(40_000, Kind.ADD_REMOVE, Target(Role.ROUTER, 3), 20_250),
        ),
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("1.0 kill9 router:0 1.0\n", "starts with"),
        ("# liaison chaos schedule: seed=1\n", "header"),
        (
            "# liaison chaos schedule: seed=1 duration=9 routers=1 brokers=0\n1 boom router:0 1",
            "kind",
        ),
        (
            "# liaison chaos schedule: seed=1 duration=9 routers=1 brokers=0\n1 kill9 db:0 1",
            "target",
        ),
        (
            "# liaison chaos schedule: seed=1 duration=9 routers=1 brokers=0\n1 kill9 router 1",
            "role:index",
        ),
        (
            "# liaison chaos schedule: seed=1 duration=9 routers=1 brokers=0\nx kill9 router:0 1",
            "seconds",
        ),
        (
            "# liaison chaos schedule: seed=1 duration=9 routers=1 brokers=0\n1 kill9 router:0",
            "line 2",
        ),
    ],
)
def test_a_bad_schedule_text_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ScheduleError, match=says):
        parse_schedule(text)


def test_bounds_no_schedule_can_meet_are_refused() -> None:
    with pytest.raises(ScheduleError, match="do not fit"):
        plan(1, 20.0, Bounds(min_faults=5))
    with pytest.raises(ScheduleError, match="do not allow"):
        plan(1, 600.0, Bounds(brokers=0, required=((Kind.KILL9, Role.BROKER),)))
    with pytest.raises(ScheduleError, match="more required"):
        plan(1, 600.0, Bounds(max_faults=1, required=REQUIRED))


bounds_strategy = st.builds(
    Bounds,
    routers=st.integers(1, 3),
    brokers=st.integers(0, 3),
    min_faults=st.integers(0, 3),
    max_faults=st.integers(4, 12),
    kinds=st.frozensets(st.sampled_from(Kind), min_size=1),
    roles=st.frozensets(st.sampled_from(Role), min_size=1),
    min_pause_ms=st.integers(500, 3_000),
    max_pause_ms=st.integers(3_000, 20_000),
    min_lifetime_ms=st.integers(1_000, 10_000),
)


@given(seed=st.integers(0, 2**32), duration_s=st.integers(60, 1200), bounds=bounds_strategy)
def test_same_seed_same_schedule_within_bounds_and_round_trips(
    seed: int, duration_s: int, bounds: Bounds
) -> None:
    try:
        schedule = plan(seed, duration_s, bounds)
    except ScheduleError:
        return  # bounds that cannot be met are refused, never half-met
    assert plan(seed, duration_s, bounds) == schedule
    assert parse_schedule(schedule.format()) == schedule
    faults = schedule.faults
    assert max(bounds.min_faults, len(bounds.required)) <= len(faults) <= bounds.max_faults
    end = duration_s * 1000 - bounds.quiet_tail_ms
    for fault in faults:
        assert (fault.kind, fault.target.role) in bounds.combos
        assert bounds.lead_in_ms <= fault.at_ms
        assert fault.end_ms <= end
        if fault.kind is Kind.ADD_REMOVE:
            assert fault.target == Target(Role.ROUTER, bounds.routers)
            assert fault.pause_ms <= bounds.max_lifetime_ms
        else:
            assert bounds.min_pause_ms <= fault.pause_ms <= bounds.max_pause_ms
            limit = {Role.BROKER: bounds.brokers, Role.ROUTER: bounds.routers, Role.AUDIT: 1}
            assert 0 <= fault.target.index < limit[fault.target.role]
    for earlier, later in itertools.pairwise(faults):
        assert earlier.end_ms + bounds.gap_ms <= later.at_ms  # one fault at a time


@given(seed=st.integers(0, 2**32))
def test_required_faults_always_occur(seed: int) -> None:
    bounds = Bounds(brokers=3, required=((Kind.KILL9, Role.BROKER), *REQUIRED), max_faults=10)
    schedule = plan(seed, 600.0, bounds)
    present = {(f.kind, f.target.role) for f in schedule.faults}
    assert {(Kind.KILL9, Role.BROKER), *REQUIRED} <= present
