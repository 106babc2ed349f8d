"""Appending to the audit log (``liaison.audit``): one place that turns records into Kafka.

Every record is sealed (``schemas.audit.seal_record``) with the key of the component that
writes it: the router's, the audit service's, an inspectorate's publisher's, the reader
service's, an auditor's or an operator's tool's. The audit service marks a record whose
signer may not speak for its ``actor`` as an invalid leaf.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterable
from typing import Final

from schemas.audit import AuditRecord, seal_record
from schemas.keys import SigningKey
from schemas.records import OutboundRecord
from services.kafka import kafka_sink
from services.settings import Settings

__all__ = ["append_audit", "audit_outbound", "operator"]

_NOT_IN_A_NAME: Final = re.compile(r"[^A-Za-z0-9._@+-]")
_MAX_NAME: Final = 100
"""Longest user part kept (an actor string is at most 200 characters)."""


def audit_outbound(settings: Settings, record: AuditRecord, key: SigningKey) -> OutboundRecord:
    """The Kafka record for one audit record signed by ``key`` (for producers that add it
    to a transaction)."""
    return OutboundRecord(
        topic=settings.topics.audit,
        key=record.action.encode(),
        value=seal_record(record, key),
        headers=(("action", record.action.encode()),),
    )


async def append_audit(settings: Settings, records: Iterable[AuditRecord], key: SigningKey) -> None:
    """Append records signed by ``key``; return once the broker has every one of them."""
    records = list(records)
    if not records:
        return
    async with kafka_sink(settings) as sink:
        for record in records:
            await sink.send(audit_outbound(settings, record, key))


def operator(kind: str = "operator") -> str:
    """The actor string for a person at this machine's command line (``operator:<user>``).

    Always a valid actor: characters of the login name outside ``[A-Za-z0-9._@+-]`` (a
    space, a backslash of ``DOMAIN\\user``) become ``-``, and ``<kind>:unknown`` stands
    when there is no login name (``getpass.getuser()`` fails, or leaves nothing usable).
    """
    try:
        user = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no LOGNAME/USER and no passwd entry
        user = ""
    name = _NOT_IN_A_NAME.sub("-", user).lstrip("._@+-")[:_MAX_NAME]
    return f"{kind}:{name or 'unknown'}"
