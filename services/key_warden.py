"""The key warden: every refused ``liaison.keys`` record quarantined and audited, once.

Every reader of ``liaison.keys`` refuses a bad record on its own (``services.trust``);
the warden is the one that reports it. It replays the topic with the same pure judge
(``schemas.trust_root.judge_key_record``) and, for each record refused, produces a
quarantine record (``reason``: the ``KeyRefusal`` code) and an ``EventQuarantined`` audit
record (``source_topic`` ``liaison.keys``, actor ``audit:key-warden``, sealed with the
audit service's key) in one Kafka transaction with its consumer group's offset. A warden
killed mid-batch is fenced on restart (same transactional id) and its open transaction
aborted, so each refusal is reported exactly once. The judge's state up to the committed
offset is rebuilt at start by judging the records before it again (no side effects).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
from collections.abc import Sequence

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from schemas.audit import EventQuarantined
from schemas.keys import SigningKey
from schemas.quarantine import MAX_DETAIL_CHARS, quarantined
from schemas.records import InboundRecord, OutboundRecord
from schemas.trust_root import KeyRecordRefused, TrustRoot, TrustState
from services.audit_log import audit_outbound
from services.kafka import (
    Outage,
    assigned,
    committed_offsets,
    inbound,
    producer_options,
    stop_client,
)
from services.settings import Settings
from services.trust import judge_inbound, load_root

__all__ = ["KeyWarden", "key_warden_group_id", "refusal_records"]

_BATCH = 500
_log = structlog.get_logger("liaison.key_warden")


def key_warden_group_id(settings: Settings) -> str:
    """The warden's consumer group (and transactional id): one warden per deployment."""
    return f"{settings.topic_prefix}liaison.key-warden"


def refusal_records(
    settings: Settings,
    record: InboundRecord,
    refused: KeyRecordRefused,
    now: dt.datetime,
    *,
    actor: str,
    key: SigningKey,
) -> tuple[OutboundRecord, OutboundRecord]:
    """The quarantine record and the sealed audit record of one refused key record."""
    code = refused.reason.value
    detail = f"key record refused: {refused.detail}"[:MAX_DETAIL_CHARS]
    kept = quarantined(record, code, detail, now)
    audit = EventQuarantined(
        at=now,
        actor=actor,
        reason=code,
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        detail=detail,
        raw_sha256=hashlib.sha256(record.value).hexdigest(),
    )
    return (
        OutboundRecord(
            topic=settings.topics.quarantine,
            key=f"{record.topic}/{record.partition}/{record.offset}".encode(),
            value=kept.to_bytes(),
            headers=(("reason", code.encode()),),
        ),
        audit_outbound(settings, audit, key),
    )


class KeyWarden:
    """Quarantines and audits every refused key record, exactly once (see the module)."""

    def __init__(
        self,
        settings: Settings,
        audit_key: SigningKey,
        *,
        root: TrustRoot | None = None,
        actor: str = "audit:key-warden",
    ) -> None:
        self._settings = settings
        self._key = audit_key
        self._root = root
        self._actor = actor
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._resources = contextlib.AsyncExitStack()
        self.reported = 0
        """Refusals quarantined and audited by this process."""

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The running loop (its failure ends the service)."""
        return self._task

    async def start(self) -> None:
        """Fence any predecessor, open the topic, then judge it in the background."""
        settings = self._settings
        root = self._root or load_root(settings)
        producer = AIOKafkaProducer(
            **producer_options(settings), transactional_id=key_warden_group_id(settings)
        )
        self._producer = producer
        try:
            await producer.start()  # init_transactions: fences and aborts a killed warden
            committed = await committed_offsets(settings, key_warden_group_id(settings))
            consumer = await self._resources.enter_async_context(
                assigned(settings, settings.topics.keys, committed_only=False)
            )
            await consumer.seek_to_beginning()
        except BaseException:
            await self.stop()
            raise
        done = max(committed.get((settings.topics.keys, 0), 0), 0)
        self._task = asyncio.create_task(self._run(root, producer, consumer, done))

    async def _run(
        self, root: TrustRoot, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer, done: int
    ) -> None:
        """Judge every record in order; report refusals from offset ``done`` on (those
        before it were reported by an earlier warden)."""
        tp = TopicPartition(self._settings.topics.keys, 0)
        state = TrustState()
        outage = Outage(self._settings, "key-warden")
        while True:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=_BATCH)
            records = [inbound(raw) for raw in batch.get(tp, [])]
            if not records:
                continue
            after, outbound = self._judge(records, root, state, done)
            end = records[-1].offset + 1
            if end <= done:  # replayed only to rebuild the state
                state = after
            elif await self._commit(producer, outbound, {tp: end}, outage):
                state, done = after, end
                self.reported += len(outbound) // 2
            else:  # nothing of it happened: read it again, from the state before it
                consumer.seek(tp, records[0].offset)

    def _judge(
        self, records: Sequence[InboundRecord], root: TrustRoot, state: TrustState, done: int
    ) -> tuple[TrustState, list[OutboundRecord]]:
        """The state after ``records`` and what reports the refusals at or after ``done``."""
        now = dt.datetime.now(dt.UTC)
        outbound: list[OutboundRecord] = []
        for record in records:
            judged = judge_inbound(record, root, state)
            if not isinstance(judged, KeyRecordRefused):
                state = judged
            elif record.offset >= done:
                outbound.extend(
                    refusal_records(
                        self._settings, record, judged, now, actor=self._actor, key=self._key
                    )
                )
        return state, outbound

    async def _commit(
        self,
        producer: AIOKafkaProducer,
        outbound: Sequence[OutboundRecord],
        offsets: dict[TopicPartition, int],
        outage: Outage,
    ) -> bool:
        """The reports and the offsets in one transaction; ``False`` (after a backoff,
        logged once per outage) if it failed and nothing of it happened."""
        try:
            async with producer.transaction():
                for out in outbound:
                    await producer.send(
                        out.topic, out.value, key=out.key, headers=list(out.headers)
                    )
                await producer.send_offsets_to_transaction(
                    offsets, key_warden_group_id(self._settings)
                )
        except ProducerFenced:
            _log.error("key_warden_fenced", detail="another warden took over")
            raise
        except KafkaError as exc:
            await outage.pause(exc)  # raised again unless retriable
            return False
        outage.recovered()
        for out in outbound:
            if out.topic == self._settings.topics.quarantine:
                _log.warning("key_record_quarantined", key=out.key.decode() if out.key else "")
        return True

    async def stop(self) -> None:
        """Stop (a batch in hand is reported whole or not at all)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._resources.aclose()
        if self._producer is not None:
            await stop_client(self._producer)
