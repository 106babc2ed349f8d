"""The router as a faststream service: consume every events topic, produce the plan.

The decision is ``consumers.router.plan`` (pure); this module moves bytes and keeps two
pieces of state: the bus's trust store (followed from ``liaison.keys``) and the ids of
events already routed (rebuilt at start from ``liaison.feed.areas``, where every routed
event appears once), so a re-published event is routed once. Offsets are committed after
a record's outbound records are acknowledged (at least once); an infrastructure failure
leaves the offset uncommitted so the record is redelivered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from consumers.router import plan
from consumers.rules import DEFAULT_RULES, Rule
from schemas.records import HEADER_EVENT_ID, header_map
from services.kafka import assigned, catch_up, inbound
from services.settings import Settings
from services.trust import TrustFollower

__all__ = ["RouterService", "router_group_id"]


def router_group_id(settings: Settings) -> str:
    """The router's consumer group (one group, however many router processes run)."""
    return f"{settings.topic_prefix}liaison.router"


async def _routed_ids(settings: Settings) -> set[str]:
    """Every event id already on the area feed (read committed, headers only)."""
    seen: set[str] = set()
    async with assigned(settings, settings.topics.feed) as consumer:
        async for batch in catch_up(consumer):
            for record in batch:
                event_id = header_map(record.headers).get(HEADER_EVENT_ID)
                if event_id:
                    seen.add(event_id.decode())
    return seen


class RouterService:
    """The router: trust follower, routed-id memory and the faststream subscriber."""

    def __init__(self, settings: Settings, rules: Iterable[Rule] = DEFAULT_RULES) -> None:
        self._settings = settings
        self._rules = tuple(rules)
        self._trust = TrustFollower(settings)
        self._routed: set[str] = set()
        self._log = structlog.get_logger("liaison.router")
        self.broker = self._build_broker()

    def _build_broker(self) -> KafkaBroker:
        settings = self._settings
        topics = settings.topics
        broker = KafkaBroker(
            settings.bootstrap_servers,
            enable_idempotence=True,
            acks="all",
            logger=self._log,
            log_level=logging.DEBUG,
            graceful_timeout=10.0,
        )

        @broker.subscriber(
            *topics.all_events(),
            group_id=router_group_id(settings),
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            title="router",
            description="Verify, route and forward every inspectorate's signed events.",
        )
        async def route_event(message: KafkaMessage) -> None:
            await self._handle(message.raw_message)

        return broker

    async def _handle(self, raw: Any) -> None:  # noqa: ANN401 - aiokafka is untyped
        record = inbound(raw)
        decision = plan(
            record, self._settings.topics, self._trust.store, dt.datetime.now(dt.UTC), self._rules
        )
        event = decision.event
        with structlog.contextvars.bound_contextvars(
            event_id=str(event.id) if event else None,
            inspectorate=event.source.value if event else None,
            area=event.area if event else None,
            keyid=decision.opened.key.keyid if decision.opened else None,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        ):
            if event is not None and str(event.id) in self._routed:
                self._log.info("event_duplicate_ignored")
                return
            pending = [
                await self.broker.publish(
                    out.value,
                    out.topic,
                    key=out.key,
                    headers={name: value.decode() for name, value in out.headers},
                    no_confirm=True,
                )
                for out in decision.outbound
            ]
            await asyncio.gather(*pending)
            if decision.refused is not None:
                self._log.warning("event_quarantined", reason=str(decision.refused.reason))
                return
            assert event is not None  # noqa: S101 - a plan either refuses or has an event
            self._routed.add(str(event.id))
            self._log.info(
                "event_routed",
                destinations=sorted({d.programme.value for d in decision.destinations}),
                rules=sorted({d.rule for d in decision.destinations}),
            )

    async def start(self) -> None:
        """Load the trust store and the routed ids, then start consuming."""
        await self._trust.start()
        self._routed = await _routed_ids(self._settings)
        self._log.info("router_state_loaded", routed=len(self._routed))
        await self.broker.start()

    async def stop(self) -> None:
        """Stop consuming and following keys."""
        await self.broker.stop()
        await self._trust.stop()
