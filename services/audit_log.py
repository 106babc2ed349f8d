"""Appending to the audit log (``liaison.audit``): one place that turns records into Kafka."""

from __future__ import annotations

import getpass
from collections.abc import Iterable

from schemas.audit import AuditRecord, encode_record
from schemas.records import OutboundRecord
from services.kafka import kafka_sink
from services.settings import Settings

__all__ = ["append_audit", "audit_outbound", "operator"]


def audit_outbound(settings: Settings, record: AuditRecord) -> OutboundRecord:
    """The Kafka record for one audit record (for producers that add it to a transaction)."""
    return OutboundRecord(
        topic=settings.topics.audit,
        key=record.action.encode(),
        value=encode_record(record),
        headers=(("action", record.action.encode()),),
    )


async def append_audit(settings: Settings, records: Iterable[AuditRecord]) -> None:
    """Append records to the audit log; return once the broker has every one of them."""
    records = list(records)
    if not records:
        return
    async with kafka_sink(settings) as sink:
        for record in records:
            await sink.send(audit_outbound(settings, record))


def operator(kind: str = "operator") -> str:
    """The actor string for a person at this machine's command line (``operator:<user>``)."""
    return f"{kind}:{getpass.getuser()}"
