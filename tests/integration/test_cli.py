"""The CLI as a user runs it: services as processes, clear errors, no tracebacks."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

import pytest

from consumers.router import HEADER_RULES
from producers.publisher import Publisher
from schemas.inspectorates import Programme
from schemas.keys import SigningKey
from schemas.records import InboundRecord, header_map
from services.kafka import end_offsets, kafka_sink, read_from
from services.settings import Settings
from tests.conftest import env_for
from tests.factories import concern, utc_now

pytestmark = pytest.mark.kafka

LIAISON = [sys.executable, "-m", "services"]


def test_unreachable_kafka_is_one_clear_error() -> None:
    env = {**os.environ, "LIAISON_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    for command in (["topics", "list"], ["topics", "apply"]):
        done = subprocess.run(
            [*LIAISON, *command], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 1
        assert "error: cannot reach Kafka at 127.0.0.1:1" in done.stderr
        assert "liaison broker start" in done.stderr
        assert "Traceback" not in done.stderr


def test_topics_list_shows_the_contract(kafka: Settings) -> None:
    env = {**os.environ, "LIAISON_TOPIC_PREFIX": kafka.topic_prefix}
    done = subprocess.run(
        [*LIAISON, "topics", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("exists") == len(kafka.topics.specs())
    assert "missing" not in done.stderr


async def test_serve_router_routes_until_sigterm(
    kafka: Settings, signing: dict[str, SigningKey]
) -> None:
    topics = kafka.topics
    start = await end_offsets(kafka, [topics.programme(Programme.CUSTODY)])
    env = {**env_for(kafka), "LIAISON_LOG_FORMAT": "json"}
    router = await asyncio.create_subprocess_exec(
        *LIAISON,
        "serve",
        "router",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        event = concern(source="cqc", programme="clas", subject_agencies=["custody"])
        async with kafka_sink(kafka) as sink:
            await Publisher(sink, topics, signing["cqc"], clock=utc_now).publish(event)

        def arrived(records: Sequence[InboundRecord]) -> bool:
            return len(records) >= 1

        records = await read_from(kafka, start, until=arrived, timeout_s=60)
    finally:
        router.send_signal(signal.SIGTERM)
        _, raw_stderr = await asyncio.wait_for(router.communicate(), 60)
    stderr = raw_stderr.decode()
    assert len(records) == 1
    assert header_map(records[0].headers)[HEADER_RULES] == b"custody.prisons"
    assert router.returncode == 0, stderr
    assert '"event": "router_started"' in stderr
    assert '"event": "event_routed"' in stderr
    assert '"event": "router_stopped"' in stderr
