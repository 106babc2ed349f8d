"""Routers that scale out, against the real broker: every area judged by one router
however many run, state loaded from liaison.router.state (not the feed), and a router
that lost a partition number fenced out of committing for it."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from consumers.copartition import partition_for
from producers.publisher import Publisher
from schemas.events import ConcernRaised
from schemas.jtai import JTAI_CONSIDERATION_REQUESTED
from schemas.keys import SigningKey
from schemas.records import HEADER_EVENT_ID, HEADER_TYPE, InboundRecord, header_map
from services.kafka import (
    apply_topics,
    delete_topics,
    end_offsets,
    producer_options,
    read_from,
    transactional_sink,
)
from services.router_service import RouterService, router_transactional_id
from services.settings import Settings
from tests.conftest import router_for
from tests.factories import concern, utc_now

pytestmark = pytest.mark.kafka

AREAS = ("E09000001", "E09000033", "E08000035")
"""City of London, Westminster, Leeds: partitions 0, 1 and 2 of three."""


def neglect(source: str, programme: str, area: str, days_ago: int = 3) -> ConcernRaised:
    return concern(
        source=source,
        programme=programme,
        area=area,
        theme="neglect",
        subject_agencies=["education"],
        occurred_at=utc_now() - dt.timedelta(days=days_ago),
    )


def considerations(records: Sequence[InboundRecord]) -> dict[str, int]:
    """Area -> how many considerations the JTAI queue holds for it."""
    found: dict[str, int] = {}
    for r in records:
        if header_map(r.headers).get(HEADER_TYPE) == JTAI_CONSIDERATION_REQUESTED.encode():
            area = (r.key or b"").decode()
            found[area] = found.get(area, 0) + 1
    return found


def on_feed(records: Sequence[InboundRecord], feed: str) -> list[bytes]:
    return [header_map(r.headers)[HEADER_EVENT_ID] for r in records if r.topic == feed]


async def publish(settings: Settings, keys: dict[str, SigningKey], *events: ConcernRaised) -> None:
    async with transactional_sink(settings, "tests") as sink:
        for event in events:
            await Publisher(sink, settings.topics, keys[event.source.value], utc_now).publish(event)


def fed(settings: Settings, n: int) -> Callable[[Sequence[InboundRecord]], bool]:
    return lambda records: len(on_feed(records, settings.topics.feed)) >= n


async def until_owned(routers: Sequence[RouterService], numbers: set[int]) -> None:
    for _ in range(300):
        owned = [r.owned for r in routers]
        if set().union(*owned) == numbers and sum(map(len, owned)) == len(numbers):
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"partition numbers never settled: {[sorted(r.owned) for r in routers]}")


def test_the_areas_are_one_per_partition() -> None:
    assert [partition_for(a.encode(), 3) for a in AREAS] == [0, 1, 2]


async def test_two_routers_split_the_numbers_and_raise_each_areas_consideration_once(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    start = await end_offsets(kafka, [topics.jtai, topics.feed])
    first = router_for(kafka, signing)
    second = router_for(kafka.model_copy(update={"router_instance": "1"}), signing)
    await first.start()
    await second.start()
    try:
        await until_owned([first, second], {0, 1, 2})
        assert first.owned
        assert second.owned
        # For each area, an Ofsted and an HMICFRS concern: on different events topics,
        # the same partition number, so the same router: one consideration per area.
        pairs = [
            e
            for area in AREAS
            for e in (neglect("ofsted", "ilacs", area), neglect("hmicfrs", "ncpi", area, 5))
        ]
        await publish(kafka, signing, *pairs)
        await read_from(kafka, start, until=fed(kafka, len(pairs)), timeout_s=60)
        # The second router leaves: the first takes every number, from the state.
        await second.stop()
        await until_owned([first], {0, 1, 2})
        assert all(not rebuilt for _, rebuilt in first.loads.values())
        late = [neglect("cqc", "clas", area, 1) for area in AREAS]  # covered: no new one
        await publish(kafka, signing, *late, *list(pairs[:2]))  # and two copies
        await read_from(kafka, start, until=fed(kafka, len(pairs) + len(late)), timeout_s=60)
        await asyncio.sleep(2)
    finally:
        await first.stop()
        await second.stop()
    records = await read_from(kafka, start, until=lambda _: False, timeout_s=3)
    assert considerations(records) == dict.fromkeys(AREAS, 1)
    ids = on_feed(records, topics.feed)
    assert len(ids) == len(set(ids)) == len(pairs) + len(late)  # the copies: not again


async def test_a_restart_loads_the_state_not_the_feed_and_forgets_nothing_it_needs(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    start = await end_offsets(kafka, [topics.jtai, topics.feed])
    events = [neglect("ofsted", "ilacs", AREAS[i % 3], 10 + i) for i in range(30)]
    router = router_for(kafka, signing)
    await router.start()
    try:
        await publish(kafka, signing, *events)
        await read_from(kafka, start, until=fed(kafka, 30), timeout_s=60)
    finally:
        await router.stop()
    again = router_for(kafka, signing)
    await again.start()
    try:
        await until_owned([again], {0, 1, 2})
        assert {n: rebuilt for n, (_, rebuilt) in again.loads.items()} == dict.fromkeys(
            (0, 1, 2), False
        )
        # What was read is the state: per number, its ids, concerns and offsets (30 events
        # make at most 2 records each plus an offsets record per transaction).
        assert sum(count for count, _ in again.loads.values()) <= 30 * 2 + 3 * 30
        await publish(kafka, signing, events[0], neglect("hmicfrs", "ncpi", AREAS[0], 9))
        await read_from(kafka, start, until=fed(kafka, 31), timeout_s=60)
        await asyncio.sleep(2)
    finally:
        await again.stop()
    records = await read_from(kafka, start, until=lambda _: False, timeout_s=3)
    assert len(on_feed(records, topics.feed)) == 31
    assert considerations(records) == {AREAS[0]: 1}


async def test_a_router_whose_partition_was_taken_over_cannot_commit_for_it(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    start = await end_offsets(kafka, [topics.feed])
    zombie = router_for(kafka, signing)
    await zombie.start()
    try:
        await until_owned([zombie], {0, 1, 2})
        # Another router takes number 2 over: it starts that number's producer, which
        # fences the one the zombie holds (as on a real reassignment).
        usurper = AIOKafkaProducer(
            **producer_options(kafka), transactional_id=router_transactional_id(kafka, 2)
        )
        await usurper.start()
        await usurper.stop()
        event = neglect("ofsted", "ilacs", AREAS[2])
        await publish(kafka, signing, event, neglect("ofsted", "ilacs", AREAS[0]))
        await read_from(kafka, start, until=fed(kafka, 1), timeout_s=60)
        await asyncio.sleep(2)
        assert zombie.owned == {0, 1}  # it dropped number 2 at its fenced commit
    finally:
        await zombie.stop()
    records = await read_from(kafka, start, until=lambda _: False, timeout_s=3)
    assert str(event.id).encode() not in on_feed(records, topics.feed)  # nothing committed
    successor = router_for(kafka, signing)
    await successor.start()
    try:
        await read_from(kafka, start, until=fed(kafka, 2), timeout_s=60)
    finally:
        await successor.stop()
    records = await read_from(kafka, start, until=lambda _: False, timeout_s=3)
    assert on_feed(records, topics.feed).count(str(event.id).encode()) == 1


async def test_a_deployment_without_state_rebuilds_it_once_from_the_feed(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    start = await end_offsets(kafka, [topics.jtai, topics.feed])
    pair = [neglect("ofsted", "ilacs", AREAS[1]), neglect("hmicfrs", "ncpi", AREAS[1], 6)]
    router = router_for(kafka, signing)
    await router.start()
    try:
        await publish(kafka, signing, *pair)
        await read_from(kafka, start, until=fed(kafka, 2), timeout_s=60)
    finally:
        await router.stop()
    # As after an upgrade from a router that kept no state topic.
    state = [s for s in topics.specs() if s.name == topics.router_state]
    await delete_topics(kafka, [topics.router_state])
    await asyncio.sleep(1)
    await apply_topics(kafka, state)
    rebuilt = router_for(kafka, signing)
    await rebuilt.start()
    try:
        await until_owned([rebuilt], {0, 1, 2})
        assert {n: r for n, (_, r) in rebuilt.loads.items()} == dict.fromkeys((0, 1, 2), True)
        await publish(kafka, signing, pair[0], neglect("cqc", "clas", AREAS[1], 2))
        await read_from(kafka, start, until=fed(kafka, 3), timeout_s=60)
        await asyncio.sleep(2)
    finally:
        await rebuilt.stop()
    records = await read_from(kafka, start, until=lambda _: False, timeout_s=3)
    assert len(on_feed(records, topics.feed)) == 3
    assert considerations(records) == {AREAS[1]: 1}
    again = router_for(kafka, signing)
    await again.start()
    try:
        await until_owned([again], {0, 1, 2})
        assert not any(r for _, r in again.loads.values())  # written back: loaded now
    finally:
        await again.stop()


async def test_a_batch_that_fails_outside_a_transaction_is_read_again_not_skipped(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    start = await end_offsets(kafka, [topics.feed])
    router = router_for(kafka, signing)
    route = router._route
    failures: list[int] = []

    async def failing_once(task: Any, raws: Sequence[Any]) -> None:
        if not failures:
            failures.append(len(raws))
            raise RuntimeError("a bug, or the broker away while reading liaison.keys")
        await route(task, raws)

    router._route = failing_once  # type: ignore[method-assign]
    await router.start()
    try:
        await until_owned([router], {0, 1, 2})
        await asyncio.sleep(1)  # settled: no assignment will move the consumer back
        events = [neglect("ofsted", "ilacs", AREAS[2], 3 + i) for i in range(5)]
        await publish(kafka, signing, *events)
        await read_from(kafka, start, until=fed(kafka, 5), timeout_s=60)
        await asyncio.sleep(2)
    finally:
        await router.stop()
    assert failures  # it did fail once
    records = await read_from(kafka, start, until=lambda _: False, timeout_s=3)
    ids = on_feed(records, topics.feed)
    assert sorted(ids) == sorted(str(e.id).encode() for e in events)  # each once, none lost
