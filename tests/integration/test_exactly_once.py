"""Exactly once under failure: the router, a separate process, SIGKILLed at random moments.

A few thousand signed events (plus re-published duplicates and poison records) go in
while the router is killed and restarted several times. Afterwards every event is in
every destination the rules give it exactly once and nowhere else, every poison record
is quarantined exactly once, and no JTAI consideration is emitted twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import signal
import sys
from collections import Counter
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaProducer

from consumers.routing import route
from schemas.audit import unsealed
from schemas.envelope import seal
from schemas.events import ConcernRaised
from schemas.inspectorates import PROGRAMMES, Agency, Inspectorate
from schemas.jtai import JTAI_CONSIDERATION_REQUESTED
from schemas.keys import BUS, SigningKey
from schemas.records import (
    HEADER_EVENT_ID,
    HEADER_TYPE,
    InboundRecord,
    OutboundRecord,
    event_record,
    header_map,
)
from services.kafka import committed_offsets, end_offsets, read_from
from services.keys_admin import ensure_keys
from services.router_service import router_group_id
from services.rules_file import load_rules
from services.settings import Settings
from tests.conftest import env_for
from tests.factories import NOW, concern

pytestmark = pytest.mark.kafka

WAVES = 5
PER_WAVE = 600
DUPLICATES_PER_WAVE = 40
POISON_PER_WAVE = 4
THEMES = ["neglect", "domestic_abuse", "front_door", "missing_children", "early_help"]
AREAS = ["E08000025", "E10000016", "E06000023", "E09000012", "E08000035"]


def make_events(rng: random.Random, count: int) -> list[ConcernRaised]:
    events = []
    for _ in range(count):
        source = rng.choice(list(Inspectorate))
        agencies = rng.sample([a.value for a in Agency], k=rng.randint(1, 3))
        events.append(
            concern(
                source=source,
                programme=PROGRAMMES[source][0],
                area=rng.choice(AREAS),
                theme=rng.choice(THEMES),
                subject_agencies=agencies,
                finding=rng.choice(["cause_of_concern", "area_for_improvement"]),
                severity=rng.randint(1, 3),
                occurred_at=NOW - dt.timedelta(minutes=rng.randint(1, 60 * 24 * 400)),
            )
        )
    return events


def poison(rng: random.Random, settings: Settings, n: int) -> OutboundRecord:
    topic = settings.topics.events(rng.choice(list(Inspectorate)))
    return OutboundRecord(topic, b"E08000025", f'{{"poison": {n}}}'.encode(), ())


async def start_router(settings: Settings) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services", "serve", "router",
        env={**env_for(settings), "LIAISON_LOG_LEVEL": "WARNING"},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def lag(settings: Settings) -> int:
    """Records on the events topics the router group has not committed yet.

    On a freshly formatted broker the group coordinator may not be ready yet: that
    (retriable) condition is retried by ``committed_offsets``, not taken as a failure.
    """
    done = await committed_offsets(settings, router_group_id(settings))
    ends = await end_offsets(settings, list(settings.topics.all_events()))
    return sum(end - max(done.get(tp, 0), 0) for tp, end in ends.items())


async def publish_in_waves_killing_the_router(
    settings: Settings, keys: dict[str, SigningKey], rng: random.Random
) -> tuple[list[ConcernRaised], list[bytes], list[int]]:
    """Each wave: start the router, publish, SIGKILL it mid-stream.

    Returns what was sent, and how many input records were still uncommitted at each kill.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    unique: list[ConcernRaised] = []
    poisons: list[bytes] = []
    lag_at_kill: list[int] = []
    try:
        for wave in range(WAVES):
            router = await start_router(settings)
            events = make_events(rng, PER_WAVE)
            unique += events
            again = rng.sample(unique, DUPLICATES_PER_WAVE)  # re-published: routed once
            bad = [poison(rng, settings, wave * 100 + i) for i in range(POISON_PER_WAVE)]
            poisons += [b.value for b in bad]
            batch = [record_for(e, keys[e.source.value], settings) for e in [*events, *again]]
            batch += bad
            rng.shuffle(batch)
            sends = [
                await producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
                for r in batch
            ]
            await asyncio.gather(*sends)
            await asyncio.sleep(rng.uniform(0.8, 3.0))  # mid-stream, some batches in flight
            router.send_signal(signal.SIGKILL)
            assert await router.wait() == -signal.SIGKILL
            lag_at_kill.append(await lag(settings))
    finally:
        await producer.stop()
    return unique, poisons, lag_at_kill


def expected_deliveries(
    settings: Settings, events: Sequence[ConcernRaised]
) -> Counter[tuple[str, str]]:
    rules = load_rules(settings.rules_path)
    topics = settings.topics
    expected: Counter[tuple[str, str]] = Counter()
    for event in events:
        destinations = {topics.programme(d.programme) for d in route(event, rules.rules)}
        for topic in destinations or {topics.unrouted}:
            expected[(str(event.id), topic)] += 1
        expected[(str(event.id), topics.feed)] += 1
    return expected


async def test_every_event_exactly_once_in_every_destination_despite_sigkill(
    kafka: Settings,
) -> None:
    rng = random.Random(20261122)  # noqa: S311 - test data, not security
    topics = kafka.topics
    owners = (*(i.value for i in Inspectorate), BUS)
    keys = await ensure_keys(kafka, owners, dt.datetime.now(dt.UTC))
    outputs = sorted(
        {spec.name for spec in topics.specs()}
        - {*topics.all_events(), topics.keys, topics.router_state}
    )
    start = await end_offsets(kafka, outputs)

    unique, poisons, lag_at_kill = await publish_in_waves_killing_the_router(kafka, keys, rng)
    # The kills must have cut real work short, or this test would prove nothing.
    assert any(n > 0 for n in lag_at_kill), lag_at_kill
    expected = expected_deliveries(kafka, unique)

    final = await start_router(kafka)
    try:

        def complete(records: Sequence[InboundRecord]) -> bool:
            seen = {(event_id(r), r.topic) for r in records}
            quarantined = sum(1 for r in records if r.topic == topics.quarantine)
            return seen >= set(expected) and quarantined >= len(poisons)

        await read_from(kafka, start, until=complete, timeout_s=240)
        await asyncio.sleep(3)  # room for any (wrong) second delivery to appear
        records = await read_from(kafka, start, until=lambda _: False, timeout_s=5)
    finally:
        final.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(final.wait(), 60) == 0

    considerations = [r for r in records if is_consideration(r)]
    audit = [json.loads(unsealed(r.value) or b"null") for r in records if r.topic == topics.audit]
    delivered: Counter[tuple[str, str]] = Counter(
        (event_id(r), r.topic)
        for r in records
        if r.topic not in {topics.quarantine, topics.audit} and not is_consideration(r)
    )
    missing = set(expected) - set(delivered)
    extra = set(delivered) - set(expected)
    twice = {k: n for k, n in delivered.items() if n > 1}
    assert not missing, f"{len(missing)} deliveries missing, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} unexpected deliveries, e.g. {sorted(extra)[:3]}"
    assert not twice, f"{len(twice)} deliveries duplicated, e.g. {sorted(twice.items())[:3]}"

    quarantined = Counter(
        bytes.fromhex(json.loads(r.value)["raw_value_hex"])
        for r in records
        if r.topic == topics.quarantine
    )
    assert quarantined == Counter(poisons)

    # The audit log tells the same story, exactly once: one routing record per event.
    decisions = Counter(
        record["event_ids"][0]
        for record in audit
        if record["action"] in {"event.routed", "event.unrouted"}
    )
    assert decisions == Counter(str(e.id) for e in unique)
    refusals = [record for record in audit if record["action"] == "event.quarantined"]
    assert len(refusals) == len(poisons)

    emitted = Counter(event_id(r) for r in considerations)
    assert emitted, "the mixed stream should raise some JTAI considerations"
    assert max(emitted.values()) == 1


def is_consideration(record: InboundRecord) -> bool:
    return header_map(record.headers).get(HEADER_TYPE) == JTAI_CONSIDERATION_REQUESTED.encode()


def record_for(event: ConcernRaised, key: SigningKey, settings: Settings) -> OutboundRecord:
    return event_record(event, seal(event, key, NOW).envelope, settings.topics)


def event_id(record: InboundRecord) -> str:
    return header_map(record.headers).get(HEADER_EVENT_ID, b"").decode()
