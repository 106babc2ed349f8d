"""What a user sees of aiokafka's logs: conditions it retries by itself are not failures."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from aiokafka.errors import (
    GroupCoordinatorNotAvailableError,
    KafkaConnectionError,
    KafkaError,
    NotEnoughReplicasError,
    TopicAuthorizationFailedError,
)

from services.log import TransientKafkaFilter, configure_logging


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(
    msg: str,
    *args: object,
    level: int = logging.WARNING,
    name: str = "aiokafka.producer.sender",
    exc_info: bool = False,
) -> logging.LogRecord:
    info = None
    if exc_info:
        try:
            raise RuntimeError("boom")  # noqa: TRY301 - a real exc_info for the record
        except RuntimeError:
            import sys  # noqa: PLC0415 - only here

            info = sys.exc_info()
    return logging.LogRecord(name, level, __file__, 1, msg, args, info)


NOT_ENOUGH_REPLICAS = (
    "Got error produce response on topic-partition %s, retrying. Error: %s",
    "liaison.audit-0",
    NotEnoughReplicasError,
)
NO_COORDINATOR = ("Group Coordinator Request failed: %s", GroupCoordinatorNotAvailableError())
REFUSED = ("Unable connect to node with id %s: %s", 1, KafkaConnectionError("refused"))
REBALANCING = ("Heartbeat failed for group %s because it is rebalancing", "liaison.router")
TRANSIENT = [NOT_ENOUGH_REPLICAS, NO_COORDINATOR, REFUSED, REBALANCING]


@pytest.mark.parametrize("condition", TRANSIENT)
def test_transient_conditions_are_demoted_to_debug(condition: tuple[object, ...]) -> None:
    hidden = TransientKafkaFilter(show_debug=False, clock=Clock())
    shown = TransientKafkaFilter(show_debug=True, clock=Clock())
    level = logging.ERROR if condition is NO_COORDINATOR else logging.WARNING
    first, second = record(*condition, level=level), record(*condition, level=level)  # type: ignore[arg-type]
    assert hidden.filter(first) is False
    assert shown.filter(second) is True
    assert (second.levelno, second.levelname) == (logging.DEBUG, "DEBUG")


@pytest.mark.parametrize(
    "kept",
    [
        record("Heartbeat failed: %r", KafkaError("Unexpected exception"), level=logging.ERROR),
        record("Could not add partition %s: %s", "t-0", TopicAuthorizationFailedError),
        record("Unexpected error in sender routine", level=logging.ERROR, exc_info=True),
        record(*NO_COORDINATOR, name="liaison.router"),  # ours: never demoted
        record("Sending username and password in the clear"),
    ],
)
def test_real_failures_stay_visible(kept: logging.LogRecord) -> None:
    level = kept.levelno
    assert TransientKafkaFilter(show_debug=False, clock=Clock()).filter(kept) is True
    assert kept.levelno == level


def test_a_condition_that_lasts_is_shown_once_then_again_after_it_cleared() -> None:
    clock = Clock()
    only = TransientKafkaFilter(show_debug=False, lasting_s=30, clock=clock)

    def seen_at(t: float) -> bool:
        clock.now = t
        return only.filter(record(*NOT_ENOUGH_REPLICAS))

    assert [seen_at(t) for t in (0, 10, 20, 29)] == [False] * 4
    lasting = record(*NOT_ENOUGH_REPLICAS)
    clock.now = 31
    assert only.filter(lasting) is True
    assert lasting.levelno == logging.WARNING
    assert "still so after 31 s" in lasting.getMessage()
    assert [seen_at(t) for t in (40, 60, 80)] == [False] * 3  # once per episode
    # Quiet for longer than lasting_s: it had cleared; a new episode starts unseen.
    assert [seen_at(t) for t in (200, 220, 231)] == [False, False, True]
    # Other conditions are timed on their own.
    clock.now = 232
    assert only.filter(record(*REFUSED)) is False


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.mark.usefixtures("restored_logging")
def test_configured_logging_hides_retries_and_shows_failures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    sender = logging.getLogger("aiokafka.producer.sender")
    for _ in range(20):
        sender.warning(*NOT_ENOUGH_REPLICAS)
    logging.getLogger("aiokafka.consumer.group_coordinator").error(*NO_COORDINATOR)
    sender.error("Could not add partition %s: %s", "t-0", TopicAuthorizationFailedError)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    refused = "<class 'aiokafka.errors.TopicAuthorizationFailedError'>"
    assert [(line["level"], line["event"]) for line in lines] == [
        ("error", f"Could not add partition t-0: {refused}")
    ]


@pytest.mark.usefixtures("restored_logging")
def test_debug_logging_shows_the_retries_as_debug(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG", "json")
    logging.getLogger("aiokafka.consumer.group_coordinator").error(*NO_COORDINATOR)
    (line,) = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert line["level"] == "debug"
