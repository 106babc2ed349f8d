"""The router as a faststream service, exactly once through Kafka transactions.

faststream owns the service: the consumer group, its life cycle and the AsyncAPI
description. It does not do Kafka transactions, so the seam is here and small: each
batch faststream hands over is processed by ``_route_batch``, which produces every
outbound record *and* the batch's consumer offsets in one aiokafka transaction. Readers
use ``read_committed``, so a batch is seen whole or not at all; a router killed mid-batch
is fenced on restart (same transactional id) and its open transaction aborted.

The router consumes every ``liaison.events.<inspectorate>`` topic and ``liaison.outcomes``
in one group. The whole decision per batch is ``consumers.router.Router.step`` (pure).
The state the router keeps, the verified ids it has routed with their signers (so a
re-published event or outcome is routed once, and another signer's reuse of an id is
refused) and the JTAI watch, is rebuilt at start from what it committed before (findings
and outcomes on ``liaison.feed.areas``, considerations on ``liaison.jtai``), and again
after any failed transaction, so it always matches the log. Overdue reminders go only to
programme queues, which are not read back: one re-published after a restart is routed
again, with the same id (derived from the finding and programme), which readers drop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Final

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import Consumer, KafkaMessage
from faststream.kafka.message import FAKE_CONSUMER

from consumers.router import Router
from consumers.rules import RuleSet
from schemas.errors import EnvelopeError
from schemas.jtai import JtaiConsiderationRequested
from schemas.keys import SigningKey, TrustStore
from schemas.records import InboundRecord, OutboundRecord
from schemas.signed import FEED_TYPES, JTAI_TOPIC_TYPES, open_signed
from services.audit_log import audit_outbound
from services.kafka import (
    assigned,
    catch_up,
    faststream_security,
    inbound,
    producer_options,
    tolerate_unparseable,
)
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
    """Trust follower, the pure ``Router`` (state and decisions) and the transactional
    subscriber: the I/O around ``Router.step``."""

    def __init__(self, settings: Settings, rules: RuleSet, bus_key: SigningKey) -> None:
        self._settings = settings
        self._rules = rules
        self._bus_key = bus_key
        self._trust = TrustFollower(settings)
        self._actor = f"router:{settings.router_instance}"
        self._router = self._new_router()
        self._stale = True
        self._log = structlog.get_logger("liaison.router")
        self._producer: AIOKafkaProducer | None = None
        self.failed = asyncio.Event()
        """Set when the router can no longer go on (fenced by another instance)."""
        self.broker = self._build_broker()

    def _new_router(self) -> Router:
        return Router(self._settings.topics, self._rules, self._bus_key, self._actor)

    def _build_broker(self) -> KafkaBroker:
        settings = self._settings
        broker = KafkaBroker(
            settings.bootstrap_servers,
            security=faststream_security(settings),
            logger=self._log,
            log_level=logging.DEBUG,
        )

        subscriber = broker.subscriber(
            *settings.topics.all_events(),
            settings.topics.outcomes,
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
            description="Verify, route and forward every inspectorate's signed events,"
            " and every programme's outcomes back to the publisher.",
        )
        self._subscriber = subscriber

        @subscriber
        async def route_events(message: KafkaMessage, consumer: Consumer) -> None:
            raw = message.raw_message
            await self._route_batch(raw if isinstance(raw, tuple) else (raw,), consumer)

        return broker

    # -- state ------------------------------------------------------------------------------

    async def _rebuild(self) -> None:
        """Routed ids and the JTAI watch, from what earlier transactions committed.

        Only verified envelopes of the types a topic carries count: a record on the feed
        or the JTAI queue that does not verify (anyone with write access could have put it
        there) teaches the router nothing, so it can neither hide a real event as a
        "duplicate" nor fake a claim. The feed gives findings (ids and the JTAI watch) and
        outcomes (ids only); the JTAI queue, which also carries routed findings and the
        JTAI programme's decisions, gives its considerations only.
        """
        settings = self._settings
        topics = settings.topics
        trust, now = self._trust.store, _now()
        router = self._new_router()
        unverifiable: defaultdict[str, int] = defaultdict(int)
        # catch_up, streaming, not services.reading.read_signed (which holds a topic in
        # memory): catch_up compares every partition's position with its end on each pass,
        # so a partition whose tail yields no record (transaction markers, batches a killed
        # router left aborted) cannot hold the start-up back.
        for topic, accept, which in (
            (topics.jtai, JTAI_TOPIC_TYPES, "jtai"),
            (topics.feed, FEED_TYPES, "feed"),
        ):
            async with assigned(settings, topic) as consumer:
                async for batch in catch_up(consumer):
                    for raw in batch:
                        try:
                            opened = open_signed(inbound(raw), trust, now, accept)
                        except EnvelopeError as exc:
                            unverifiable[f"{which}:{exc.reason}"] += 1
                            continue
                        if topic == topics.feed:
                            router.remember(opened)
                        elif isinstance(opened.event, JtaiConsiderationRequested):
                            router.remember_consideration(opened.event)
        if unverifiable:
            self._log.warning("router_state_records_unverifiable", **unverifiable)
        self._router, self._stale = router, False
        self._log.info("router_state_loaded", routed=router.routed)

    # -- one batch, one transaction -----------------------------------------------------------

    async def _route_batch(self, records: Sequence[Any], consumer: AIOKafkaConsumer) -> None:
        if self._stale:
            await self._rebuild()
        first: dict[TopicPartition, int] = {}
        offsets: dict[TopicPartition, int] = {}
        for raw in records:
            tp = TopicPartition(raw.topic, raw.partition)
            first.setdefault(tp, raw.offset)
            offsets[tp] = raw.offset + 1
        batch = [inbound(raw) for raw in records]
        if _unknown_keyids(batch, self._trust.store):
            # A key change is appended before the key is used, but the background follower
            # may not have read it yet: read liaison.keys to its end before judging.
            await self._trust.catch_up()
        outcome = self._router.step(batch, self._trust.store, _now())
        outbound = [
            *outcome.outbound,
            *(audit_outbound(self._settings, a, self._bus_key) for a in outcome.audit),
        ]
        if not await self._commit(outbound, offsets):
            # Nothing of this batch happened: read it again, from a state rebuilt from the log.
            self._stale = True
            for tp, offset in first.items():
                consumer.seek(tp, offset)
            return
        for line in outcome.logs:
            (self._log.warning if line.warning else self._log.info)(line.event, **line.fields)

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
        # faststream builds the consumer as it starts: only now can its fetch be made to
        # judge a record aiokafka cannot parse, instead of failing on it for ever.
        consumer = self._subscriber.consumer
        if consumer is not None:
            tolerate_unparseable(consumer)
        self._log.info("router_started", bootstrap_servers=self._settings.bootstrap_servers)

    async def stop(self) -> None:
        """Stop consuming (finishing the batch in hand), then the producer and key follower."""
        await self.broker.stop()
        if self._producer is not None:
            await self._producer.stop()
        await self._trust.stop()
        self._log.info("router_stopped")


_KEYID_IN_ENVELOPE: Final = re.compile(rb'"keyid"\s*:\s*"([0-9a-f]{64})"')


def _unknown_keyids(records: Sequence[InboundRecord], trust: TrustStore) -> bool:
    """Whether any record names a key id the trust store does not hold (a cheap scan: the
    router's own judgement still parses each envelope strictly)."""
    for record in records:
        for match in _KEYID_IN_ENVELOPE.finditer(record.value[:4096]):
            if trust.get(match.group(1).decode()) is None:
                return True
    return False
