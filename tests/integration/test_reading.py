"""Whole-topic reads end even when a partition ends in an aborted transaction."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from schemas.keys import SigningKey
from schemas.signed import DELIVERY_TOPIC_TYPES
from services.reading import read_signed
from services.replay import Filters, replay_topics
from services.settings import Settings
from services.trust import load_trust
from tests.factories import utc_now

pytestmark = pytest.mark.kafka


async def test_a_partition_ending_in_an_aborted_transaction_does_not_hang_a_read(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    del signing  # a trust root and keys, so the trust store loads
    topic = kafka.topics.delivery
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, transactional_id=f"{topic}.aborting"
    )
    await producer.start()
    try:
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"never committed", partition=0)
        await producer.abort_transaction()
    finally:
        await producer.stop()

    trust = await load_trust(kafka)
    found = await asyncio.wait_for(
        read_signed(kafka, {topic: DELIVERY_TOPIC_TYPES}, trust, utc_now()), 30
    )
    assert found.verified == []
    assert found.refused == []
    replayed = await asyncio.wait_for(
        replay_topics(kafka, [topic], Filters(), trust, utc_now()), 30
    )
    assert replayed.verified == []
    assert replayed.unverifiable == []
