"""``liaison replay`` and ``liaison feed read``: re-read signed events and verify each again.

Replay finds its starting point per partition with Kafka's ``offsets_for_times`` (the
events topics are stamped with the broker's append time) and reads to the ``until``
time or to the end as it was when the replay began. Every envelope is opened again with
today's trust store (retired keys included, judged at each record's append time).
Records that no longer verify are returned separately, never dropped.

``export_replay`` writes what a replay found for a regulator to check without Liaison:
each signed envelope byte for byte as it is on Kafka, and inclusion proofs of its audit
records against the latest signed checkpoint (layout in ``EXPORT_README`` and
docs/audit.md), checked with docs/check_proof.py and any DSSE library.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.audit_proof import encode_proof
from schemas.errors import ConfigurationError, EnvelopeError
from schemas.inspectorates import Inspectorate
from schemas.keys import TrustStore
from schemas.records import HEADER_AREA, HEADER_TYPE, InboundRecord, header_map
from schemas.signed import OpenedSigned, accepted_on, open_signed
from services.audit_store import SqliteAuditStore
from services.auditor import inclusion_document, latest_signed
from services.kafka import (
    client_options,
    inbound,
    partition_counts,
    stop_client,
    tolerate_unparseable,
)
from services.settings import Settings

__all__ = [
    "EXPORT_README",
    "Exported",
    "Filters",
    "Replay",
    "check_export_directory",
    "export_replay",
    "replay_topics",
]


@dataclass(frozen=True, slots=True)
class Filters:
    """What a replay or feed read selects; ``None`` selects everything."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    area: str | None = None
    theme: str | None = None
    source: Inspectorate | None = None
    type: str | None = None

    def as_strings(self) -> dict[str, str]:
        """The filters that are set, as text (for the audit record)."""
        values = {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "area": self.area,
            "theme": self.theme,
            "source": self.source.value if self.source else None,
            "type": self.type,
        }
        return {k: v for k, v in values.items() if v is not None}

    def admits(self, opened: OpenedSigned) -> bool:
        """Whether a verified event matches (its signed content decides, not headers)."""
        event = opened.event
        theme = getattr(event, "theme", None)
        return (
            (self.area is None or event.area == self.area)
            and (self.theme is None or (theme is not None and theme.value == self.theme))
            and (self.source is None or event.source is self.source)
            and (self.type is None or event.type == self.type)
        )

    def may_concern(self, record: InboundRecord) -> bool:
        """For a record that does not verify: whether its (unverified) headers could match."""
        headers = header_map(record.headers)
        area, kind = headers.get(HEADER_AREA), headers.get(HEADER_TYPE)
        return (self.area is None or area in (None, self.area.encode())) and (
            self.type is None or kind in (None, self.type.encode())
        )


@dataclass(slots=True)
class Replay:
    """What a replay found: verified events in log order, and records that failed."""

    verified: list[tuple[InboundRecord, OpenedSigned]] = field(default_factory=list)
    unverifiable: list[tuple[InboundRecord, EnvelopeError]] = field(default_factory=list)
    scanned: int = 0


async def replay_topics(
    settings: Settings,
    topics: Iterable[str],
    filters: Filters,
    trust: TrustStore,
    now: dt.datetime,
    *,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Replay:
    """Re-read ``topics`` within the filters' time window, verifying every record."""
    topics = list(topics)
    counts = await partition_counts(settings, topics)
    consumer = tolerate_unparseable(
        AIOKafkaConsumer(
            **client_options(settings),
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
    )
    await consumer.start()
    found = Replay()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in range(counts[t])]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await _starts(consumer, partitions, filters.since)
        todo = {tp: ends[tp] for tp in partitions if starts[tp] < ends[tp]}
        total = sum(ends[tp] - starts[tp] for tp in todo)
        for tp in todo:
            consumer.seek(tp, starts[tp])
        until_ms = int(filters.until.timestamp() * 1000) if filters.until else None
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000)
            for tp, records in batch.items():
                for raw in records:
                    if raw.offset >= ends[tp] or (
                        until_ms is not None and raw.timestamp >= until_ms
                    ):
                        todo.pop(tp, None)
                        break
                    found.scanned += 1
                    _judge(inbound(raw), filters, trust, now, found, settings=settings)
            # Every partition: one ending in an aborted transaction returns no records to
            # a read_committed reader, but its position reaches the end.
            for tp in list(todo):
                if await consumer.position(tp) >= ends[tp]:
                    todo.pop(tp)
            progress(found.scanned, total)
    finally:
        await stop_client(consumer)
    found.verified.sort(key=lambda item: (item[0].timestamp_ms, item[0].topic, item[0].offset))
    return found


def _judge(
    record: InboundRecord,
    filters: Filters,
    trust: TrustStore,
    now: dt.datetime,
    found: Replay,
    *,
    settings: Settings,
) -> None:
    try:
        opened = open_signed(record, trust, now, accepted_on(record.topic, settings.topics))
    except EnvelopeError as exc:
        if filters.may_concern(record):
            found.unverifiable.append((record, exc))
        return
    if filters.admits(opened):
        found.verified.append((record, opened))


async def _starts(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], since: dt.datetime | None
) -> dict[TopicPartition, int]:
    beginnings = await consumer.beginning_offsets(partitions)
    if since is None:
        return dict(beginnings)
    ends = await consumer.end_offsets(partitions)
    found = await consumer.offsets_for_times(
        {tp: int(since.timestamp() * 1000) for tp in partitions}
    )
    # No record at or after `since` in a partition: start at its end (nothing to read).
    return {tp: found[tp].offset if found[tp] is not None else ends[tp] for tp in partitions}


# ---- export for a regulator ------------------------------------------------------------

EXPORT_README: Final = """\
A Liaison replay export: signed events and proofs that their audit records are in the
append-only audit log. Check it without Liaison (see Liaison's docs/audit.md):

  manifest.json      every exported event: its id, topic, partition, offset, broker
                     append time, the SHA-256 of its envelope, and its two files below
  events/N-ID.dsse   the event's DSSE envelope, byte for byte as it is on Kafka; verify
                     its signature with any DSSE library and the publisher's public key
  proofs/N-ID.json   inclusion proofs of the event's audit records (each a signed DSSE
                     envelope too) against the signed checkpoint in checkpoint.txt
  checkpoint.txt     the latest signed checkpoint of the audit log (a C2SP signed note)
  keys.json          a copy of the trust store (public keys, owners, validity): compare
                     it with keys you obtained yourself; never trust it as given

  python check_proof.py proofs/N-ID.json VERIFIER_KEY --signers KEYS.json \
      --envelope events/N-ID.dsse

VERIFIER_KEY is the audit log's verifier key and KEYS.json the bus's public keys
(`liaison audit verifier-key`, `liaison keys export`), both obtained from the operator
out of band, never from this export (its keys.json is a copy to compare them with).
"""


@dataclass(frozen=True, slots=True)
class Exported:
    """What ``export_replay`` wrote: events, those with audit proofs, and the checkpoint."""

    events: int
    proven: int
    checkpoint_size: int


def export_replay(
    directory: Path,
    found: Replay,
    settings: Settings,
    store: SqliteAuditStore,
    trust: TrustStore,
) -> Exported:
    """Write ``found``'s verified events and their audit proofs under ``directory`` (which
    must not exist yet, or be empty); ``ConfigurationError`` if it cannot be used or no
    checkpoint has been signed yet."""
    size, note = latest_signed(store)
    check_export_directory(directory)
    (directory / "events").mkdir(parents=True, exist_ok=True)
    (directory / "proofs").mkdir()
    entries = []
    proven = 0
    for n, (record, opened) in enumerate(found.verified):
        event_id = str(opened.event.id)
        name = f"{n:06d}-{event_id}"
        envelope = Path("events") / f"{name}.dsse"
        (directory / envelope).write_bytes(record.value)
        document = inclusion_document(
            settings, store, trust, event_id,
            seqs=store.seqs_for_event(event_id), checkpoint=(size, note),
        )  # fmt: skip
        proof: Path | None = None
        if document.proofs:
            proof = Path("proofs") / f"{name}.json"
            (directory / proof).write_text(encode_proof(document))
            proven += 1
        entries.append(
            {
                "event_id": event_id,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "appended_at": _ms_text(record.timestamp_ms),
                "envelope": envelope.as_posix(),
                "envelope_sha256": hashlib.sha256(record.value).hexdigest(),
                "proof": None if proof is None else proof.as_posix(),
                "audit_records": len(document.proofs),
                "not_yet_checkpointed": list(document.not_yet_checkpointed),
            }
        )
    (directory / "checkpoint.txt").write_text(note)
    (directory / "keys.json").write_text(trust.model_dump_json(indent=2) + "\n")
    (directory / "README.txt").write_text(EXPORT_README)
    manifest = {"type": "liaison.replay.export.v1", "checkpoint_size": size, "events": entries}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return Exported(len(entries), proven, size)


def check_export_directory(directory: Path) -> None:
    """``ConfigurationError`` unless ``directory`` is new or empty (an export never mixes
    with older files)."""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        msg = f"{directory} already exists and is not an empty directory: export elsewhere"
        raise ConfigurationError(msg)


def _ms_text(timestamp_ms: int) -> str | None:
    try:
        return dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return None
