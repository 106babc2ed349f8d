"""The router as a faststream service: exactly once through Kafka transactions, scaled
out by partition number, with state that does not grow with history.

faststream owns the service: the consumer group, its life cycle and the AsyncAPI
description. It does not do Kafka transactions, so the seam is here and small.

Scale-out. Every area-keyed topic has the same partitions and every record is keyed by
its area (``consumers.copartition``), so partition *p* of every events topic and of
``liaison.outcomes`` holds all of some areas' records. A co-partitioning assignor gives
each partition number to one router of the group (as Kafka Streams does with its
tasks), so one router judges every event about an area: one JTAI watch and one memory of
routed ids per area, however many routers run. A verified event on a partition its area
does not give is refused (``wrong_partition``).

One task per partition number owned. Each has its own transactional producer, id
``<prefix>liaison.router.p<p>``, and its own state. On every assignment a task is made
in this order: the producer is started (``init_transactions`` fences whoever used that id
before, a zombie router included, and aborts its open transaction), then the task's
state is loaded from ``liaison.router.state`` partition *p* (read committed), then the
consumer is moved to the input offsets that state records. Every batch of *p* is then
committed in one transaction with everything it decided: the routed records, the audit
records, the changes of state and the new input offsets. So a commit always builds on the
latest committed state, and a router
that lost *p* can never commit for it again: its producer epoch is fenced (it learns so
with ``ProducerFenced`` and drops the task until it is assigned *p* again). Fencing is
by partition set, enforced by the transaction coordinator, because aiokafka's
``send_offsets_to_transaction`` cannot carry the group generation (KIP-447). The consumer
group's offsets are for lag monitoring (and the one rebuild of a partition with no state
yet): they are committed outside the transactions, each after the transaction whose
offsets they are, at most once a second and whenever the router is idle or stops. In a
transaction they cost two more round trips and commit markers on ``__consumer_offsets``,
for every batch.

State (``consumers.router_state``): ids routed within the dedupe horizon
(``LIAISON_ROUTER_DEDUPE_DAYS``), the JTAI watch's retained concerns and claimed windows,
the input offsets. The topic is compacted, so loading reads what is live, not the feed.
A partition with no state yet (the first start after an upgrade) is rebuilt once from
the feed and the JTAI queue, then written. Overdue reminders go only to programme queues:
one re-published after a restart is routed again, with the same id, which readers drop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)
from aiokafka.errors import IllegalOperation, KafkaError, ProducerFenced
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.message import FAKE_CONSUMER

from consumers.copartition import assign_numbers
from consumers.jtai import Evidence, Forgotten
from consumers.router import Router
from consumers.router_state import (
    HEADER_MAC,
    ConcernGroups,
    RoutedGroups,
    StateRecord,
    encode_offsets,
    encode_window_change,
    load_state,
)
from consumers.rules import RuleSet
from schemas.errors import BrokerError, ConfigurationError, EnvelopeError, LiaisonError
from schemas.jtai import JtaiConsiderationRequested
from schemas.keys import SigningKey, TrustStore
from schemas.records import InboundRecord, OutboundRecord
from schemas.signed import FEED_TYPES, JTAI_TOPIC_TYPES, open_signed
from services.audit_log import audit_outbound
from services.kafka import (
    Outage,
    assigned,
    catch_up,
    faststream_security,
    inbound,
    partition_counts,
    producer_options,
    stop_client,
    tolerate_unparseable,
)
from services.settings import Settings
from services.trust import TrustFollower

__all__ = [
    "ASSIGNOR_NAME",
    "RouterService",
    "co_partition_assignor",
    "keep_polling",
    "router_group_id",
    "router_transactional_id",
]

_BATCH = 500  # records per transaction: fewer commits, bounded redelivery after a crash
_POLL_MS: Final = 20
"""How long a poll waits for records (and, finding none, faststream sleeps): the latency an
idle router adds to the next event. faststream's default is 200 ms, and then sleeps 200."""
_IDLE_POLL_S: Final = 1.0
"""How long the router's fetch keeps polling before it hands faststream an empty batch (and
faststream sleeps ``_POLL_MS``): only a router idle this long adds that sleep to the next
event's latency."""
_TXN_RETRY_BACKOFF_MS: Final = 20
"""The router's producers' retry backoff (aiokafka's default is 100 ms). A transaction
begun as the last one's commit markers are still being written is refused for the moment
(KIP-890 verification: ``NOT_ENOUGH_REPLICAS`` to a produce, ``COORDINATOR_NOT_AVAILABLE``
to a TxnOffsetCommit, ``CONCURRENT_TRANSACTIONS`` to AddPartitionsToTxn); each refusal
waited 100 ms, the p99 latency at 200 events a second. Kafka's own client waits 20 ms."""
_GROUP_OFFSETS_S: Final = 1.0
"""How often, at most, a busy router commits its consumer group's offsets."""
_GROUP_OFFSETS_TIMEOUT_S: Final = 5.0
"""How long routing waits for that commit (best effort: the router's offsets are in its
state) before going on without it."""
_RECLAIM_AFTER_S: Final = 30.0
"""A number lost to a fatal producer error but still assigned this long later (so no
other router took it: the group would have rebalanced by now) is taken back."""
ASSIGNOR_NAME: Final = "liaison-copartition"


def router_group_id(settings: Settings) -> str:
    """The router's consumer group (one group, however many router processes run)."""
    return f"{settings.topic_prefix}liaison.router"


def router_transactional_id(settings: Settings, number: int) -> str:
    """The transactional id of the task for partition ``number``: whichever router owns
    that number uses it, so taking the number over fences the router that had it."""
    return f"{settings.topic_prefix}liaison.router.p{number}"


def co_partition_assignor(instance: str) -> type[AbstractPartitionAssignor]:
    """An assignor giving partition *p* of every subscribed topic to one member
    (``consumers.copartition.assign_numbers``); ``instance`` travels in the member's
    metadata so a restarted router gets back the numbers it had."""

    class CoPartitionAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
        name = ASSIGNOR_NAME
        version = 0

        @classmethod
        def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
            return ConsumerProtocolMemberMetadata(cls.version, sorted(topics), instance.encode())

        @classmethod
        def assign(
            cls, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
        ) -> dict[str, ConsumerProtocolMemberAssignment]:
            partitions: dict[str, set[int]] = {}
            for meta in members.values():
                for topic in meta.subscription:
                    partitions[topic] = set(cluster.partitions_for_topic(topic) or ())
            numbers = {n for found in partitions.values() for n in found}
            names = {m: meta.user_data.decode("utf-8", "replace") for m, meta in members.items()}
            owned = assign_numbers(numbers, names)
            return {
                member: ConsumerProtocolMemberAssignment(
                    cls.version,
                    sorted(
                        (topic, [n for n in owned[member] if n in partitions.get(topic, ())])
                        for topic in meta.subscription
                    ),
                    b"",
                )
                for member, meta in members.items()
            }

        @classmethod
        def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
            del assignment

    return CoPartitionAssignor


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


async def _raw_records(message: KafkaMessage) -> tuple[Any, ...]:
    """The batch's records as aiokafka gave them: what the handler is given."""
    raw = message.raw_message
    return raw if isinstance(raw, tuple) else (raw,)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def state_secret(bus_key: SigningKey, topic: str) -> bytes:
    """The MAC key of the router's state records on ``topic``: derived from the bus key
    and the topic's name (prefix included)."""
    raw = bus_key.private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    info = b"liaison router state v1\x00" + topic.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(raw)


@dataclass(slots=True)
class _Task:
    """One partition number this router owns: its producer, decisions and position."""

    number: int
    producer: AIOKafkaProducer
    router: Router
    offsets: dict[str, int]
    """The next offset of each input topic's partition ``number``, as committed."""
    groups: RoutedGroups
    """The records of the state topic that hold the ids routed."""
    concerns: ConcernGroups
    """The records of the state topic that hold the JTAI watch's concerns."""
    stale: bool = False
    """A transaction failed: the state in memory may be ahead of the log."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: RouterService) -> None:
        self._service = service

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self._service.revoke({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        await self._service.assign({tp.partition for tp in assigned})


class RouterService:
    """Trust follower, one task per owned partition number (producer and pure ``Router``)
    and the subscriber: the I/O around ``Router.step``."""

    def __init__(self, settings: Settings, rules: RuleSet, bus_key: SigningKey) -> None:
        self._settings = settings
        self._rules = rules
        self._bus_key = bus_key
        self._secret = state_secret(bus_key, settings.topics.router_state)
        self._trust = TrustFollower(settings)
        self._actor = f"router:{settings.router_instance}"
        self._horizon = dt.timedelta(days=settings.router_dedupe_days)
        self._inputs = (*settings.topics.all_events(), settings.topics.outcomes)
        self._partitions = 0
        self._tasks: dict[int, _Task] = {}
        # number -> when to try opening it again (the loop's clock) and the wait after that:
        # lost to a fatal producer error, or not loaded when assigned.
        self._retry_at: dict[int, tuple[float, float]] = {}
        self._epoch = 0  # assignments and revocations so far
        self._fetch_epoch = 0  # self._epoch when the batch in hand began to be fetched
        # Input offsets committed in transactions, not yet to the consumer group, and when
        # (the loop's clock) a busy router commits them next.
        self._owed: dict[TopicPartition, int] = {}
        self._owed_due = 0.0
        self.loads: dict[int, tuple[int, bool]] = {}
        """For each partition number loaded: state records read, and whether the state was
        rebuilt from the feed (no state yet) rather than loaded."""
        self._lock = asyncio.Lock()
        self._log = structlog.get_logger("liaison.router")
        self._outage = Outage(settings, "router")
        self.failed = asyncio.Event()
        """Set when the router can no longer go on: Kafka refused its transaction (not
        authorised). Losing a partition number to another router is normal work and does
        not set it."""
        self.broker = self._build_broker()

    def _new_router(self) -> Router:
        return Router(
            self._settings.topics,
            self._rules,
            self._bus_key,
            self._actor,
            partitions=self._partitions,
            log_changes=True,
        )

    def _build_broker(self) -> KafkaBroker:
        settings = self._settings
        broker = KafkaBroker(
            # A list: faststream would take "a:9093,b:9093" for one host name.
            [server.strip() for server in settings.bootstrap_servers.split(",") if server.strip()],
            security=faststream_security(settings),
            # Topics are made by `topics apply`, as the operator; the router's principal may
            # not create them (and start() checks they exist).
            allow_auto_create_topics=False,
            logger=self._log,
            log_level=logging.DEBUG,
        )
        subscriber = broker.subscriber(
            *self._inputs,
            batch=True,
            max_records=_BATCH,
            batch_timeout_ms=_POLL_MS,
            fetch_max_wait_ms=_POLL_MS,
            group_id=router_group_id(settings),
            # Static membership: a restarted router takes its place at once, with no wait
            # for the group to notice that the old process is gone.
            group_instance_id=f"{settings.topic_prefix}liaison.router.{settings.router_instance}",
            partition_assignment_strategy=(co_partition_assignor(settings.router_instance),),
            listener=_Rebalance(self),
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            ack_policy=AckPolicy.MANUAL,  # the router commits offsets itself (_commit)
            parser=_raw_batch,
            decoder=_raw_records,
            title="router",
            description="Verify, route and forward every inspectorate's signed events,"
            " and every programme's outcomes back to the publisher.",
        )
        self._subscriber = subscriber

        # The records come as the decoded body, not as injected parameters (the message,
        # the consumer; NoCast too): fast_depends resolves each of those in a thread pool,
        # a task group and a thread hop for every batch.
        @subscriber
        async def route_events(records: Any) -> None:  # noqa: ANN401 - aiokafka's records
            await self._route_batch(records)

        return broker

    @property
    def owned(self) -> frozenset[int]:
        """The partition numbers this router owns now."""
        return frozenset(self._tasks)

    # -- assignment -------------------------------------------------------------------------

    async def revoke(self, numbers: set[int]) -> None:
        """Partitions taken away (every rebalance takes all): stop their tasks, after the
        batch in hand is committed."""
        async with self._lock:
            self._epoch += 1
            for number in sorted(numbers):
                await self._drop(number)
        await self._commit_group_offsets(now=True)

    async def assign(self, numbers: set[int]) -> None:
        """Partitions given: for each number, fence, load its state, move the consumer."""
        async with self._lock:
            self._epoch += 1
            for number in sorted(set(self._tasks) - numbers):
                await self._drop(number)
            self._retry_at.clear()
            for number in sorted(numbers):
                await self._drop(number)  # a new generation: always start again, fenced
                try:
                    await self._open(number)
                except (KafkaError, LiaisonError) as exc:
                    # Tried again when its records arrive (after a short wait, doubling).
                    self._retry_at[number] = (asyncio.get_running_loop().time(), 1.0)
                    self._log.warning(
                        "router_partition_not_loaded", partition=number, error=str(exc)
                    )
            self._log.info("router_assigned", partitions=sorted(self._tasks))

    async def _drop(self, number: int) -> None:
        task = self._tasks.pop(number, None)
        if task is not None:
            try:
                await stop_client(task.producer)
            except KafkaError as exc:  # pragma: no cover - stopping a producer seldom fails
                self._log.warning("router_producer_stop_failed", error=str(exc))

    async def _open(self, number: int) -> None:
        settings = self._settings
        producer = AIOKafkaProducer(
            **producer_options(settings),
            transactional_id=router_transactional_id(settings, number),
            retry_backoff_ms=_TXN_RETRY_BACKOFF_MS,
        )
        try:
            await producer.start()  # init_transactions: fences the last owner of this number
            task = await self._load(number, producer)
        except BaseException:
            await stop_client(producer)
            raise
        self._tasks[number] = task
        self._seek(task)
        # A rebuilt, pruned or fragmented state is written at once, not at the first event.
        task.stale = False
        if not await self._commit(task, (), task.offsets):
            task.stale = True

    async def _load(self, number: int, producer: AIOKafkaProducer) -> _Task:
        """The task's state from ``liaison.router.state`` (or, the first time, the log)."""
        topics = self._settings.topics
        began = asyncio.get_running_loop().time()
        records: list[StateRecord] = []
        async with assigned(self._settings, topics.router_state, partition=number) as consumer:
            async for batch in catch_up(consumer):
                records.extend(
                    StateRecord(
                        number, raw.key or b"", raw.value, dict(raw.headers).get(HEADER_MAC)
                    )
                    for raw in batch
                )
                await asyncio.sleep(0)
        loaded = load_state(self._secret, number, records)
        if loaded.refused:
            self._log.warning(
                "router_state_records_refused", partition=number, count=loaded.refused
            )
        router = self._new_router()
        groups = RoutedGroups(self._secret, number)
        concerns = ConcernGroups(self._secret, number)
        if loaded.offsets is None:
            offsets = await self._rebuild(router, number)
            task = _Task(number, producer, router, offsets, groups, concerns, stale=True)
        else:
            # The groups first: what the restored watch forgets at once (concerns a group
            # still holds but the writer had forgotten) reaches them at the next commit.
            groups.load(loaded.groups)
            concerns.load(loaded.concern_groups)
            router.restore(loaded, _now(), self._horizon)
            task = _Task(number, producer, router, dict(loaded.offsets), groups, concerns)
        self.loads[number] = (len(records), loaded.offsets is None)
        self._log.info(
            "router_state_loaded",
            partition=number,
            routed=router.routed,
            state_records=len(records),
            rebuilt=loaded.offsets is None,
            seconds=round(asyncio.get_running_loop().time() - began, 3),
        )
        return task

    async def _rebuild(self, router: Router, number: int) -> dict[str, int]:
        """No state yet for ``number``: what earlier routers committed (findings and outcomes
        on the feed, considerations on the JTAI queue, partition ``number``), and where the
        group had read to. Only verified envelopes of the types a topic carries count."""
        settings = self._settings
        topics = settings.topics
        trust, now = self._trust.store, _now()
        unverifiable: defaultdict[str, int] = defaultdict(int)
        for topic, accept, which in (
            (topics.jtai, JTAI_TOPIC_TYPES, "jtai"),
            (topics.feed, FEED_TYPES, "feed"),
        ):
            async with assigned(settings, topic, partition=number) as consumer:
                async for batch in catch_up(consumer):
                    for raw in batch:
                        try:
                            opened = open_signed(inbound(raw), trust, now, accept)
                        except EnvelopeError as exc:
                            unverifiable[f"{which}:{exc.reason}"] += 1
                            continue
                        if topic == topics.feed:
                            at = dt.datetime.fromtimestamp(raw.timestamp / 1000, dt.UTC)
                            router.remember(opened, at)
                        elif isinstance(opened.event, JtaiConsiderationRequested):
                            router.remember_consideration(opened.event)
                    await asyncio.sleep(0)
        if unverifiable:
            self._log.warning("router_state_records_unverifiable", **unverifiable)
        router.expire(now, self._horizon)
        consumer = self._consumer()
        offsets: dict[str, int] = {}
        for topic in self._inputs:
            committed = await consumer.committed(TopicPartition(topic, number))
            offsets[topic] = committed if committed is not None and committed >= 0 else 0
        return offsets

    def _consumer(self) -> AIOKafkaConsumer:
        consumer = self._subscriber.consumer
        if consumer is None:  # pragma: no cover - assignment happens only once consuming
            raise BrokerError("the router's consumer is not running")
        return consumer

    def _seek(self, task: _Task) -> None:
        consumer = self._consumer()
        for topic in self._inputs:
            consumer.seek(TopicPartition(topic, task.number), task.offsets.get(topic, 0))

    # -- one batch, one transaction per partition number -----------------------------------

    async def _route_batch(self, records: Sequence[Any]) -> None:
        fetched_in = self._fetch_epoch  # before any await: when this batch was fetched
        by_number: defaultdict[int, list[Any]] = defaultdict(list)
        for raw in records:
            by_number[raw.partition].append(raw)
        async with self._lock:
            if fetched_in != self._epoch:
                # Fetched across an assignment, which moved the consumer to each task's
                # committed offsets: read these again from there (the fetch may have
                # moved the position past them since).
                for number in by_number:
                    task = self._tasks.get(number)
                    if task is not None:
                        self._seek(task)
                return
            # The numbers' transactions are independent (each its own producer, state and
            # partitions): run them together, so a batch waits for the slowest commit, not
            # for the sum of them.
            await asyncio.gather(
                *(self._route_guarded(number, raws) for number, raws in sorted(by_number.items()))
            )
        await self._commit_group_offsets()

    async def _route_guarded(self, number: int, raws: Sequence[Any]) -> None:
        try:
            await self._route_number(number, raws)
        except Exception as exc:  # noqa: BLE001 - one number never takes the batch down
            # A bug or a broker error outside a transaction (reading liaison.keys, say):
            # nothing of it was committed, so the task reads it again from its committed
            # offsets; never skip records the state does not cover.
            self._log.error("router_batch_failed", partition=number, error=type(exc).__name__)
            task = self._tasks.get(number)
            if task is not None:
                task.stale = True
                self._seek(task)

    async def _route_number(self, number: int, raws: Sequence[Any]) -> None:
        task = self._tasks.get(number)
        if task is None:
            # Not ours: its owner reads these from its own state's offsets. Unless the
            # group still gives it to us after we lost it (a fatal error that was no
            # takeover, or a load that failed): then open it again, fenced as on an
            # assignment (it moves the consumer to the state's offsets).
            await self._reclaim(number)
            return
        if task.stale:
            await self._recover(task)
            return  # moved back to the committed offsets: these come again
        await self._route(task, raws)

    async def _route(self, task: _Task, raws: Sequence[Any]) -> None:
        fresh = [raw for raw in raws if raw.offset >= task.offsets.get(raw.topic, 0)]
        if not fresh:
            return
        offsets = dict(task.offsets)
        for raw in fresh:
            offsets[raw.topic] = max(offsets.get(raw.topic, 0), raw.offset + 1)
        batch = [inbound(raw) for raw in fresh]
        if _unknown_keyids(batch, self._trust.store):
            # A key change is appended before the key is used, but the background follower
            # may not have read it yet: read liaison.keys to its end before judging.
            await self._trust.catch_up()
        now = _now()
        outcome = task.router.step(batch, self._trust.store, now)
        task.router.expire(now, self._horizon)
        outbound = [
            *outcome.outbound,
            *(audit_outbound(self._settings, a, self._bus_key) for a in outcome.audit),
        ]
        if not await self._commit(task, outbound, offsets):
            return
        for line in outcome.logs:
            (self._log.warning if line.warning else self._log.info)(line.event, **line.fields)

    async def _commit(
        self, task: _Task, outbound: Sequence[OutboundRecord], offsets: dict[str, int]
    ) -> bool:
        """Produce ``outbound``, the task's changes of state and its new offsets in one
        transaction; on failure the task is stale (or, fenced, dropped)."""
        number, secret = task.number, self._secret
        ids, changes = task.router.drain_changes()
        oldest = int((_now() - self._horizon).timestamp() * 1000)
        recorded = [change for change in changes if isinstance(change, Evidence)]
        forgotten = [change.id for change in changes if isinstance(change, Forgotten)]
        state = [
            *task.groups.add([routed for routed in ids if routed.at_ms >= oldest]),
            *task.concerns.record(recorded),
            *task.concerns.forget(forgotten),
            *(
                encode_window_change(secret, number, change)
                for change in changes
                if not isinstance(change, Evidence | Forgotten)
            ),
            *task.groups.expire(oldest),
            *task.groups.consolidate(),
            *task.concerns.consolidate(),
            encode_offsets(secret, number, offsets),
        ]
        topic = self._settings.topics.router_state
        producer = task.producer
        try:
            async with producer.transaction():
                for out in outbound:
                    sent = await producer.send(
                        out.topic, out.value, key=out.key, headers=list(out.headers)
                    )
                    sent.add_done_callback(_retrieved)
                for record in state:
                    headers = [(HEADER_MAC, record.mac)] if record.mac is not None else []
                    sent = await producer.send(
                        topic, record.value, key=record.key, partition=number, headers=headers
                    )
                    sent.add_done_callback(_retrieved)
        except (ProducerFenced, IllegalOperation) as exc:
            # IllegalOperation: aiokafka's transaction manager met a fatal error (fenced, or
            # refused) while the batch was being sent, and the producer can never commit.
            self._log.warning(
                "router_partition_fenced",
                partition=number,
                error=type(exc).__name__,
                detail="another router took this partition over (or Kafka refused this"
                " producer): dropped until reassigned",
            )
            await self._drop(number)
            self._retry_at[number] = (
                asyncio.get_running_loop().time() + _RECLAIM_AFTER_S,
                _RECLAIM_AFTER_S,
            )
            return False
        except KafkaError as exc:
            task.stale = True
            self._seek(task)  # read the batch again, from the committed offsets
            try:
                self._outage.failed(exc)  # one line when the broker goes, one when it is back
            except KafkaError:
                # Refused (not authorised: the ACLs lack a grant, say): waiting cannot help.
                self._log.error("transaction_refused", partition=number, error=str(exc))
                self.failed.set()
            self._log.debug("transaction_failed", partition=number, error=str(exc))
            return False
        self._outage.recovered()
        task.offsets = offsets
        self._owed.update({TopicPartition(t, number): o for t, o in offsets.items()})
        return True

    async def _owed_now(self) -> None:
        await self._commit_group_offsets(now=True)

    async def _commit_group_offsets(self, *, now: bool = False) -> None:
        """Commit the consumer group's offsets owed (for lag monitoring), if a second has
        passed since the last time or ``now``; for partitions still assigned only.
        Best effort: the router's own offsets are in its state."""
        loop = asyncio.get_running_loop()
        if not self._owed or (not now and loop.time() < self._owed_due):
            return
        consumer = self._subscriber.consumer
        owed, self._owed = self._owed, {}
        self._owed_due = loop.time() + _GROUP_OFFSETS_S
        if consumer is None:
            return
        assigned = consumer.assignment()
        owed = {tp: offset for tp, offset in owed.items() if tp in assigned}
        if not owed:
            return
        try:
            await asyncio.wait_for(consumer.commit(owed), _GROUP_OFFSETS_TIMEOUT_S)
        except (KafkaError, TimeoutError) as exc:  # a rebalance, the broker away: next time
            self._log.debug("router_group_offsets_not_committed", error=type(exc).__name__)

    async def _reclaim(self, number: int) -> None:
        retry = self._retry_at.get(number)
        now = asyncio.get_running_loop().time()
        if retry is None or now < retry[0]:
            return
        assigned_now = {tp.partition for tp in self._consumer().assignment()}
        if number not in assigned_now:
            return
        try:
            await self._open(number)
        except (KafkaError, LiaisonError) as exc:
            wait = min(retry[1] * 2, _RECLAIM_AFTER_S)
            self._retry_at[number] = (now + wait, wait)
            self._log.debug("router_partition_recovering", partition=number, error=str(exc))
            return
        del self._retry_at[number]
        self._log.info("router_partition_reclaimed", partition=number)

    async def _recover(self, task: _Task) -> None:
        """After a failed transaction: start the task again (fence, load, seek), as on an
        assignment; if the broker is still away, try again at the next batch."""
        number = task.number
        await self._drop(number)
        try:
            await self._open(number)
        except (KafkaError, LiaisonError) as exc:
            # The broker is still away (logged once, by the outage): again next batch.
            self._log.debug("router_partition_recovering", partition=number, error=str(exc))
            self._tasks[number] = task  # still ours: stale, tried again next batch
            self._seek(task)
            return
        self._log.info("router_partition_recovered", partition=number)

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load trust, check co-partitioning, then join the group (tasks load on assignment)."""
        await self._trust.start()
        topics = self._settings.topics
        shaped = (*self._inputs, topics.feed, topics.jtai, topics.router_state)
        counts = await partition_counts(self._settings, shaped)
        if len(set(counts.values())) != 1:
            listed = ", ".join(f"{t} {n}" for t, n in sorted(counts.items()))
            msg = (
                "the router needs every area-keyed topic to have the same number of"
                f" partitions (co-partitioned by area): {listed}"
            )
            raise ConfigurationError(msg)
        self._partitions = next(iter(counts.values()))
        await self.broker.start()
        # faststream builds the consumer as it starts: only now can its fetch be made to
        # judge a record aiokafka cannot parse, instead of failing on it for ever.
        consumer = self._subscriber.consumer
        if consumer is not None:
            tolerate_unparseable(consumer)
            self._note_fetches(consumer)
        self._log.info("router_started", bootstrap_servers=self._settings.bootstrap_servers)

    def _note_fetches(self, consumer: AIOKafkaConsumer) -> None:
        """Note, as each fetch begins, the assignments so far: a batch fetched before an
        assignment is one the assignment's seeks have overtaken. A fetch that finds
        nothing polls again (``keep_polling``)."""

        def note() -> None:
            self._fetch_epoch = self._epoch

        getmany = keep_polling(
            consumer.getmany, idle_s=_IDLE_POLL_S, before_each=note, idle=self._owed_now
        )
        consumer.getmany = getmany

    async def stop(self) -> None:
        """Stop consuming (finishing the batch in hand), then the producers and key follower."""
        async with self._lock:
            await self._commit_group_offsets(now=True)
        await self.broker.stop()
        async with self._lock:
            for number in list(self._tasks):
                await self._drop(number)
        await self._trust.stop()
        self._log.info("router_stopped")


Fetch: TypeAlias = Callable[..., Awaitable[dict[TopicPartition, list[Any]]]]
"""``AIOKafkaConsumer.getmany``'s shape."""


def keep_polling(
    fetch: Fetch,
    *,
    idle_s: float,
    before_each: Callable[[], None],
    idle: Callable[[], Awaitable[None]] | None = None,
) -> Fetch:
    """``fetch`` (a consumer's ``getmany``) that, finding nothing, polls again for up to
    ``idle_s`` before it returns empty; ``before_each`` runs as each poll begins, ``idle``
    after each poll that found nothing.

    faststream sleeps after an empty batch, and an event arriving during that sleep waits
    it out: only a consumer idle for ``idle_s`` now pays it. A poll without a timeout
    returns at once, as before.
    """
    loop = asyncio.get_running_loop()

    async def getmany(
        *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Any]]:
        idle_until = loop.time() + idle_s
        while True:
            before_each()
            got = await fetch(*partitions, timeout_ms=timeout_ms, max_records=max_records)
            if got or timeout_ms <= 0 or loop.time() >= idle_until:
                return got
            if idle is not None:
                await idle()

    return getmany


def _retrieved(sent: asyncio.Future[Any]) -> None:
    """Take a delivery's outcome: the transaction's own commit (or its failure) is what
    the router acts on, and a delivery failed by a fence would otherwise be logged as an
    exception never retrieved."""
    if not sent.cancelled():
        sent.exception()


_KEYID_IN_ENVELOPE: Final = re.compile(rb'"keyid"\s*:\s*"([0-9a-f]{64})"')


def _unknown_keyids(records: Sequence[InboundRecord], trust: TrustStore) -> bool:
    """Whether any record names a key id the trust store does not hold (a cheap scan of
    where a DSSE envelope's signatures are, after its payload: the router's own judgement
    still parses each envelope strictly)."""
    for record in records:
        start = max(record.value.rfind(b'"signatures"'), 0)
        for match in _KEYID_IN_ENVELOPE.finditer(record.value[start : start + 4096]):
            if trust.get(match.group(1).decode()) is None:
                return True
    return False
