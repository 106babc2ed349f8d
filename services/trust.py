"""The bus's trust store: signed key changes on ``liaison.keys``, judged and followed.

Each record is one ``SignedKeyChange`` (record key ``v<version>``; value: the DSSE
envelope), signed by at least the threshold of root keys pinned in this deployment's
``root.json`` (``load_root``), which is read from a file and never learnt from Kafka.
Readers replay the whole topic in order before they verify anything, judging each record
with the pure ``schemas.trust_root.judge_key_record`` at the broker's append time, then
follow it, so a key added or revoked while a consumer runs takes effect without a
restart. A refused record changes nothing; it is logged here by reason and offset only
(the key warden, ``services.key_warden``, quarantines and audits it, once).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from schemas.errors import ConfigurationError, SchemaError
from schemas.keys import TrustStore
from schemas.records import InboundRecord, OutboundRecord
from schemas.trust_root import (
    KeyRecordRefused,
    KeyRefusal,
    SignedKeyChange,
    TrustRoot,
    TrustState,
    decode_trust_root,
    judge_key_record,
)
from services.kafka import assigned, inbound, kafka_sink, with_retries
from services.keystore import trust_root_path
from services.settings import Settings

__all__ = [
    "TrustFollower",
    "judge_inbound",
    "load_root",
    "load_trust",
    "load_trust_state",
    "publish_key_change",
]

_log = structlog.get_logger("liaison.trust")

_LOG_APPEND_TIME = 1  # Kafka's timestamp type: the broker stamped the record
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_REFUSALS_KEPT = 1000


def load_root(settings: Settings) -> TrustRoot:
    """The pinned trust root (``LIAISON_TRUST_ROOT``, default ``root.json`` in the local
    key store); a missing or invalid file is one ``ConfigurationError`` naming it."""
    path = trust_root_path(settings)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(
            f"no trust root is pinned at {path}: run `liaison keys root init` (or set"
            " LIAISON_TRUST_ROOT to the deployment's root.json)"
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read the trust root {path}: {exc.strerror}") from None
    try:
        return decode_trust_root(data)
    except SchemaError as exc:
        raise ConfigurationError(
            f"{path} is not a trust root ({exc}); restore the deployment's root.json"
            " (or run `liaison keys root init` for a new one)"
        ) from None


async def publish_key_change(settings: Settings, signed: SignedKeyChange) -> int:
    """Produce a signed key change to ``liaison.keys``; its offset once the broker has it."""
    async with kafka_sink(settings) as sink:
        delivery = await sink.send(
            OutboundRecord(
                topic=settings.topics.keys,
                key=f"v{signed.change.version}".encode(),
                value=signed.envelope(),
            )
        )
    return int(delivery.offset)


def judge_inbound(
    record: InboundRecord, root: TrustRoot, state: TrustState
) -> TrustState | KeyRecordRefused:
    """The state after one record read from ``liaison.keys``, or why it was refused.

    Only the broker's append time counts: a record stamped with the producer's own time
    (a topic not configured ``LogAppendTime``) is refused, whatever it holds.
    """
    if record.timestamp_type != _LOG_APPEND_TIME or record.timestamp_ms < 0:
        return KeyRecordRefused(
            KeyRefusal.NOT_APPEND_TIME, "not stamped with the broker's append time"
        )
    appended_at = _EPOCH + dt.timedelta(milliseconds=record.timestamp_ms)
    return judge_key_record(record.value, appended_at, root, state)


class TrustFollower:
    """Reads ``liaison.keys`` to its end, then keeps ``store`` current in the background.

    ``catch_up()`` reads to the end now (a reader that meets an unknown key id calls it
    before it refuses). ``refusals`` holds the latest refused records by offset.
    """

    def __init__(self, settings: Settings, root: TrustRoot | None = None) -> None:
        self._settings = settings
        self._root = root
        self._resources = contextlib.AsyncExitStack()
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.state = TrustState()
        self.refusals: collections.OrderedDict[int, KeyRecordRefused] = collections.OrderedDict()

    @property
    def store(self) -> TrustStore:
        """Every key trusted now."""
        return self.state.store

    @property
    def version(self) -> int:
        """The version of the last key change applied (0: none yet)."""
        return self.state.version

    @property
    def root(self) -> TrustRoot:
        """The pinned trust root this follower judges with (loaded by ``start``)."""
        if self._root is None:
            self._root = load_root(self._settings)
        return self._root

    async def start(self) -> None:
        """Read every key record there is; return once the store is complete."""
        root = self.root  # a missing root is reported before Kafka is touched
        consumer = await self._resources.enter_async_context(
            # Read uncommitted: a read-committed reader stops at the first open transaction,
            # so anyone able to write liaison.keys could hold back every later change (a
            # revocation) for the broker's transaction timeout by never committing one.
            # Key changes are never written in transactions, and every record is judged
            # against the pinned root, so an aborted one gains nothing it could not have.
            assigned(self._settings, self._settings.topics.keys, committed_only=False)
        )
        await consumer.seek_to_beginning()
        self._consumer = consumer
        async with self._lock:
            await self._read_to_end(consumer, root)
        _log.info("trust_loaded", keys=len(self.store.keys), version=self.version)
        self._task = asyncio.create_task(self._follow(consumer, root))

    async def catch_up(self) -> None:
        """Read ``liaison.keys`` to its end now and apply what is new."""
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("TrustFollower.catch_up before start")
        async with self._lock:
            before = self.version
            await self._read_to_end(consumer, self.root)
        if self.version != before:
            _log.info("trust_updated", keys=len(self.store.keys), version=self.version)

    async def _read_to_end(self, consumer: AIOKafkaConsumer, root: TrustRoot) -> None:
        partitions = list(consumer.assignment())
        ends = await with_retries(
            lambda: consumer.end_offsets(partitions), "could not read end offsets"
        )
        while await _behind(consumer, ends):
            batch = await consumer.getmany(timeout_ms=500)
            self._apply(root, batch)

    def _apply(self, root: TrustRoot, batch: dict[TopicPartition, list[object]]) -> None:
        for raws in batch.values():
            for raw in raws:
                record = inbound(raw)
                judged = judge_inbound(record, root, self.state)
                if isinstance(judged, KeyRecordRefused):
                    # Reason and offset only: the record may hold anything.
                    _log.warning(
                        "key_record_refused", reason=judged.reason.value, offset=record.offset
                    )
                    self.refusals[record.offset] = judged
                    while len(self.refusals) > _REFUSALS_KEPT:
                        self.refusals.popitem(last=False)
                else:
                    self.state = judged

    async def _follow(self, consumer: AIOKafkaConsumer, root: TrustRoot) -> None:
        while True:
            before = self.version
            try:
                async with self._lock:
                    batch = await consumer.getmany(timeout_ms=500)
                    self._apply(root, batch)
            except KafkaError as exc:  # the broker may be briefly away; keep the last store
                _log.warning("trust_follow_failed", error=str(exc))
                await asyncio.sleep(1.0)
                continue
            if self.version != before:
                _log.info("trust_updated", keys=len(self.store.keys), version=self.version)

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._consumer = None
        await self._resources.aclose()


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


async def load_trust_state(settings: Settings, root: TrustRoot | None = None) -> TrustState:
    """Every key change on the bus applied, as it is now: the keys and the version."""
    follower = TrustFollower(settings, root)
    try:
        await follower.start()
    finally:
        await follower.stop()
    return follower.state


async def load_trust(settings: Settings) -> TrustStore:
    """The bus's trust store as it is now."""
    return (await load_trust_state(settings)).store
