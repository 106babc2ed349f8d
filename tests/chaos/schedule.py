"""A seeded schedule of faults, bounded in count and time (pure: no I/O, no clock).

``plan(seed, duration_s, bounds)`` draws the faults from ``random.Random(seed)`` alone,
so the same seed and bounds give the same schedule on any machine. Each fault is one
line, ``<at> <kind> <target> <pause>`` (seconds from the start of the run, three
decimals), and ``Schedule.format`` / ``parse_schedule`` round-trip exactly, so a failing
run's printed schedule can be replayed as it was (``--schedule FILE``) or regenerated
(``--seed N`` with the same bounds).

Kinds
-----
``kill9``      SIGKILL the target; it is started again ``pause`` seconds later.
``stop_cont``  SIGSTOP the target; SIGCONT ``pause`` seconds later (a frozen process:
               a long GC pause, a VM stall; its sessions and transactions time out).
``add_remove`` start one more router (``router:<routers>``, a name no other router
               has); stop it with SIGTERM ``pause`` seconds later (scale out, then in);
               its pause is drawn from the lifetime bounds, not the pause bounds.

Targets are ``broker:<i>`` (a node of the cluster, only when ``bounds.brokers`` > 0),
``router:<j>`` and ``audit:0``.

Invariants (pinned by ``tests/unit/test_chaos_schedule.py``)
------------------------------------------------------------
* Faults never overlap: each ends (``at + pause``) before the next begins, so at most
  one broker (indeed one process) is faulty at any time, and each recovers before the
  next fault.
* Every fault lies in ``[lead_in, duration - quiet_tail]``: the system starts cleanly
  and has a quiet tail to drain in before the checker reads.
* ``min_faults <= len(faults) <= max_faults``; every ``required`` (kind, role) occurs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Final

__all__ = [
    "Bounds",
    "Fault",
    "Kind",
    "Role",
    "Schedule",
    "ScheduleError",
    "Target",
    "parse_schedule",
    "plan",
]


class ScheduleError(ValueError):
    """Bounds no schedule can meet, or a schedule text that cannot be read."""


class Kind(StrEnum):
    """What a fault does to its target."""

    KILL9 = "kill9"
    STOP_CONT = "stop_cont"
    ADD_REMOVE = "add_remove"


class Role(StrEnum):
    """What kind of process a fault targets."""

    BROKER = "broker"
    ROUTER = "router"
    AUDIT = "audit"


@dataclass(frozen=True, slots=True, order=True)
class Target:
    """One process: ``broker:1``, ``router:0``, ``audit:0``."""

    role: Role
    index: int

    def __str__(self) -> str:
        return f"{self.role.value}:{self.index}"


@dataclass(frozen=True, slots=True)
class Fault:
    """At ``at_ms`` from the start, do ``kind`` to ``target`` for ``pause_ms``."""

    at_ms: int
    kind: Kind
    target: Target
    pause_ms: int

    @property
    def end_ms(self) -> int:
        """When the target is back (restarted, continued, or the added router removed)."""
        return self.at_ms + self.pause_ms

    def __str__(self) -> str:
        return f"{_seconds(self.at_ms)} {self.kind.value} {self.target} {_seconds(self.pause_ms)}"


_HEADER: Final = "# liaison chaos schedule:"


@dataclass(frozen=True, slots=True)
class Schedule:
    """The faults of one run, with what is needed to replay it."""

    seed: int
    duration_ms: int
    routers: int
    brokers: int
    faults: tuple[Fault, ...]

    def format(self) -> str:
        """The schedule as text: a header line, then one fault per line."""
        head = (
            f"{_HEADER} seed={self.seed} duration={_seconds(self.duration_ms)}"
            f" routers={self.routers} brokers={self.brokers}"
        )
        return "\n".join([head, *(str(f) for f in self.faults)]) + "\n"


def _seconds(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


def _ms(text: str, what: str) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ScheduleError(f"{what} must be seconds (e.g. 12.5), not {text!r}") from None
    if not value.is_finite() or value < 0:
        raise ScheduleError(f"{what} must be a non-negative number of seconds, not {text!r}")
    return int(value * 1000)


def _target(text: str) -> Target:
    role, sep, index = text.partition(":")
    try:
        return Target(Role(role), int(index))
    except ValueError:
        pass
    if not sep:
        raise ScheduleError(f"a target is role:index (e.g. router:1), not {text!r}")
    raise ScheduleError(f"unknown target {text!r} (broker:<i>, router:<j> or audit:0)")


def parse_schedule(text: str) -> Schedule:
    """Read a schedule printed by ``Schedule.format`` (blank lines and ``#`` notes after
    the header are ignored)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith(_HEADER):
        raise ScheduleError(f"a schedule starts with a line {_HEADER!r} ...")
    fields: dict[str, str] = {}
    for item in lines[0][len(_HEADER) :].split():
        name, _, value = item.partition("=")
        fields[name] = value
    try:
        seed, routers, brokers = int(fields["seed"]), int(fields["routers"]), int(fields["brokers"])
        duration = _ms(fields["duration"], "duration")
    except (KeyError, ValueError) as exc:
        raise ScheduleError(f"the schedule's header is incomplete or wrong: {exc}") from None
    faults = []
    for number, line in enumerate(lines[1:], start=2):
        if line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 4:  # at, kind, target, pause
            raise ScheduleError(f"line {number}: expected '<at> <kind> <target> <pause>'")
        at, kind, target, pause = parts
        try:
            what = Kind(kind)
        except ValueError:
            raise ScheduleError(f"line {number}: unknown fault kind {kind!r}") from None
        faults.append(Fault(_ms(at, "at"), what, _target(target), _ms(pause, "pause")))
    return Schedule(seed, duration, routers, brokers, tuple(faults))


_ALL_KINDS: Final = frozenset(Kind)
_ALL_ROLES: Final = frozenset(Role)


@dataclass(frozen=True, slots=True)
class Bounds:
    """What a schedule may contain: how many faults, of which kinds, on what, how long."""

    routers: int = 2
    """Routers running throughout (``router:0`` ..); an added router is the next index."""
    brokers: int = 0
    """Broker nodes that may be faulted (0: a single broker, never faulted)."""
    min_faults: int = 1
    max_faults: int = 8
    kinds: frozenset[Kind] = _ALL_KINDS
    roles: frozenset[Role] = _ALL_ROLES
    required: tuple[tuple[Kind, Role], ...] = ()
    """(kind, role) pairs that must each occur at least once."""
    lead_in_ms: int = 10_000
    quiet_tail_ms: int = 15_000
    min_pause_ms: int = 1_000
    max_pause_ms: int = 10_000
    gap_ms: int = 2_000
    """Time between one fault's end and the next one's start, at the least."""
    min_lifetime_ms: int = 15_000
    max_lifetime_ms: int = 60_000
    """How long a router added by ``add_remove`` runs (it needs time to join and work)."""
    combos: tuple[tuple[Kind, Role], ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        combos = [
            (kind, role)
            for kind in (Kind.KILL9, Kind.STOP_CONT, Kind.ADD_REMOVE)
            for role in (Role.BROKER, Role.ROUTER, Role.AUDIT)
            if kind in self.kinds
            and role in self.roles
            and (kind is not Kind.ADD_REMOVE or role is Role.ROUTER)
            and (role is not Role.BROKER or self.brokers > 0)
            and (role is not Role.ROUTER or self.routers > 0 or kind is Kind.ADD_REMOVE)
        ]
        object.__setattr__(self, "combos", tuple(combos))


def _check(bounds: Bounds, duration_ms: int) -> int:
    """The span faults are placed in; ``ScheduleError`` when no schedule fits."""
    if bounds.routers < 0 or bounds.brokers < 0:
        raise ScheduleError("routers and brokers cannot be negative")
    if not 0 <= bounds.min_faults <= bounds.max_faults:
        raise ScheduleError("need 0 <= min_faults <= max_faults")
    if not 0 < bounds.min_pause_ms <= bounds.max_pause_ms:
        raise ScheduleError("need 0 < min_pause <= max_pause")
    if not 0 < bounds.min_lifetime_ms <= bounds.max_lifetime_ms:
        raise ScheduleError("need 0 < min_lifetime <= max_lifetime")
    missing = [f"{k.value} {r.value}" for k, r in bounds.required if (k, r) not in bounds.combos]
    if missing:
        raise ScheduleError(f"required faults the bounds do not allow: {', '.join(missing)}")
    if bounds.max_faults and not bounds.combos:
        raise ScheduleError("the bounds allow no kind of fault on any target")
    if len(bounds.required) > bounds.max_faults:
        raise ScheduleError("more required faults than max_faults")
    span = duration_ms - bounds.lead_in_ms - bounds.quiet_tail_ms
    least = max(bounds.min_faults, len(bounds.required))
    if least and span < least * _slot_needed(bounds):
        msg = (
            f"{least} fault(s) of {_slot_needed(bounds)} ms each (pause and gap) do not fit"
            f" in {_seconds(max(span, 0))} s (duration less lead-in and quiet tail)"
        )
        raise ScheduleError(msg)
    return span


def _slot_needed(bounds: Bounds) -> int:
    """The least slot any fault the bounds allow fits in (its least pause and the gap)."""
    adds = any(kind is Kind.ADD_REMOVE for kind, _ in bounds.combos)
    least = max(bounds.min_pause_ms, bounds.min_lifetime_ms if adds else 0)
    return least + bounds.gap_ms


def plan(seed: int, duration_s: float, bounds: Bounds) -> Schedule:
    """The schedule for ``seed``: a function of ``seed``, ``duration_s`` and ``bounds`` only."""
    duration_ms = round(duration_s * 1000)
    span = _check(bounds, duration_ms)
    rng = random.Random(seed)  # noqa: S311 - a replayable schedule, not security
    least = max(bounds.min_faults, len(bounds.required))
    # As many as fit, at most max_faults: each slot holds a least pause and a gap.
    fit = span // _slot_needed(bounds) if span > 0 else 0
    count = rng.randint(least, max(least, min(bounds.max_faults, fit)))
    picks = list(bounds.required)
    picks += [rng.choice(bounds.combos) for _ in range(count - len(picks))]
    rng.shuffle(picks)
    faults = []
    slot = span // count if count else 0
    for i, (kind, role) in enumerate(picks):
        start = bounds.lead_in_ms + i * slot
        room = slot - bounds.gap_ms
        low, high = (
            (bounds.min_lifetime_ms, bounds.max_lifetime_ms)
            if kind is Kind.ADD_REMOVE
            else (bounds.min_pause_ms, bounds.max_pause_ms)
        )
        pause = rng.randint(low, max(low, min(high, room)))
        at = start + rng.randint(0, max(0, room - pause))
        faults.append(Fault(at, kind, _pick_target(rng, kind, role, bounds), pause))
    return Schedule(seed, duration_ms, bounds.routers, bounds.brokers, tuple(faults))


def _pick_target(rng: random.Random, kind: Kind, role: Role, bounds: Bounds) -> Target:
    if kind is Kind.ADD_REMOVE:
        return Target(Role.ROUTER, bounds.routers)
    if role is Role.BROKER:
        return Target(role, rng.randrange(bounds.brokers))
    if role is Role.ROUTER:
        return Target(role, rng.randrange(bounds.routers))
    return Target(Role.AUDIT, 0)
