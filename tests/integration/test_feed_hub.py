"""The reader's hub against the real broker: it loads what is on the feed and the JTAI
log, verified, follows what the router appends next, and leaves forged records out."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest

from schemas.envelope import seal
from schemas.keys import SigningKey
from schemas.records import event_record
from services.kafka import kafka_sink
from services.reader.hub import FeedHub
from services.settings import Settings
from services.trust import TrustFollower
from tests.factories import concern, key_for, utc_now

pytestmark = pytest.mark.kafka


async def on_feed(settings: Settings, key: SigningKey, area: str) -> str:
    event = concern(area=area, occurred_at=utc_now() - dt.timedelta(minutes=5))
    record = event_record(event, seal(event, key, utc_now()).envelope, settings.topics)
    async with kafka_sink(settings) as sink:
        await sink.send(dataclasses.replace(record, topic=settings.topics.feed))
    return str(event.id)


async def test_the_hub_loads_the_feed_then_follows_it(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    before = await on_feed(kafka, signing["ofsted"], "E08000035")
    forged = await on_feed(kafka, key_for("ofsted"), "E08000035")
    follower = TrustFollower(kafka)
    await follower.start()
    hub = FeedHub(kafka, lambda: follower.store, lambda: dt.datetime.now(dt.UTC))
    try:
        await hub.start()
        loaded = hub.view()
        assert [str(e.item.id) for e in loaded.entries] == [before]
        assert sum(loaded.refused.values()) == 1  # the forged one: counted, never shown
        assert forged not in {str(e.item.id) for e in loaded.entries}

        after = await on_feed(kafka, signing["ofsted"], "E08000032")
        version = loaded.version
        for _ in range(50):
            version = await hub.wait(version, within=1)
            if after in {str(e.item.id) for e in hub.view().entries}:
                break
            await asyncio.sleep(0)
        followed = hub.view()
        assert [str(e.item.id) for e in followed.after(loaded.last_seq)] == [after]
        assert followed.find(followed.entries[-1].item.id)[0].item.area_name == "Bradford"
    finally:
        await hub.stop()
        await follower.stop()
