"""Write records whose header name is not UTF-8, as a raw Kafka client could.

aiokafka itself only writes header names it can encode, so this runs with aiokafka's
pure-Python record builder (``AIOKAFKA_NO_EXTENSIONS=1``) and hands it a name that
encodes to bytes that are not UTF-8. Usage: ``python -m tests.integration._unparseable
BOOTSTRAP TOPIC KEY COUNT``: COUNT such records in one producer batch.
"""

from __future__ import annotations

import asyncio
import sys

from aiokafka import AIOKafkaProducer


class _NotUtf8(str):
    """A header name whose encoding is not UTF-8 (what a raw protocol client may send)."""

    __slots__ = ()

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        del encoding, errors
        return b"\xff\xfe"


async def _write(bootstrap: str, topic: str, key: bytes, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=200)
    await producer.start()
    try:
        sent = [
            await producer.send(topic, b"{}", key=key, headers=[(_NotUtf8("h"), b"x")])
            for _ in range(count)
        ]
        await producer.flush()
        for future in sent:
            await future
    finally:
        await producer.stop()


if __name__ == "__main__":
    bootstrap, topic, key, count = sys.argv[1:5]
    asyncio.run(_write(bootstrap, topic, key.encode(), int(count)))
