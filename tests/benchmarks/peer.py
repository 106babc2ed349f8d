"""The peer the router is compared with: what a team would write with faststream alone.

A plain ``KafkaBroker`` batch subscriber on the five events topics that opens each
envelope (``schemas.envelope.open_envelope``, the trust store from ``liaison.keys``),
routes it with ``consumers.routing.route`` and the default rules, and publishes the same
envelope to each destination's programme queue. At least once: the batch's offsets are
committed after every publish of it is acknowledged (faststream's ``AckPolicy.ACK``). No
audit records, no JTAI watch, no transactions, no dedupe, no state.

Run by ``tests.benchmarks.pipeline`` as ``python -m tests.benchmarks.peer`` with
``LIAISON_TOPIC_PREFIX`` and ``LIAISON_HOME``; it writes ``assigned`` on stdout once it
owns partitions, then ``forwarded N`` after each batch it committed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from consumers.routing import route
from schemas.envelope import open_envelope
from schemas.errors import EnvelopeError
from services.kafka import faststream_security, inbound
from services.log import configure_logging
from services.rules_file import load_rules
from services.settings import Settings
from services.trust import load_trust

__all__ = ["main"]


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class _Assigned(ConsumerRebalanceListener):  # type: ignore[misc]
    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        del revoked

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        if assigned:
            _say("assigned")


async def serve() -> None:
    """Forward until SIGTERM or SIGINT."""
    settings = Settings()
    configure_logging("WARNING")
    # faststream's own logging as it comes (INFO), but on stderr: stdout is the protocol.
    access = logging.getLogger("bench.peer")
    access.setLevel(logging.INFO)
    access.addHandler(logging.StreamHandler(sys.stderr))
    access.propagate = False
    topics = settings.topics
    trust = await load_trust(settings)
    rules = load_rules(settings.rules_path).rules
    broker = KafkaBroker(
        [server.strip() for server in settings.bootstrap_servers.split(",")],
        security=faststream_security(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        logger=access,
    )

    @broker.subscriber(
        *topics.all_events(),
        group_id=f"{settings.topic_prefix}bench.peer",
        batch=True,
        max_records=500,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        ack_policy=AckPolicy.ACK,
        listener=_Assigned(),
    )
    async def forward(body: list[bytes], message: KafkaMessage) -> None:
        del body
        raw: Any = message.raw_message
        records = [inbound(r) for r in (raw if isinstance(raw, tuple) else (raw,))]
        now = dt.datetime.now(dt.UTC)
        pending = []
        for record in records:
            try:
                opened = open_envelope(record, trust, now)
            except EnvelopeError:
                continue  # a team would log it; nothing in this load is refused
            headers = {name: value.decode() for name, value in record.headers}
            for destination in route(opened.event, rules):
                sent = await broker.publish(
                    record.value,
                    topics.programme(destination.programme),
                    key=record.key,
                    headers=headers,
                    no_confirm=True,
                )
                pending.append(sent)
        await asyncio.gather(*pending)
        _say(f"forwarded {len(records)}")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await broker.start()
    try:
        await stop.wait()
    finally:
        await broker.stop()


def main() -> None:
    """Run the peer."""
    asyncio.run(serve())


if __name__ == "__main__":
    main()
