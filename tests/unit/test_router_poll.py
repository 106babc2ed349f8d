"""The router's fetch polls again when it finds nothing (faststream sleeps after an empty
batch): ``keep_polling`` with a scripted ``getmany``."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition

from services.router_service import keep_polling

TP = TopicPartition("t", 0)


class Script:
    """A ``getmany`` answering from a list, noting what it was asked."""

    def __init__(self, *answers: dict[TopicPartition, list[Any]]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[tuple[TopicPartition, ...], int, int | None]] = []

    async def __call__(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Any]]:
        self.calls.append((partitions, timeout_ms, max_records))
        return self.answers.pop(0) if self.answers else {}


async def test_empty_polls_are_repeated_until_records_come() -> None:
    script = Script({}, {}, {TP: ["r"]})
    began: list[int] = []
    idled: list[int] = []

    async def idle() -> None:
        idled.append(len(script.calls))

    fetch = keep_polling(script, idle_s=60, before_each=lambda: began.append(1), idle=idle)
    assert await fetch(TP, timeout_ms=20, max_records=500) == {TP: ["r"]}
    # every poll asked the same, and each was noted as it began
    assert script.calls == [((TP,), 20, 500)] * 3
    assert len(began) == 3
    assert idled == [1, 2]  # after each empty poll, not after the one with records


async def test_an_idle_consumer_gets_its_empty_batch_after_idle_s() -> None:
    script = Script()
    fetch = keep_polling(script, idle_s=0.05, before_each=lambda: None)
    assert await fetch(timeout_ms=1) == {}
    assert len(script.calls) > 1


async def test_a_poll_without_a_timeout_returns_at_once() -> None:
    script = Script()
    fetch = keep_polling(script, idle_s=60, before_each=lambda: None)
    assert await fetch(timeout_ms=0) == {}
    assert len(script.calls) == 1
