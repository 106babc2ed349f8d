"""``liaison quarantine list | redrive``: what was refused, why, and putting it back.

A quarantine record is identified by its offset on ``liaison.quarantine``. Redrive
re-opens the refused record with today's trust store; only if it now verifies is it
produced again, byte for byte, to the topic it came from, where the router treats it
like any other record (it is judged at its new append time, so a record refused for a
revoked key can never be laundered this way). A redrive is recorded on the quarantine
topic itself, so the same record is not redriven twice.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from typing import Any

from schemas.audit import QuarantineRedriven
from schemas.envelope import open_envelope
from schemas.errors import ConfigurationError, EnvelopeError
from schemas.records import InboundRecord, OutboundRecord
from services.audit_log import append_audit, operator
from services.kafka import assigned, catch_up, kafka_sink
from services.settings import Settings
from services.trust import load_trust

__all__ = ["Quarantined", "list_quarantine", "redrive"]

_REDRIVE_OF = "redrive_of"


@dataclass(frozen=True, slots=True)
class Quarantined:
    """One refused record, as kept on ``liaison.quarantine``."""

    id: int
    reason: str
    detail: str
    quarantined_at: str
    source: str
    redriven_at: str | None
    body: dict[str, Any]

    def original(self) -> InboundRecord:
        """The refused record as it was consumed (for re-verification)."""
        b = self.body
        return InboundRecord(
            topic=b["source_topic"],
            partition=b["partition"],
            offset=b["offset"],
            timestamp_ms=b["timestamp_ms"],
            key=bytes.fromhex(b["raw_key_hex"]) or None,
            value=bytes.fromhex(b["raw_value_hex"]),
            headers=tuple((n, bytes.fromhex(v)) for n, v in b["raw_headers_hex"]),
            timestamp_type=b["timestamp_type"],
        )


async def list_quarantine(settings: Settings) -> list[Quarantined]:
    """Every quarantined record, oldest first, with whether it has been redriven."""
    found: dict[int, Quarantined] = {}
    redriven: dict[int, str] = {}
    async with assigned(settings, settings.topics.quarantine) as consumer:
        async for batch in catch_up(consumer):
            for raw in batch:
                headers = dict(raw.headers)
                if _REDRIVE_OF in headers:
                    redriven[int(headers[_REDRIVE_OF])] = json.loads(raw.value)["redriven_at"]
                    continue
                body = json.loads(raw.value)
                found[raw.offset] = Quarantined(
                    id=raw.offset,
                    reason=body["reason"],
                    detail=body["detail"],
                    quarantined_at=body["quarantined_at"],
                    source=f"{body['source_topic']}/{body['partition']}/{body['offset']}",
                    redriven_at=None,
                    body=body,
                )
    return [replace(q, redriven_at=redriven.get(q.id)) for q in found.values()]


async def redrive(settings: Settings, quarantine_id: int, now: dt.datetime) -> Quarantined:
    """Re-submit quarantined record ``quarantine_id`` if it now verifies; else say why not."""
    items = {q.id: q for q in await list_quarantine(settings)}
    item = items.get(quarantine_id)
    if item is None:
        raise ConfigurationError(
            f"no quarantined record has id {quarantine_id} (see `liaison quarantine list`)"
        )
    if item.redriven_at is not None:
        raise ConfigurationError(
            f"record {quarantine_id} was already redriven at {item.redriven_at}"
        )
    original = item.original()
    trust = await load_trust(settings)
    try:
        open_envelope(original, trust, now)
    except EnvelopeError as exc:
        raise ConfigurationError(
            f"record {quarantine_id} still fails ({exc}); fix the cause first, e.g. register"
            " the signing key with `liaison keys`"
        ) from None
    async with kafka_sink(settings) as sink:
        await sink.send(
            OutboundRecord(original.topic, original.key or b"", original.value, original.headers)
        )
        await sink.send(
            OutboundRecord(
                settings.topics.quarantine,
                str(quarantine_id).encode(),
                json.dumps({"redriven_at": now.isoformat(), "to": original.topic}).encode(),
                ((_REDRIVE_OF, str(quarantine_id).encode()),),
            )
        )
    await append_audit(
        settings,
        [
            QuarantineRedriven(
                at=now, actor=operator(), quarantine_id=quarantine_id, source_topic=original.topic
            )
        ],
    )
    return replace(item, redriven_at=now.isoformat())
