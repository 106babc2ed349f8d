"""``services.kafka.Outage``: one log line per change of the broker's state, backoff
between tries, and errors that waiting cannot help raised again (no broker here)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    ProducerFenced,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)
from structlog.testing import capture_logs

from schemas.errors import BrokerError
from services.kafka import Outage, kafka_refusal
from services.settings import Settings

SETTINGS = Settings(bootstrap_servers="127.0.0.1:1")


def counting() -> Iterator[float]:
    return itertools.count(1.0)


def test_one_line_when_found_unreachable_one_when_back_and_backoff_between() -> None:
    outage = Outage(SETTINGS, "audit", delays=counting)
    with capture_logs() as logs:
        outage.recovered()  # all well: nothing said
        waits = [
            outage.failed(BrokerError("cannot reach Kafka")),
            outage.failed(KafkaConnectionError()),
            outage.failed(KafkaTimeoutError()),
        ]
        assert outage.down
        outage.recovered()
        outage.recovered()
        assert not outage.down
        again = outage.failed(KafkaTimeoutError())  # a new outage starts its backoff anew
    assert waits == [1.0, 2.0, 3.0]
    assert again == 1.0
    assert [(entry["event"], entry["service"]) for entry in logs] == [
        ("broker_unreachable", "audit"),
        ("broker_reachable", "audit"),
        ("broker_unreachable", "audit"),
    ]
    assert logs[0]["reason"] == "BrokerError"


@pytest.mark.parametrize(
    "error",
    [
        ProducerFenced(),
        ValueError("not Kafka"),
        kafka_refusal(TopicAuthorizationFailedError()),
        SaslAuthenticationFailed(),
    ],
    ids=repr,
)
def test_what_waiting_cannot_help_is_raised_again(error: Exception) -> None:
    outage = Outage(SETTINGS, "audit", delays=counting)
    with capture_logs() as logs, pytest.raises(type(error)):
        outage.failed(error)
    assert logs == []
    assert not outage.down


async def test_pause_waits_the_delay_or_until_stopped() -> None:
    outage = Outage(SETTINGS, "deliver", delays=lambda: itertools.repeat(30.0))
    stop = asyncio.Event()
    stop.set()
    with capture_logs():
        await asyncio.wait_for(outage.pause(KafkaConnectionError(), stop), 1.0)
    quick = Outage(SETTINGS, "deliver", delays=lambda: itertools.repeat(0.0))
    with capture_logs():
        await quick.pause(KafkaConnectionError())
    assert quick.down


@pytest.mark.parametrize(
    "error",
    [KafkaError(), KafkaTimeoutError(), BrokerError("could not read end offsets: ...")],
    ids=repr,
)
def test_what_a_broker_coming_back_says_is_waited_for(error: Exception) -> None:
    # aiokafka marks these not retriable; a service waits through them all the same.
    outage = Outage(SETTINGS, "audit", delays=counting)
    assert outage.failed(error) == 1
    assert outage.down
