"""The router as a faststream service: consume every events topic, produce the plan.

The decision is ``consumers.router.plan`` (pure); this module only moves bytes. Offsets
are committed after every record's outbound records are acknowledged (at least once);
an infrastructure failure leaves the offset uncommitted so the record is redelivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from consumers.router import plan
from consumers.rules import DEFAULT_RULES, Rule
from services.kafka import inbound
from services.settings import Settings

__all__ = ["build_router", "router_group_id"]


def router_group_id(settings: Settings) -> str:
    """The router's consumer group (one group, however many router processes run)."""
    return f"{settings.topic_prefix}liaison.router"


def build_router(settings: Settings, rules: Iterable[Rule] = DEFAULT_RULES) -> KafkaBroker:
    """A faststream broker whose one subscriber routes every inspectorate's events."""
    rules = tuple(rules)
    topics = settings.topics
    log = structlog.get_logger("liaison.router")
    broker = KafkaBroker(
        settings.bootstrap_servers,
        enable_idempotence=True,
        acks="all",
        logger=log,
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
        description="Verify, route and forward every inspectorate's events.",
    )
    async def route_event(message: KafkaMessage) -> None:
        record = inbound(message.raw_message)
        decision = plan(record, topics, rules)
        with structlog.contextvars.bound_contextvars(
            event_id=str(decision.event.id) if decision.event else None,
            inspectorate=decision.event.source.value if decision.event else None,
            area=decision.event.area if decision.event else None,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        ):
            pending = [
                await broker.publish(
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
                log.warning("event_quarantined", reason=decision.refused)
            else:
                log.info(
                    "event_routed",
                    destinations=sorted({d.programme.value for d in decision.destinations}),
                    rules=sorted({d.rule for d in decision.destinations}),
                )

    return broker
