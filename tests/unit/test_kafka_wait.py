"""Waiting for a broker, and retrying what a broker still starting refuses (no broker here:
the broker's answers are scripted)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
from aiokafka.errors import (
    GroupCoordinatorNotAvailableError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from structlog.testing import capture_logs

from schemas.errors import BrokerError, ConfigurationError
from services.kafka import backoff, start_when_reachable, with_retries
from services.settings import Settings

SETTINGS = Settings(bootstrap_servers="127.0.0.1:1")


def test_backoff_doubles_from_one_second_to_thirty() -> None:
    assert list(itertools.islice(backoff(), 8)) == [1, 2, 4, 8, 16, 30, 30, 30]


class Script:
    """A broker's answers to probes, and the outcomes of start attempts, in order."""

    def __init__(self, answers: list[bool], starts: list[BaseException | str]) -> None:
        self.answers = iter(answers)
        self.starts = iter(starts)
        self.probes = 0
        self.attempts = 0

    async def answer(self, settings: Settings) -> bool:
        del settings
        self.probes += 1
        return next(self.answers)

    async def start(self) -> str:
        self.attempts += 1
        outcome = next(self.starts)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def no_pauses() -> Iterator[float]:
    return itertools.repeat(0.0)


def events(logs: list[MutableMapping[str, Any]]) -> list[object]:
    return [entry["event"] for entry in logs]


async def test_a_broker_that_answers_at_once_starts_without_a_word() -> None:
    script = Script([True], ["router"])
    with capture_logs() as logs:
        started = await start_when_reachable(
            SETTINGS, script.start, asyncio.Event(), answers=script.answer, delays=no_pauses()
        )
    assert started == "router"
    assert events(logs) == []


async def test_an_unreachable_broker_is_waited_for_with_one_line_each_way() -> None:
    script = Script([False] * 500 + [True], ["router"])
    with capture_logs() as logs:
        started = await start_when_reachable(
            SETTINGS, script.start, asyncio.Event(), answers=script.answer, delays=no_pauses()
        )
    assert started == "router"
    assert script.probes == 501
    assert events(logs) == ["broker_unreachable", "broker_reachable"]
    assert logs[0]["log_level"] == "warning"
    assert "retrying" in str(logs[0]["detail"])


def _wrapped(cause: Exception) -> KafkaError:
    """How aiokafka's transactional producer reports what it met finding its coordinator
    (``raise KafkaError(repr(err)) from err``)."""
    wrapper = KafkaError(repr(cause))
    wrapper.__cause__ = cause
    return wrapper


async def test_retriable_start_failures_are_retried_and_other_failures_raised() -> None:
    flaky = Script(
        [True, True, True, False, True],
        [
            GroupCoordinatorNotAvailableError(),
            _wrapped(KafkaConnectionError("Connection at 127.0.0.1:1 closed")),
            BrokerError("cannot reach Kafka"),
            "router",
        ],
    )
    with capture_logs() as logs:
        started = await start_when_reachable(
            SETTINGS, flaky.start, asyncio.Event(), answers=flaky.answer, delays=no_pauses()
        )
    assert (started, flaky.attempts) == ("router", 4)
    assert events(logs) == ["broker_unreachable", "broker_reachable"]

    for fatal in (
        ConfigurationError("no bus key"),
        TopicAuthorizationFailedError(),
        _wrapped(TopicAuthorizationFailedError()),
        KafkaError("something else"),
    ):
        script = Script([True], [fatal])
        with pytest.raises(type(fatal)):
            await start_when_reachable(
                SETTINGS, script.start, asyncio.Event(), answers=script.answer, delays=no_pauses()
            )


async def test_a_stop_while_waiting_ends_the_wait() -> None:
    stop = asyncio.Event()
    script = Script([False] * 10, [])

    async def answer(settings: Settings) -> bool:
        if script.probes == 3:
            stop.set()
        return await script.answer(settings)

    started = await start_when_reachable(
        SETTINGS, script.start, stop, answers=answer, delays=no_pauses()
    )
    assert started is None
    assert script.attempts == 0


async def test_with_retries_retries_retriable_errors_only() -> None:
    outcomes: Iterator[BaseException | int] = iter(
        [KafkaConnectionError(), GroupCoordinatorNotAvailableError(), 7]
    )

    async def operation() -> int:
        outcome = next(outcomes)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert await with_retries(operation, "lag", delays=no_pauses()) == 7

    async def refused() -> int:
        raise TopicAuthorizationFailedError

    with pytest.raises(BrokerError, match=r"^lag: ") as raised:
        await with_retries(refused, "lag", delays=no_pauses())
    assert not raised.value.retriable


async def test_with_retries_gives_up_at_its_deadline() -> None:
    attempts = 0

    async def never_ready() -> int:
        nonlocal attempts
        attempts += 1
        raise GroupCoordinatorNotAvailableError

    # Each pause is longer than the deadline: one attempt, then the error, without waiting.
    with pytest.raises(BrokerError, match="still so after 5 s"):
        await with_retries(never_ready, "lag", deadline_s=5, delays=itertools.repeat(10.0))
    assert attempts == 1
