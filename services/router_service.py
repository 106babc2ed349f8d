"""The router as a faststream service, exactly once through Kafka transactions.

faststream owns the service: the consumer group, its life cycle and the AsyncAPI
description. It does not do Kafka transactions, so the seam is here and small: each
batch faststream hands over is processed by ``_route_batch``, which produces every
outbound record *and* the batch's consumer offsets in one aiokafka transaction. Readers
use ``read_committed``, so a batch is seen whole or not at all; a router killed mid-batch
is fenced on restart (same transactional id) and its open transaction aborted.

The decision per record is ``consumers.router.plan`` (pure). The state the router keeps,
the ids it has routed (so a re-published event is routed once) and the JTAI watch, is
rebuilt at start from what it committed before (``liaison.feed.areas`` and
``liaison.jtai``), and again after any failed transaction, so it always matches the log.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import Consumer, KafkaMessage
from faststream.kafka.message import FAKE_CONSUMER

from consumers.jtai import JtaiWatch
from consumers.router import Plan, plan
from consumers.rules import RuleSet
from schemas.audit import (
    AuditRecord,
    ConsiderationEmitted,
    DuplicateIgnored,
    EventQuarantined,
    EventRouted,
    EventUnrouted,
    RouteTaken,
)
from schemas.envelope import open_consideration, open_envelope, seal_consideration
from schemas.errors import EnvelopeError
from schemas.events import ConcernRaised
from schemas.jtai import JTAI_CONSIDERATION_REQUESTED, JtaiConsiderationRequested
from schemas.keys import SigningKey
from schemas.records import HEADER_EVENT_ID, HEADER_TYPE, OutboundRecord, event_headers, header_map
from services.audit_log import audit_outbound
from services.kafka import assigned, catch_up, inbound, producer_options
from services.settings import Settings
from services.trust import TrustFollower

__all__ = ["RouterService", "router_group_id", "router_transactional_id"]

_BATCH = 500  # records per transaction: fewer commits, bounded redelivery after a crash


def router_group_id(settings: Settings) -> str:
    """The router's consumer group (one group, however many router processes run)."""
    return f"{settings.topic_prefix}liaison.router"


def router_transactional_id(settings: Settings) -> str:
    """Stable per router instance, so a restarted router fences its killed predecessor."""
    return f"{settings.topic_prefix}liaison.router.{settings.router_instance}"


async def _raw_batch(message: tuple[Any, ...]) -> KafkaMessage:
    """faststream's parser decodes every header as UTF-8 and would fail on a hostile
    record; the router wants the records untouched (it verifies them itself)."""
    first = message[0]
    return KafkaMessage(
        body=b"",
        headers={},
        batch_headers=[],
        raw_message=message,
        message_id=f"{first.topic}-{first.partition}-{first.offset}",
        consumer=FAKE_CONSUMER,
    )


async def _no_decode(message: KafkaMessage) -> None:
    del message


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RouterService:
    """Trust follower, routed-id memory, JTAI watch and the transactional subscriber."""

    def __init__(self, settings: Settings, rules: RuleSet, bus_key: SigningKey) -> None:
        self._settings = settings
        self._rules = rules
        self._bus_key = bus_key
        self._trust = TrustFollower(settings)
        self._routed: set[str] = set()
        self._watch = self._new_watch()
        self._stale = True
        self._log = structlog.get_logger("liaison.router")
        self._actor = f"router:{settings.router_instance}"
        self._producer: AIOKafkaProducer | None = None
        self.failed = asyncio.Event()
        """Set when the router can no longer go on (fenced by another instance)."""
        self.broker = self._build_broker()

    def _new_watch(self) -> JtaiWatch:
        jtai = self._rules.jtai
        return JtaiWatch(dt.timedelta(days=jtai.window_days), jtai.min_inspectorates)

    def _build_broker(self) -> KafkaBroker:
        settings = self._settings
        broker = KafkaBroker(settings.bootstrap_servers, logger=self._log, log_level=logging.DEBUG)

        @broker.subscriber(
            *settings.topics.all_events(),
            batch=True,
            max_records=_BATCH,
            group_id=router_group_id(settings),
            # Static membership: a restarted router takes its place at once, with no wait
            # for the group to notice that the old process is gone.
            group_instance_id=router_transactional_id(settings),
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            ack_policy=AckPolicy.MANUAL,  # offsets are committed inside each transaction
            parser=_raw_batch,
            decoder=_no_decode,
            title="router",
            description="Verify, route and forward every inspectorate's signed events.",
        )
        async def route_events(message: KafkaMessage, consumer: Consumer) -> None:
            raw = message.raw_message
            await self._route_batch(raw if isinstance(raw, tuple) else (raw,), consumer)

        return broker

    # -- state ------------------------------------------------------------------------------

    async def _rebuild(self) -> None:
        """Routed ids and the JTAI watch, from what earlier transactions committed."""
        settings = self._settings
        trust, now = self._trust.store, _now()
        watch = self._new_watch()
        async with assigned(settings, settings.topics.jtai) as consumer:
            async for batch in catch_up(consumer):
                for raw in batch:
                    if (
                        header_map(raw.headers).get(HEADER_TYPE)
                        != JTAI_CONSIDERATION_REQUESTED.encode()
                    ):
                        continue
                    try:
                        watch.replay_emission(open_consideration(inbound(raw), trust, now).event)
                    except EnvelopeError as exc:
                        self._log.warning("jtai_record_unverifiable", reason=str(exc.reason))
        routed: set[str] = set()
        async with assigned(settings, settings.topics.feed) as consumer:
            async for batch in catch_up(consumer):
                for raw in batch:
                    event_id = header_map(raw.headers).get(HEADER_EVENT_ID)
                    if event_id:
                        routed.add(event_id.decode())
                    try:
                        event = open_envelope(inbound(raw), trust, now).event
                    except EnvelopeError as exc:
                        self._log.warning("feed_record_unverifiable", reason=str(exc.reason))
                        continue
                    if isinstance(event, ConcernRaised):
                        watch.replay_concern(event)
        self._routed, self._watch, self._stale = routed, watch, False
        self._log.info("router_state_loaded", routed=len(routed))

    def _consideration(self, event: JtaiConsiderationRequested, now: dt.datetime) -> OutboundRecord:
        sealed = seal_consideration(event, self._bus_key, now)
        return OutboundRecord(
            topic=self._settings.topics.jtai,
            key=event.area.encode(),
            value=sealed.envelope,
            headers=event_headers(event),
        )

    def _audit(self, record: AuditRecord) -> OutboundRecord:
        return audit_outbound(self._settings, record)

    def _decision_record(self, decision: Plan, now: dt.datetime) -> AuditRecord:
        """One audit record per routing decision, naming every destination and rule."""
        event = decision.event
        assert event is not None  # noqa: S101 - only verified events are routed
        topics = self._settings.topics
        if not decision.destinations:
            return EventUnrouted(
                at=now, actor=self._actor, event_ids=(event.id,), inspectorate=event.source,
                area=event.area,
            )  # fmt: skip
        rules: defaultdict[str, list[str]] = defaultdict(list)
        for destination in decision.destinations:
            rules[topics.programme(destination.programme)].append(destination.rule)
        taken = [RouteTaken(topic=topic, rules=tuple(sorted(r))) for topic, r in rules.items()]
        return EventRouted(
            at=now, actor=self._actor, event_ids=(event.id,), inspectorate=event.source,
            area=event.area, destinations=(*taken, RouteTaken(topic=topics.feed)),
        )  # fmt: skip

    # -- one batch, one transaction -----------------------------------------------------------

    async def _route_batch(self, records: Sequence[Any], consumer: AIOKafkaConsumer) -> None:
        if self._stale:
            await self._rebuild()
        topics, now = self._settings.topics, _now()
        outbound: list[OutboundRecord] = []
        first: dict[TopicPartition, int] = {}
        offsets: dict[TopicPartition, int] = {}
        new_ids: set[str] = set()
        decisions: list[tuple[dict[str, Any], str, dict[str, Any]]] = []
        for raw in records:
            tp = TopicPartition(raw.topic, raw.partition)
            first.setdefault(tp, raw.offset)
            offsets[tp] = raw.offset + 1
            record = inbound(raw)
            decision = plan(record, topics, self._trust.store, now, self._rules.rules)
            event = decision.event
            context: dict[str, Any] = {
                "topic": raw.topic,
                "partition": raw.partition,
                "offset": raw.offset,
            }
            if decision.refused is not None:
                outbound.extend(decision.outbound)
                outbound.append(self._audit(EventQuarantined(
                    at=now, actor=self._actor, reason=str(decision.refused.reason),
                    source_topic=raw.topic, partition=raw.partition, offset=raw.offset,
                    detail=str(decision.refused)[:500],
                )))  # fmt: skip
                decisions.append(
                    (context, "event_quarantined", {"reason": str(decision.refused.reason)})
                )
                continue
            assert event is not None  # noqa: S101 - a plan refuses or carries an event
            context |= {
                "event_id": str(event.id),
                "inspectorate": event.source.value,
                "area": event.area,
            }
            if str(event.id) in self._routed or str(event.id) in new_ids:
                decisions.append((context, "event_duplicate_ignored", {}))
                outbound.append(self._audit(DuplicateIgnored(
                    at=now, actor=self._actor, event_ids=(event.id,), inspectorate=event.source,
                )))  # fmt: skip
                continue
            new_ids.add(str(event.id))
            outbound.extend(decision.outbound)
            outbound.append(self._audit(self._decision_record(decision, now)))
            decisions.append((context, "event_routed", {
                "destinations": sorted({d.programme.value for d in decision.destinations}),
                "rules": sorted({d.rule for d in decision.destinations}),
            }))  # fmt: skip
            if isinstance(event, ConcernRaised):
                consideration = self._watch.observe(event)
                if consideration is not None:
                    outbound.append(self._consideration(consideration, now))
                    outbound.append(self._audit(ConsiderationEmitted(
                        at=now, actor=self._actor,
                        event_ids=consideration.contributing_event_ids,
                        consideration_id=consideration.id, area=consideration.area,
                        theme=consideration.theme, trigger=consideration.trigger,
                    )))  # fmt: skip
                    decisions.append((context, "jtai_consideration_requested", {
                        "consideration_id": str(consideration.id),
                        "trigger": consideration.trigger.value,
                        "contributors": [str(i) for i in consideration.contributing_event_ids],
                    }))  # fmt: skip
        if not await self._commit(outbound, offsets):
            # Nothing of this batch happened: read it again, from a state rebuilt from the log.
            self._stale = True
            for tp, offset in first.items():
                consumer.seek(tp, offset)
            return
        self._routed |= new_ids
        for context, what, details in decisions:
            level = self._log.warning if what == "event_quarantined" else self._log.info
            level(what, **context, **details)

    async def _commit(
        self, outbound: Sequence[OutboundRecord], offsets: dict[TopicPartition, int]
    ) -> bool:
        producer = self._producer
        assert producer is not None  # noqa: S101 - started before the subscriber
        try:
            async with producer.transaction():
                for out in outbound:
                    await producer.send(
                        out.topic, out.value, key=out.key, headers=list(out.headers)
                    )
                await producer.send_offsets_to_transaction(offsets, router_group_id(self._settings))
        except ProducerFenced:
            self._log.error(
                "router_fenced", detail="another router took over this transactional id"
            )
            self.failed.set()
            raise
        except KafkaError as exc:
            self._log.error("transaction_failed", error=str(exc), records=len(outbound))
            return False
        return True

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load trust and state, fence any predecessor, then start consuming."""
        await self._trust.start()
        self._producer = AIOKafkaProducer(
            **producer_options(self._settings),
            transactional_id=router_transactional_id(self._settings),
        )
        await self._producer.start()  # init_transactions: fences and aborts a killed router
        await self._rebuild()
        await self.broker.start()
        self._log.info("router_started", bootstrap_servers=self._settings.bootstrap_servers)

    async def stop(self) -> None:
        """Stop consuming (finishing the batch in hand), then the producer and key follower."""
        await self.broker.stop()
        if self._producer is not None:
            await self._producer.stop()
        await self._trust.stop()
        self._log.info("router_stopped")
