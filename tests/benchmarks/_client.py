"""aiokafka alone, in a process of its own: the benchmark's floors and load generator.

``python -m tests.benchmarks._client produce FILE [--topic T] [--transactional]
[--rate R]`` produces the records of FILE (``_records``); ``consume TOPIC COUNT`` reads
COUNT committed records of TOPIC from its beginning. Connected as every Liaison client is
(``services.kafka.client_options``), with Liaison's producer options (idempotent,
``acks=all``, ``linger_ms=5``).

With ``--library confluent`` the same work is done by confluent-kafka (librdkafka, a
Kafka client with a C core, in the ``bench`` extra) with the same options, for
comparison: what the router's Kafka I/O would cost with such a client (issue 14).

Protocol on stdin and stdout, so the harness can read this process's CPU from
``/proc`` around the work alone: the child sets up (imports, connection, records read)
and writes ``ready``; the harness writes ``go``; the child works, writes
``done {json}`` and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.kafka import client_options, producer_options
from services.settings import Settings
from tests.benchmarks._records import read_records

_TRANSACTION: Final = 500
"""Records per transaction, as the router's batches (``services.router_service``)."""
_CONSUME_TIMEOUT_S: Final = 300.0
_MIN_SLEEP_S: Final = 0.001
"""A pause shorter than this is not taken: sleeping that little overshoots anyway."""


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _done(figures: dict[str, float]) -> None:
    """Say ``done``, then stay (idle) until stdin closes, so the harness can still read
    this process's CPU from ``/proc`` after the work."""
    _say("done " + json.dumps(figures))
    sys.stdin.readline()


async def _go() -> None:
    _say("ready")
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if line.strip() != "go":
        raise SystemExit("expected go on stdin")


async def produce(path: Path, topic: str | None, *, transactional: bool, rate: float) -> None:
    """Produce every record of ``path`` (to ``topic`` if given), at ``rate`` a second
    (0: as fast as aiokafka takes them), in transactions of 500 when ``transactional``."""
    settings = Settings()
    records = read_records(path)
    options: dict[str, Any] = producer_options(settings)
    if transactional:
        options["transactional_id"] = f"{settings.topic_prefix}bench.client.{uuid.uuid4().hex}"
    producer = AIOKafkaProducer(**options)
    await producer.start()
    try:
        await _go()
        began, cpu = time.perf_counter(), time.process_time()
        loop = asyncio.get_running_loop()
        pending: list[asyncio.Future[Any]] = []
        if transactional:
            for first in range(0, len(records), _TRANSACTION):
                async with producer.transaction():
                    for record in records[first : first + _TRANSACTION]:
                        sent = await producer.send(
                            topic or record.topic, record.value, key=record.key,
                            headers=list(record.headers),
                        )  # fmt: skip
                        pending.append(sent)
        else:
            start = loop.time()
            for index, record in enumerate(records):
                if rate > 0:
                    due = start + index / rate
                    wait = due - loop.time()
                    if wait > _MIN_SLEEP_S:
                        await asyncio.sleep(wait)
                pending.append(
                    await producer.send(
                        topic or record.topic, record.value, key=record.key,
                        headers=list(record.headers),
                    )
                )  # fmt: skip
        await asyncio.gather(*pending)
        wall, used = time.perf_counter() - began, time.process_time() - cpu
    finally:
        await producer.stop()
    _done({"records": len(records), "wall_s": wall, "cpu_s": used})


async def consume(topic: str, count: int) -> None:
    """Read ``count`` committed records of ``topic`` from its beginning."""
    settings = Settings()
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        await _go()
        began, cpu = time.perf_counter(), time.process_time()
        read = 0
        deadline = time.monotonic() + _CONSUME_TIMEOUT_S
        while read < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=_TRANSACTION)
            read += sum(len(records) for records in batch.values())
        wall, used = time.perf_counter() - began, time.process_time() - cpu
    finally:
        await consumer.stop()
    _done({"records": read, "wall_s": wall, "cpu_s": used})


def _confluent_config(settings: Settings) -> dict[str, Any]:
    """librdkafka's names for the connection ``client_options`` makes."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
    }
    optional = {
        "ssl.ca.location": settings.kafka_ca_file,
        "ssl.certificate.location": settings.kafka_cert_file,
        "ssl.key.location": settings.kafka_key_file,
    }
    config |= {name: str(value) for name, value in optional.items() if value is not None}
    if settings.kafka_security_protocol.startswith("SASL_"):
        options = client_options(settings)
        config |= {
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": options["sasl_plain_username"],
            "sasl.password": options["sasl_plain_password"],
        }
    return config


async def produce_confluent(path: Path, topic: str | None) -> None:
    """``produce --transactional`` with confluent-kafka: the same records, transactions of
    500, idempotent, ``acks=all``, ``linger.ms=5``; CPU of every thread of the process."""
    from confluent_kafka import Producer  # noqa: PLC0415 - only the bench extra has it

    settings = Settings()
    records = read_records(path)
    producer = Producer(
        _confluent_config(settings)
        | {
            "transactional.id": f"{settings.topic_prefix}bench.client.{uuid.uuid4().hex}",
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
    )
    producer.init_transactions()
    await _go()
    began, cpu = time.perf_counter(), time.process_time()
    for first in range(0, len(records), _TRANSACTION):
        producer.begin_transaction()
        for record in records[first : first + _TRANSACTION]:
            producer.produce(
                topic or record.topic, record.value, key=record.key, headers=list(record.headers)
            )
            producer.poll(0)
        producer.commit_transaction()
    wall, used = time.perf_counter() - began, time.process_time() - cpu
    _done({"records": len(records), "wall_s": wall, "cpu_s": used})


async def consume_confluent(topic: str, count: int) -> None:
    """``consume`` with confluent-kafka (read committed, batches of 500)."""
    import confluent_kafka  # noqa: PLC0415 - only the bench extra has it

    settings = Settings()
    consumer = confluent_kafka.Consumer(
        _confluent_config(settings)
        | {
            "group.id": f"{settings.topic_prefix}bench.client.{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    metadata = consumer.list_topics(topic, timeout=30)
    partitions = sorted(metadata.topics[topic].partitions)
    consumer.assign(
        [confluent_kafka.TopicPartition(topic, p, 0) for p in partitions]
    )  # from the beginning
    await _go()
    began, cpu = time.perf_counter(), time.process_time()
    read = 0
    deadline = time.monotonic() + _CONSUME_TIMEOUT_S
    while read < count and time.monotonic() < deadline:
        batch = consumer.consume(_TRANSACTION, timeout=0.5)
        read += sum(1 for message in batch if message.error() is None)
    wall, used = time.perf_counter() - began, time.process_time() - cpu
    consumer.close()
    _done({"records": read, "wall_s": wall, "cpu_s": used})


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(100):
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    raise SystemExit(f"topic {topic} has no partitions")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run one of the two."""
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks._client")
    commands = parser.add_subparsers(dest="command", required=True)
    producing = commands.add_parser("produce")
    producing.add_argument("file", type=Path)
    producing.add_argument("--topic")
    producing.add_argument("--transactional", action="store_true")
    producing.add_argument("--rate", type=float, default=0.0)
    consuming = commands.add_parser("consume")
    consuming.add_argument("topic")
    consuming.add_argument("count", type=int)
    for command in (producing, consuming):
        command.add_argument("--library", choices=("aiokafka", "confluent"), default="aiokafka")
    args = parser.parse_args(argv)
    if args.library == "confluent":
        if args.command == "produce":
            asyncio.run(produce_confluent(args.file, args.topic))
        else:
            asyncio.run(consume_confluent(args.topic, args.count))
        return
    if args.command == "produce":
        asyncio.run(
            produce(args.file, args.topic, transactional=args.transactional, rate=args.rate)
        )
    else:
        asyncio.run(consume(args.topic, args.count))


if __name__ == "__main__":
    main()
