from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.inspectorates import Inspectorate
from schemas.topics import DAY_MS, Topics
from services.kafka import apply_topics, describe_topics
from services.settings import Settings
from tests.conftest import run_liaison

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


async def test_apply_sets_drifted_configs_back_to_the_contract(kafka: Settings) -> None:
    feed = kafka.topics.feed
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        (altered,) = await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    feed,
                    configs={"retention.ms": "1000", "segment.bytes": "10485760"},
                )
            ]
        )
        assert altered.resources[0][0] == 0
        for _ in range(50):  # the change reaches the broker's view a moment later
            (described,) = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, feed)]
            )
            if dict(e[:2] for e in described.resources[0][4])["retention.ms"] == "1000":
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    reports = await apply_topics(kafka, kafka.topics.specs())
    drifted = {r.spec.name: set(r.reconfigured) for r in reports if r.reconfigured}
    # AlterConfigs replaces a topic's whole config, so the append-time setting was lost
    # too; retention.bytes=-1 is Kafka's default and did not drift.
    assert drifted == {feed: {"retention.ms", "message.timestamp.type"}}
    # An operator's own setting outside the contract survives the repair.
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        (described,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, feed)]
        )
    finally:
        await admin.close()
    assert dict(e[:2] for e in described.resources[0][4])["segment.bytes"] == "10485760"
    for _ in range(50):
        again = await apply_topics(kafka, kafka.topics.specs())
        if not any(r.reconfigured for r in again):
            break
        await asyncio.sleep(0.1)
    assert not any(r.reconfigured for r in again)


async def retention_ms(settings: Settings, topic: str, expected: str) -> str:
    """The topic's retention.ms on the broker, once it shows ``expected`` (or after a while)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        for _ in range(50):  # a change reaches the broker's view a moment later
            (described,) = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)]
            )
            value: str = dict(e[:2] for e in described.resources[0][4])["retention.ms"]
            if value == expected:
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    return value


async def test_apply_keeps_the_quarantine_thirty_days_by_default(kafka: Settings) -> None:
    # Topics with no retention given: the contract's default, whatever the shell sets.
    await apply_topics(kafka, Topics(kafka.topic_prefix).specs())
    thirty_days = str(30 * 24 * 60 * 60 * 1000)
    assert await retention_ms(kafka, kafka.topics.quarantine, thirty_days) == thirty_days


async def test_topics_apply_sets_the_configured_quarantine_retention(kafka: Settings) -> None:
    applied = await run_liaison(
        kafka, "topics", "apply", env={"LIAISON_QUARANTINE_RETENTION_DAYS": "7"}
    )
    assert applied.returncode == 0, applied.stderr
    seven_days = str(7 * DAY_MS)
    assert await retention_ms(kafka, kafka.topics.quarantine, seven_days) == seven_days
    # Only the quarantine is bounded: the audit log is still never deleted.
    assert await retention_ms(kafka, kafka.topics.audit, "-1") == "-1"
