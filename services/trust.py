"""The bus's trust store: the compacted ``liaison.keys`` topic, read and followed.

Each record is one key's latest state (record key: the key id; value: the TrustedKey
JSON). Readers load the whole topic before they verify anything, then follow it, so a
key registered or revoked while a consumer runs takes effect without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from schemas.errors import SchemaError
from schemas.keys import TrustedKey, TrustStore, decode_key_record
from schemas.records import OutboundRecord
from services.kafka import assigned, catch_up, kafka_sink
from services.settings import Settings

__all__ = ["TrustFollower", "load_trust", "publish_keys"]

_log = structlog.get_logger("liaison.trust")


async def publish_keys(settings: Settings, entries: Iterable[TrustedKey]) -> None:
    """Publish each key's current state to ``liaison.keys`` and wait for the broker."""
    async with kafka_sink(settings) as sink:
        for entry in entries:
            await sink.send(
                OutboundRecord(
                    topic=settings.topics.keys,
                    key=entry.keyid.encode(),
                    value=entry.model_dump_json().encode(),
                )
            )


def _apply(store: TrustStore, values: Iterable[bytes | None]) -> TrustStore:
    for value in values:
        if not value:
            continue
        try:
            entry = decode_key_record(value)
        except SchemaError as exc:
            # A bad key record must not stop verification of everything else.
            _log.warning("key_record_refused", problems=len(exc.problems))
            continue
        store = store.with_key(entry)
    return store


class TrustFollower:
    """Loads ``liaison.keys`` to its end, then keeps ``store`` current in the background."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._resources = contextlib.AsyncExitStack()
        self._task: asyncio.Task[None] | None = None
        self.store = TrustStore()

    async def start(self) -> None:
        """Read every key record there is; return once the store is complete."""
        consumer = await self._resources.enter_async_context(
            assigned(self._settings, self._settings.topics.keys)
        )
        async for batch in catch_up(consumer):
            self.store = _apply(self.store, (record.value for record in batch))
        _log.info("trust_loaded", keys=len(self.store.keys))
        self._task = asyncio.create_task(self._follow(consumer))

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=1000)
            except KafkaError as exc:  # the broker may be briefly away; keep the last store
                _log.warning("trust_follow_failed", error=str(exc))
                await asyncio.sleep(1.0)
                continue
            if batch:
                self.store = _apply(self.store, (r.value for rs in batch.values() for r in rs))
                _log.info("trust_updated", keys=len(self.store.keys))

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._resources.aclose()


async def load_trust(settings: Settings) -> TrustStore:
    """The bus's trust store as it is now."""
    follower = TrustFollower(settings)
    try:
        await follower.start()
    finally:
        await follower.stop()
    return follower.store
