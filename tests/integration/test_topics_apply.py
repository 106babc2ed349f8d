from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.inspectorates import Inspectorate
from services.kafka import apply_topics, describe_topics
from services.settings import Settings

pytestmark = pytest.mark.kafka


async def test_apply_is_idempotent_and_creates_the_contract(kafka: Settings) -> None:
    # the fixture applied once already
    again = await apply_topics(kafka, kafka.topics.specs())
    assert all(r.exists and not r.created for r in again)
    listed = await describe_topics(kafka, kafka.topics.specs())
    assert all(r.exists for r in listed)
    assert all(r.partitions == r.spec.partitions for r in listed)


async def test_apply_creates_only_what_is_missing(kafka: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics([kafka.topics.jtai])
        for _ in range(100):  # deletion reaches the broker's metadata a moment later
            if kafka.topics.jtai not in await admin.list_topics():
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    reports = await apply_topics(kafka, kafka.topics.specs())
    assert [r.spec.name for r in reports if r.created] == [kafka.topics.jtai]


async def test_events_topics_carry_their_configs_on_the_broker(kafka: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        name = kafka.topics.events(Inspectorate.CQC)
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    finally:
        await admin.close()
    error_code, _, _, resource_name = response.resources[0][:4]
    assert (error_code, resource_name) == (0, name)
    configs = {entry[0]: entry[1] for entry in response.resources[0][4]}
    assert configs["message.timestamp.type"] == "LogAppendTime"
    assert configs["retention.ms"] == "-1"
