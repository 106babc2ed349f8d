"""Pre-built Kafka records in a file, for the benchmark's producer children.

One JSON object a line: topic, key, value and headers (bytes as base64). The harness
seals the events and writes them; a child reads them all before it says it is ready, so
its measured CPU is the producing alone.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from pathlib import Path

from schemas.records import OutboundRecord

__all__ = ["read_records", "write_records"]


def write_records(path: Path, records: Iterable[OutboundRecord]) -> int:
    """Write ``records`` to ``path``; how many were written."""
    count = 0
    with path.open("w", encoding="ascii") as out:
        for record in records:
            document = {
                "t": record.topic,
                "k": base64.b64encode(record.key).decode(),
                "v": base64.b64encode(record.value).decode(),
                "h": [[name, base64.b64encode(value).decode()] for name, value in record.headers],
            }
            out.write(json.dumps(document, separators=(",", ":")) + "\n")
            count += 1
    return count


def read_records(path: Path) -> list[OutboundRecord]:
    """The records ``write_records`` wrote."""
    records = []
    with path.open(encoding="ascii") as lines:
        for line in lines:
            document = json.loads(line)
            records.append(
                OutboundRecord(
                    topic=document["t"],
                    key=base64.b64decode(document["k"]),
                    value=base64.b64decode(document["v"]),
                    headers=tuple((name, base64.b64decode(v)) for name, v in document["h"]),
                )
            )
    return records
