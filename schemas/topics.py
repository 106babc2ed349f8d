"""Every topic of Liaison's public contract, with its partitions and configuration.

This is the one place topic names are spelled. ``Topics(prefix)`` gives the same names
with a prefix, so tests (and parallel demos) can share one broker without clashing; the
contract names are those with the empty prefix.

Every topic is kept forever (none is compacted) except two. ``liaison.quarantine`` holds
the raw bytes of refused records, personal data included, so it keeps them for a bounded
retention (``Topics(quarantine_retention_ms=...)``, by default
``QUARANTINE_RETENTION_DAYS``; the deployment's setting is
``LIAISON_QUARANTINE_RETENTION_DAYS``), long enough to redrive. ``liaison.router.state``
is the router's own memory (``consumers.router_state``), compacted: the latest value of
each key is the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from schemas.errors import ConfigurationError
from schemas.inspectorates import JTAI, Inspectorate, Programme

__all__ = ["DAY_MS", "EVENT_PARTITIONS", "QUARANTINE_RETENTION_DAYS", "TopicSpec", "Topics"]

EVENT_PARTITIONS: Final = 3
"""Partitions of every area-keyed topic: events, programme queues, JTAI and the feed."""

DAY_MS: Final = 24 * 60 * 60 * 1000
"""One day in milliseconds (Kafka's unit for ``retention.ms``)."""

QUARANTINE_RETENTION_DAYS: Final = 30
"""How long ``liaison.quarantine`` keeps refused records unless configured otherwise."""

_KEEP_FOREVER: Final = MappingProxyType({"retention.ms": "-1", "retention.bytes": "-1"})
# Every topic that carries signed envelopes stamps records with the broker's append time:
# key revocation is judged by it, never by a time the signer claims.
_APPEND_TIME: Final = MappingProxyType({"message.timestamp.type": "LogAppendTime"})
_ENVELOPES: Final = MappingProxyType({**_KEEP_FOREVER, **_APPEND_TIME})
# liaison.keys is a log of signed key changes, kept whole and never compacted: on a
# compacted topic anyone able to write to it could erase a record (a revocation, say) by
# producing another with the same record key, and compaction would drop the original.
# Readers replay every change in order, so each one must stay. The broker's append time
# is what a change's back-dating and a revocation's effect are judged against.
_KEY_CHANGES: Final = MappingProxyType(
    {**_KEEP_FOREVER, **_APPEND_TIME, "cleanup.policy": "delete"}
)


# The router's state (consumers.router_state): the latest value of each key is all that
# matters, so the log is compacted; the active segment rolls hourly so compaction keeps up,
# and tombstones (ids past the dedupe horizon, forgotten JTAI concerns) stay a day so a
# router loading meanwhile still sees the deletion.
_COMPACTED_STATE: Final = MappingProxyType(
    {
        "cleanup.policy": "compact",
        "segment.ms": str(60 * 60 * 1000),
        "min.cleanable.dirty.ratio": "0.1",
        "delete.retention.ms": str(DAY_MS),
    }
)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as code: name, partition count, topic-level configs and what it is for."""

    name: str
    partitions: int
    purpose: str
    config: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names of the contract, optionally behind a prefix (``""`` in production),
    and the quarantine topic's retention (the one contract config a deployment sets)."""

    prefix: str = ""
    quarantine_retention_ms: int = QUARANTINE_RETENTION_DAYS * DAY_MS

    def __post_init__(self) -> None:
        if self.quarantine_retention_ms < 1:
            # -1 would be "forever": the raw bytes of refused records must not stay forever.
            msg = f"the quarantine retention must be positive, not {self.quarantine_retention_ms}"
            raise ConfigurationError(msg)

    def events(self, inspectorate: Inspectorate) -> str:
        """``liaison.events.<inspectorate>``: one inspectorate's outbound events."""
        return f"{self.prefix}liaison.events.{inspectorate.value}"

    def programme(self, programme: Programme) -> str:
        """``liaison.programme.<programme>``, or ``liaison.jtai`` for the JTAI programme."""
        if programme is JTAI:
            return self.jtai
        return f"{self.prefix}liaison.programme.{programme.value}"

    @property
    def jtai(self) -> str:
        """The JTAI queue."""
        return f"{self.prefix}liaison.jtai"

    @property
    def feed(self) -> str:
        """Every verified event, keyed by area, for analysts."""
        return f"{self.prefix}liaison.feed.areas"

    @property
    def outcomes(self) -> str:
        """Outcomes recorded by receiving programmes, and overdue reminders, by area."""
        return f"{self.prefix}liaison.outcomes"

    @property
    def delivery(self) -> str:
        """Results of posting routed envelopes to programmes' own systems, by area."""
        return f"{self.prefix}liaison.delivery"

    @property
    def quarantine(self) -> str:
        """Records that could not be accepted, with the reason."""
        return f"{self.prefix}liaison.quarantine"

    @property
    def unrouted(self) -> str:
        """Verified events that matched no routing rule."""
        return f"{self.prefix}liaison.unrouted"

    @property
    def audit(self) -> str:
        """The audit log (one partition, never deleted)."""
        return f"{self.prefix}liaison.audit"

    @property
    def audit_checkpoints(self) -> str:
        """Signed checkpoints of the audit log's Merkle tree."""
        return f"{self.prefix}liaison.audit.checkpoints"

    @property
    def router_state(self) -> str:
        """The router's own state per partition number (compacted; only routers write)."""
        return f"{self.prefix}liaison.router.state"

    @property
    def keys(self) -> str:
        """Signed key changes under the pinned trust root (kept whole, never compacted)."""
        return f"{self.prefix}liaison.keys"

    def all_events(self) -> tuple[str, ...]:
        """Every inspectorate's events topic, in a stable order."""
        return tuple(self.events(inspectorate) for inspectorate in Inspectorate)

    def specs(self) -> tuple[TopicSpec, ...]:
        """Every topic of the contract with its partitions and configs."""
        events = tuple(
            TopicSpec(
                self.events(inspectorate),
                EVENT_PARTITIONS,
                f"{inspectorate.value}'s outbound events, keyed by area GSS code",
                _ENVELOPES,
            )
            for inspectorate in Inspectorate
        )
        programmes = tuple(
            TopicSpec(
                self.programme(programme),
                EVENT_PARTITIONS,
                f"inbound queue of the {programme.value} programme",
                _ENVELOPES,
            )
            for programme in Programme
            if programme is not JTAI
        )
        one_partition_forever = MappingProxyType({**_KEEP_FOREVER, "cleanup.policy": "delete"})
        # The audit service judges each record's stated `at` against the broker's time.
        audit_log = MappingProxyType({**one_partition_forever, **_APPEND_TIME})
        return (
            *events,
            *programmes,
            TopicSpec(self.jtai, EVENT_PARTITIONS, "the JTAI queue", _ENVELOPES),
            TopicSpec(
                self.feed, EVENT_PARTITIONS, "every verified event, for analysts", _ENVELOPES
            ),
            TopicSpec(
                self.outcomes,
                EVENT_PARTITIONS,
                "outcomes recorded by receiving programmes and overdue reminders, by area",
                _ENVELOPES,
            ),
            TopicSpec(
                self.delivery,
                EVENT_PARTITIONS,
                "results of delivering routed envelopes to programmes' own systems",
                _ENVELOPES,
            ),
            TopicSpec(
                self.quarantine,
                1,
                "records refused, with raw bytes and reason, kept for a bounded retention",
                MappingProxyType(
                    {
                        "retention.ms": str(self.quarantine_retention_ms),
                        "retention.bytes": "-1",
                        "cleanup.policy": "delete",
                    }
                ),
            ),
            TopicSpec(self.unrouted, 1, "verified events no rule matched", _ENVELOPES),
            TopicSpec(self.audit, 1, "the audit log", audit_log),
            TopicSpec(self.audit_checkpoints, 1, "signed audit checkpoints", one_partition_forever),
            TopicSpec(
                self.router_state,
                EVENT_PARTITIONS,
                "the router's state per partition number: ids routed within the dedupe"
                " horizon, open JTAI windows, input offsets (compacted, MAC'd, router only)",
                _COMPACTED_STATE,
            ),
            TopicSpec(
                self.keys,
                1,
                "signed key changes (public keys, owner, validity, revocation), never deleted",
                _KEY_CHANGES,
            ),
        )
