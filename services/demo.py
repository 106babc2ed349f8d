"""The quick-start scenario: every inspectorate publishes, the router delivers, a table shows it.

The demo runs a router of its own, as router instance ``demo``: its own Kafka
transactional id (and static group membership), so it never fences a router that is
already serving (``liaison serve router``, instance ``0`` or whatever it is named) nor is
fenced by one. It joins the one router consumer group, as a second router would: with
a group of its own it would route every event a serving router also routes, twice.
A demo killed half-way is fenced, and its open transaction aborted, by the next demo.

The demo publishes as every inspectorate through ``producers.publisher.Publisher``, the
path ``liaison publish`` takes: each event with its ``event.published`` audit record,
signed by its inspectorate's key, in one Kafka transaction.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from consumers.routing import route
from consumers.rules import RuleSet
from producers.publisher import Publisher
from schemas.envelope import open_consideration, open_envelope
from schemas.errors import BrokerError, EnvelopeError
from schemas.events import (
    ConcernRaised,
    ExceptionalPracticeIdentified,
    Finding,
    InspectorateEvent,
    JtaiRequest,
    Theme,
)
from schemas.inspectorates import Agency, Inspectorate, Programme
from schemas.jtai import JTAI_CONSIDERATION_REQUESTED
from schemas.keys import BUS, SigningKey, TrustStore
from schemas.records import HEADER_EVENT_ID, HEADER_TYPE, InboundRecord, header_map
from schemas.reference import local_authorities
from services.kafka import (
    Position,
    apply_topics,
    end_offsets,
    group_members,
    read_from,
    transactional_sink,
)
from services.keys_admin import ensure_keys
from services.router_service import RouterService, router_group_id
from services.settings import DEMO_ROUTER_INSTANCE, Settings
from services.trust import load_trust

__all__ = ["run_demo", "scenario"]

_DELIVERY_TIMEOUT_S = 60.0
_SERVING_ROUTER_TIMEOUT_S = 20.0

AnyEvent = InspectorateEvent


@dataclass(frozen=True, slots=True)
class _Finding:
    source: Inspectorate
    programme: Programme
    area: str
    agencies: tuple[Agency, ...]
    theme: Theme
    summary: str
    finding: Finding | None = None  # None: exceptional practice
    severity: int = 2
    jtai_rationale: str | None = None


_S = Inspectorate
_P = Programme
_A = Agency
_T = Theme
_F = Finding

_SCENARIO: tuple[_Finding, ...] = (
    _Finding(_S.OFSTED, _P.ILACS, "E08000025", (_A.POLICE,), _T.FRONT_DOOR,
             "Police referrals to the front door wait days for a strategy discussion.",
             _F.AREA_FOR_PRIORITY_ACTION, 3),
    _Finding(_S.OFSTED, _P.FOCUSED_VISIT, "E10000016", (_A.HEALTH,), _T.MENTAL_HEALTH,
             "Children in care wait months for a first mental health appointment.",
             _F.AREA_FOR_IMPROVEMENT, 2),
    _Finding(_S.OFSTED, _P.ILACS, "E06000023", (_A.LOCAL_AUTHORITY, _A.EDUCATION),
             _T.EARLY_HELP, "Early help hubs share a single assessment across agencies."),
    _Finding(_S.CQC, _P.CLAS, "E08000003", (_A.LOCAL_AUTHORITY,), _T.MENTAL_HEALTH,
             "Social workers cannot get mental health consultation for care leavers.",
             _F.CAUSE_OF_CONCERN, 3),
    _Finding(_S.CQC, _P.SAAS, "E08000025", (_A.POLICE, _A.HEALTH),
             _T.CHILD_SEXUAL_ABUSE_IN_FAMILY,
             "Forensic medical examinations are delayed by police transport arrangements.",
             _F.CAUSE_OF_CONCERN, 4, "Two agencies fall short on the same pathway."),
    _Finding(_S.CQC, _P.CORE_SERVICE, "E09000012", (_A.HEALTH,), _T.NEGLECT,
             "Health visitors use a neglect screening tool shared with schools."),
    _Finding(_S.HMICFRS, _P.NCPI, "E08000035", (_A.LOCAL_AUTHORITY,), _T.MISSING_CHILDREN,
             "Return home interviews are not shared with the police missing team.",
             _F.AREA_FOR_IMPROVEMENT, 2),
    _Finding(_S.HMICFRS, _P.PEEL, "E08000025", (_A.HEALTH,), _T.DOMESTIC_ABUSE,
             "Health partners are absent from daily domestic abuse triage meetings.",
             _F.CAUSE_OF_CONCERN, 3),
    _Finding(_S.HMICFRS, _P.NCPI, "E10000020", (_A.POLICE, _A.LOCAL_AUTHORITY),
             _T.CHILD_CRIMINAL_EXPLOITATION,
             "Joint exploitation panel tracks every child at risk across districts."),
    _Finding(_S.HMI_PROBATION, _P.YOUTH_JUSTICE, "E06000063", (_A.CUSTODY,),
             _T.CHILDREN_IN_CUSTODY,
             "Resettlement plans reach the youth offending team after release.",
             _F.AREA_FOR_IMPROVEMENT, 2),
    _Finding(_S.HMI_PROBATION, _P.YOUTH_JUSTICE, "E08000003", (_A.POLICE,),
             _T.SERIOUS_YOUTH_VIOLENCE,
             "Police do not attend youth justice out-of-court disposal panels.",
             _F.URGENT_NOTIFICATION, 4),
    _Finding(_S.HMI_PROBATION, _P.PROBATION_SERVICE, "E06000065", (_A.PROBATION,),
             _T.DOMESTIC_ABUSE, "Probation and children's services hold joint home visits."),
    _Finding(_S.HMI_PRISONS, _P.CUSTODY, "E10000016", (_A.HEALTH,), _T.MENTAL_HEALTH,
             "Children in custody wait months for a mental health assessment.",
             _F.CAUSE_OF_CONCERN, 3),
    _Finding(_S.HMI_PRISONS, _P.CUSTODY, "E08000035", (_A.YOUTH_JUSTICE_SERVICE,),
             _T.CHILDREN_IN_CUSTODY,
             "Release planning with youth justice services starts too late.",
             _F.AREA_FOR_IMPROVEMENT, 2),
    _Finding(_S.HMI_PRISONS, _P.CUSTODY, "E09000012", (_A.EDUCATION,), _T.OTHER,
             "Education in custody follows each child's school curriculum."),
)  # fmt: skip


def scenario(now: dt.datetime) -> list[AnyEvent]:
    """Fifteen findings, three from each inspectorate, with fresh event ids."""
    events: list[AnyEvent] = []
    for i, f in enumerate(_SCENARIO):
        common = {
            "id": uuid.uuid4(),
            "source": f.source,
            "occurred_at": now - dt.timedelta(minutes=len(_SCENARIO) - i),
            "area": f.area,
            "programme": f.programme,
            "subject_agencies": f.agencies,
            "theme": f.theme,
            "summary": f.summary,
        }
        if f.finding is None:
            events.append(ExceptionalPracticeIdentified.model_validate(common))
        else:
            jtai = (
                JtaiRequest(requested=True, rationale=f.jtai_rationale)
                if f.jtai_rationale
                else None
            )
            events.append(
                ConcernRaised.model_validate(
                    {
                        **common,
                        "finding": f.finding,
                        "severity": f.severity,
                        "immediate_risk": f.severity == 4,  # noqa: PLR2004
                        "jtai": jtai,
                    }
                )
            )
    return events


def _expected(
    settings: Settings, rules: RuleSet, events: Sequence[AnyEvent]
) -> dict[str, set[str]]:
    topics = settings.topics
    expected: dict[str, set[str]] = {}
    for event in events:
        destinations = {topics.programme(d.programme) for d in route(event, rules.rules)}
        expected[str(event.id)] = destinations or {topics.unrouted}
    return expected


def _arrivals(records: Sequence[InboundRecord], wanted: set[str]) -> dict[str, list[InboundRecord]]:
    seen: defaultdict[str, list[InboundRecord]] = defaultdict(list)
    for record in records:
        event_id = header_map(record.headers).get(HEADER_EVENT_ID, b"").decode()
        if event_id in wanted:
            seen[event_id].append(record)
    return seen


def _short(topic: str, prefix: str) -> str:
    """``liaison.programme.ncpi`` -> ``ncpi``; ``liaison.jtai`` -> ``JTAI``."""
    name = topic.removeprefix(prefix)
    if name == "liaison.jtai":
        return "JTAI"
    return name.removeprefix("liaison.programme.").removeprefix("liaison.")


def _print_considerations(
    records: Sequence[InboundRecord], trust: TrustStore, now: dt.datetime, console: Console
) -> None:
    """The JTAI considerations the router raised during this run, each verified (signed by
    the bus); a record on the JTAI queue that does not verify is not shown."""
    raised = []
    for record in records:
        if header_map(record.headers).get(HEADER_TYPE) != JTAI_CONSIDERATION_REQUESTED.encode():
            continue
        try:
            raised.append(open_consideration(record, trust, now).event)
        except EnvelopeError:
            continue
    if not raised:
        console.print(
            "JTAI: no new consideration (any area and theme that qualified is already under"
            " consideration in its window)."
        )
    for item in raised:
        console.print(
            f"JTAI consideration requested: {item.area} {local_authorities()[item.area].name},"
            f" {item.theme.value} ({item.trigger.value}): {item.rationale}",
            highlight=False,
        )


async def _route_with_own_router(
    settings: Settings,
    rules: RuleSet,
    bus_key: SigningKey,
    start: Position,
    all_arrived: Callable[[Sequence[InboundRecord]], bool],
) -> list[InboundRecord]:
    router = RouterService(
        settings.model_copy(update={"router_instance": DEMO_ROUTER_INSTANCE}), rules, bus_key
    )
    await router.start()
    try:
        records = await read_from(
            settings,
            start,
            until=lambda got: router.failed.is_set() or all_arrived(got),
            timeout_s=_DELIVERY_TIMEOUT_S,
        )
    finally:
        await router.stop()
    _not_fenced(router)
    return records


def _not_fenced(router: RouterService) -> None:
    if router.failed.is_set():
        raise BrokerError(
            "the demo's router could not go on: Kafka refused its transaction (see the"
            " log line transaction_refused)"
        )


async def _publish(
    settings: Settings, keys: dict[str, SigningKey], events: Sequence[AnyEvent]
) -> None:
    """Each inspectorate's events in one transaction with their ``event.published``
    records, signed by that inspectorate's key (as ``liaison publish`` does)."""
    async with transactional_sink(settings, "demo") as sink:
        for owner, key in keys.items():
            publisher = Publisher(sink, settings.topics, key, clock=lambda: dt.datetime.now(dt.UTC))
            own = [publisher.seal(e) for e in events if e.source.value == owner]
            await publisher.publish_batch(own)


async def run_demo(settings: Settings, rules: RuleSet, console: Console) -> int:
    """Run the scenario against the broker in ``settings``; 0 when every delivery matched."""
    topics = settings.topics
    started = time.monotonic()
    reports = await apply_topics(settings, topics.specs())
    created = sum(r.created for r in reports)
    console.print(f"Topics: {len(reports)} in the contract, {created} created now.")
    destinations = [
        *(topics.programme(p) for p in Programme),
        topics.unrouted,
    ]
    destinations = sorted(set(destinations))
    start = await end_offsets(settings, destinations)

    now = dt.datetime.now(dt.UTC)
    keys = await ensure_keys(settings, (*(i.value for i in Inspectorate), BUS), now)
    console.print(
        "Signing keys: " + ", ".join(f"{owner} {key.keyid[:12]}" for owner, key in keys.items())
    )
    bus_key = keys.pop(BUS)
    events = scenario(now)
    expected = _expected(settings, rules, events)
    wanted = set(expected)
    total = sum(len(v) for v in expected.values())

    def all_arrived(records: Sequence[InboundRecord]) -> bool:
        return sum(map(len, _arrivals(records, wanted).values())) >= total

    # A router already serving this broker routes the demo's events: a second one would
    # only take partitions from it. The demo runs its own (its own transactional id, so
    # neither can fence the other) when none serves, or when the one that seems to serve
    # does not deliver (a router killed moments ago still counts as a member for a while).
    serving = await group_members(settings, router_group_id(settings)) > 0
    console.print(f"Publishing {len(events)} signed events, three from each inspectorate ...")
    await _publish(settings, keys, events)
    records: list[InboundRecord] = []
    if serving:
        console.print(f"A router is serving; it is delivering {total} records ...")
        records = await read_from(
            settings, start, until=all_arrived, timeout_s=_SERVING_ROUTER_TIMEOUT_S
        )
    if not all_arrived(records):
        console.print(f"Router delivering {total} records to programme queues ...")
        records = await _route_with_own_router(settings, rules, bus_key, start, all_arrived)

    arrivals = _arrivals(records, wanted)
    # A programme queue's reader opens every envelope before trusting it; so does the demo.
    trust, checked_at = await load_trust(settings), dt.datetime.now(dt.UTC)

    def verified(record: InboundRecord) -> bool:
        try:
            return str(open_envelope(record, trust, checked_at).event.id) in wanted
        except EnvelopeError:
            return False

    table = Table(title="Liaison demo: what went where", expand=False)
    for column in ("from", "area", "finding", "theme", "about", "delivered to"):
        table.add_column(column, overflow="fold")
    ok = True
    for event in events:
        got = arrivals.get(str(event.id), [])
        got_topics = sorted(r.topic for r in got)
        good = sorted(expected[str(event.id)]) == got_topics and all(map(verified, got))
        ok = ok and good
        table.add_row(
            event.source.value,
            f"{event.area} {local_authorities()[event.area].name}",
            "concern" if isinstance(event, ConcernRaised) else "good practice",
            event.theme.value,
            ", ".join(a.value for a in event.subject_agencies),
            ", ".join(_short(t, topics.prefix) for t in got_topics) or "nothing",
            style=None if good else "red",
        )
    console.print(table)
    _print_considerations(records, trust, checked_at, console)
    delivered = sum(len(v) for v in arrivals.values())
    took = time.monotonic() - started
    if ok:
        console.print(
            f"[green]OK[/green]: {len(events)} events from {len({e.source for e in events})}"
            f" inspectorates, {delivered} deliveries, each where the rules send it, never"
            f" back to its publisher, and each signature verified by the reader ({took:.1f} s)."
        )
        return 0
    console.print(
        f"[red]FAILED[/red]: expected {total} deliveries, saw {delivered} within"
        f" {_DELIVERY_TIMEOUT_S:.0f} s; rows in red differ."
    )
    return 1
