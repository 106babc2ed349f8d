"""``liaison quarantine list | redrive``: what was refused, why, and putting it back.

A quarantine record is identified by its offset on ``liaison.quarantine``. Anyone able to
write to that topic can put anything there, so nothing a record says is trusted:

- ``list`` reads every record on its own (``schemas.quarantine.listing``); one that
  cannot be read is listed as such, with no content, and the rest as usual.
- ``redrive`` re-opens the raw value with today's trust store, judged now (the time the
  router will judge it at, so a record refused for a revoked key can never be laundered),
  checks the raw value against its recorded SHA-256, and produces it again, byte for
  byte, only to the events topic of the inspectorate whose key verified it, and only if
  the record says it came from exactly that topic. A forged record naming a programme
  queue (or another inspectorate's topic) is refused and nothing is produced. The
  redrive is marked on the quarantine topic itself, so it happens once, and audited.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from schemas.audit import QuarantineRedriven
from schemas.envelope import open_envelope
from schemas.errors import EnvelopeError, RedriveError
from schemas.inspectorates import Inspectorate
from schemas.keys import OPERATOR, TrustStore
from schemas.quarantine import (
    HEADER_REDRIVE_OF,
    QuarantineEntry,
    RedriveMarker,
    listing,
)
from schemas.records import InboundRecord, OutboundRecord
from schemas.topics import Topics
from services.audit_log import append_audit, operator
from services.kafka import assigned, catch_up, inbound, kafka_sink
from services.keystore import KeyStore, signing_key_for
from services.settings import Settings
from services.trust import load_trust

__all__ = ["UNREADABLE", "Redrive", "list_quarantine", "plan_redrive", "redrive"]

UNREADABLE = "unreadable quarantine record"
"""How ``quarantine list`` shows a record it cannot read (its content is never shown)."""

_CREATE_TIME = 0  # judged at the reader's now, as the router will judge the new record


@dataclass(frozen=True, slots=True)
class Redrive:
    """What redriving one quarantined record produces: the record itself and its marker."""

    quarantine_id: int
    to: str
    event: OutboundRecord
    marker: OutboundRecord


async def list_quarantine(settings: Settings) -> tuple[QuarantineEntry, ...]:
    """Every refused record, oldest first, with whether it has been redriven."""
    records: list[InboundRecord] = []
    async with assigned(settings, settings.topics.quarantine) as consumer:
        async for batch in catch_up(consumer):
            records.extend(inbound(raw) for raw in batch)
    return listing(sorted(records, key=lambda r: (r.partition, r.offset)))


def plan_redrive(
    entry: QuarantineEntry | None,
    quarantine_id: int,
    topics: Topics,
    trust: TrustStore,
    now: dt.datetime,
) -> Redrive:
    """Decide whether quarantined record ``quarantine_id`` may be redriven; raise
    ``RedriveError`` with one plain reason when not. Pure: nothing is produced here.

    Messages never repeat what the quarantine record says (it may be forged): only its
    id, reason codes and topic names derived from the verified key.
    """
    if entry is None:
        msg = f"no quarantined record has id {quarantine_id} (see `liaison quarantine list`)"
        raise RedriveError(msg)
    record = entry.record
    if record is None:
        msg = f"record {quarantine_id} is an {UNREADABLE}; it cannot be redriven"
        raise RedriveError(msg)
    if entry.redriven:
        when = f" at {entry.redriven_at.isoformat()}" if entry.redriven_at else ""
        raise RedriveError(f"record {quarantine_id} was already redriven{when}")
    if not record.raw_value_intact():
        msg = (
            f"record {quarantine_id}'s raw value does not match its recorded SHA-256"
            " (incomplete or altered); it is not redriven"
        )
        raise RedriveError(msg)
    original = record.original()
    try:
        opened = open_envelope(
            dataclasses.replace(original, timestamp_type=_CREATE_TIME), trust, now
        )
    except EnvelopeError as exc:
        msg = (
            f"record {quarantine_id} still fails ({exc.reason}); fix the cause first, e.g."
            " register the signing key with `liaison keys`"
        )
        raise RedriveError(msg) from None
    to = topics.events(Inspectorate(opened.event.source))
    if record.source_topic != to:
        msg = (
            f"record {quarantine_id} does not say it came from {to}, the events topic of the"
            " inspectorate whose key verified it; a record is only redriven there"
        )
        raise RedriveError(msg)
    marker = RedriveMarker(redriven_at=now, to=to)
    return Redrive(
        quarantine_id=quarantine_id,
        to=to,
        event=OutboundRecord(to, original.key or b"", original.value, original.headers),
        marker=OutboundRecord(
            topics.quarantine,
            str(quarantine_id).encode(),
            marker.to_bytes(),
            ((HEADER_REDRIVE_OF, str(quarantine_id).encode()),),
        ),
    )


async def redrive(settings: Settings, quarantine_id: int, now: dt.datetime) -> Redrive:
    """Re-submit quarantined record ``quarantine_id`` if it may be (see ``plan_redrive``)."""
    entries = {entry.id: entry for entry in await list_quarantine(settings)}
    trust = await load_trust(settings)
    planned = plan_redrive(entries.get(quarantine_id), quarantine_id, settings.topics, trust, now)
    async with kafka_sink(settings) as sink:
        await sink.send(planned.event)
        await sink.send(planned.marker)
    await append_audit(
        settings,
        [
            QuarantineRedriven(
                at=now, actor=operator(), quarantine_id=quarantine_id, source_topic=planned.to
            )
        ],
        signing_key_for(OPERATOR, settings, KeyStore(settings), trust),
    )
    return planned
