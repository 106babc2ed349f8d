"""JTAI triage on the bus: read the considerations (audited as receipt), record decisions.

The decisions themselves are pure (``consumers.jtai_desk``); this module does the I/O:

* ``read_triage`` reads ``liaison.jtai``, ``liaison.feed.areas`` and ``liaison.outcomes``
  whole, verifies every record again (``services.reading.read_signed``, each topic held to
  the types it carries), builds the triage view and appends one ``inbox.read`` audit
  record (queue ``liaison.jtai``, the ids of everything shown: considerations,
  contributing findings, their outcomes, decisions) signed by the inspectorate the
  reader acts for, before anything is shown. From ``liaison.jtai`` only what is
  published there directly counts (considerations, decisions); the findings and
  outcomes the router forwards there are read from the feed and ``liaison.outcomes``.
* ``record_decision`` finds the verified consideration, builds the decision (area and
  theme from the consideration, the reason held to the minimisation lint), signs it with
  the inspectorate's key and publishes it to ``liaison.jtai`` keyed by area, in one Kafka
  transaction with its ``jtai.decision_recorded`` audit record.
* ``selected_areas`` is what an inbox needs to mark an area selected for a JTAI.

Integrators call these; ``liaison jtai`` is a thin shell over them::

    trust = await load_trust(settings)
    key = signing_key_for("cqc", settings, KeyStore(settings), trust)
    read = await read_triage(settings, acting_for=Inspectorate.CQC, key=key, now=now)
    for item in read.shown: ...
    decided = await record_decision(settings, item.consideration.id, JtaiDecision.SELECT,
                                    "Evidence from three inspectorates.", key=key, now=now)

Nothing personal is logged or audited: reasons and summaries never leave the view.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import structlog

from consumers import jtai_desk as desk
from consumers.inbox import needs_route
from consumers.jtai_desk import Decided, TriageItem, TriageView
from schemas.audit import InboxRead
from schemas.errors import ConfigurationError, LiaisonError
from schemas.events import Theme
from schemas.inspectorates import Inspectorate
from schemas.jtai import JtaiDecision
from schemas.keys import SigningKey, TrustStore
from schemas.records import signed_record
from schemas.signed import (
    FEED_TYPES,
    JTAI_TOPIC_TYPES,
    OUTCOME_TOPIC_TYPES,
    SignedEvent,
    seal_signed,
)
from services.audit_log import append_audit, audit_outbound
from services.kafka import transactional_sink
from services.keystore import check_signing_key
from services.reading import read_signed
from services.settings import Settings
from services.trust import load_trust

__all__ = [
    "MAX_IDS_PER_RECORD",
    "ConsiderationNotFoundError",
    "TriageRead",
    "read_triage",
    "read_view",
    "record_decision",
    "selected_areas",
]

MAX_IDS_PER_RECORD: Final = 500
"""Most event ids one ``inbox.read`` record names (an audit record is at most 64 KiB); a
read showing more is audited by as many records as it needs, appended together."""

_log = structlog.get_logger("liaison.jtai")


class ConsiderationNotFoundError(LiaisonError, LookupError):
    """No verified JTAI consideration with that id is on ``liaison.jtai``."""


@dataclass(frozen=True, slots=True)
class TriageRead:
    """What one audited read found and showed."""

    view: TriageView
    """Every consideration on the log (decided ones too), and the decisions ignored."""
    shown: tuple[TriageItem, ...]
    """The considerations shown (open ones, unless decided ones were asked for, filtered)."""
    refused: int
    """Records on the topics read that did not verify (never shown)."""
    audit: tuple[InboxRead, ...]
    """The receipt appended to the audit log before this was returned."""


async def read_view(
    settings: Settings, trust: TrustStore, now: dt.datetime, *, findings: bool = True
) -> tuple[TriageView, int]:
    """The triage view of everything on the log now, and how many records did not verify.

    Without ``findings`` only ``liaison.jtai`` is read (considerations and decisions:
    enough to know what was decided, not to show contributing findings' details).
    """
    topics = settings.topics
    accept: dict[str, frozenset[str]] = {topics.jtai: JTAI_TOPIC_TYPES}
    if findings:
        accept |= {topics.feed: FEED_TYPES, topics.outcomes: OUTCOME_TOPIC_TYPES}
    read = await read_signed(settings, accept, trust, now)
    # Routed copies on liaison.jtai prove nothing by being there; their originals on the
    # feed and liaison.outcomes are what counts.
    events: list[SignedEvent] = [
        opened.event
        for record, opened in read.verified
        if record.topic != topics.jtai or not needs_route(opened.event)
    ]
    for record, error in read.refused:
        # The reason code and where: never the record's content.
        _log.warning(
            "jtai_record_refused",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=str(error.reason),
        )
    return desk.triage(events), len(read.refused)


def _chunks(ids: Iterable[uuid.UUID]) -> list[tuple[uuid.UUID, ...]]:
    unique = tuple(dict.fromkeys(ids))
    return [
        unique[i : i + MAX_IDS_PER_RECORD] for i in range(0, len(unique), MAX_IDS_PER_RECORD)
    ] or [()]


async def read_triage(
    settings: Settings,
    *,
    acting_for: Inspectorate,
    key: SigningKey,
    now: dt.datetime,
    include_decided: bool = False,
    area: str | None = None,
    theme: Theme | None = None,
    consideration_id: uuid.UUID | None = None,
    trust: TrustStore | None = None,
) -> TriageRead:
    """The considerations ``acting_for``'s JTAI team member asked for, audited as receipt.

    Open considerations (every one with ``include_decided``), in ``area`` / on ``theme``
    when given; with ``consideration_id`` just that one, decided or not
    (``ConsiderationNotFoundError`` if it is not on the log, and nothing is audited). The
    ``inbox.read`` record (actor ``inspectorate:<acting_for>``, signed by ``key``, naming
    every consideration and contributing finding shown) is on the audit log before this
    returns.
    """
    trust = trust if trust is not None else await load_trust(settings)
    check_signing_key(key, acting_for.value, trust, now)
    view, refused = await read_view(settings, trust, now)
    filters: dict[str, str] = {}
    if consideration_id is not None:
        item = view.find(consideration_id)
        if item is None:
            raise ConsiderationNotFoundError(
                f"no JTAI consideration {consideration_id} on {settings.topics.jtai}"
            )
        shown: tuple[TriageItem, ...] = (item,)
        filters["id"] = str(consideration_id)
    else:
        shown = desk.select(view, include_decided=include_decided, area=area, theme=theme)
        if include_decided:
            filters["all"] = "true"
        if area is not None:
            filters["area"] = area
        if theme is not None:
            filters["theme"] = theme.value
    records = tuple(
        InboxRead(
            at=now,
            actor=f"inspectorate:{acting_for.value}",
            event_ids=ids,
            queue=settings.topics.jtai,
            filters=filters,
            returned=len(shown),
        )
        for ids in _chunks(i for item in shown for i in item.shown_ids)
    )
    await append_audit(settings, records, key)
    _log.info(
        "jtai_read",
        inspectorate=acting_for.value,
        returned=len(shown),
        refused=refused,
        ignored_decisions=len(view.ignored),
        id_conflicts=len(view.conflicts),
    )
    return TriageRead(view, shown, refused, records)


async def record_decision(
    settings: Settings,
    consideration_id: uuid.UUID,
    decision: JtaiDecision,
    reason: str,
    *,
    key: SigningKey,
    now: dt.datetime,
    trust: TrustStore | None = None,
) -> Decided:
    """Record the JTAI programme's ``decision`` on a consideration, for the inspectorate
    that owns ``key``; return the decision and its audit record once both are committed.

    ``ConsiderationNotFoundError`` for an id not on ``liaison.jtai`` (verified);
    ``SchemaError`` naming the rule when ``reason`` holds personal data; nothing is sent
    then. The decision (signed by ``key``, keyed by area) and its ``jtai.decision_recorded``
    (actor ``inspectorate:<owner>``, signed by ``key``) commit in one Kafka transaction.
    """
    try:
        acting_for = Inspectorate(key.owner)
    except ValueError:
        raise ConfigurationError(
            f"a JTAI decision is recorded by an inspectorate, not by a key of {key.owner}"
        ) from None
    trust = trust if trust is not None else await load_trust(settings)
    check_signing_key(key, acting_for.value, trust, now)
    view, _refused = await read_view(settings, trust, now, findings=False)
    item = view.find(consideration_id)
    if item is None:
        raise ConsiderationNotFoundError(
            f"no JTAI consideration {consideration_id} on {settings.topics.jtai}"
        )
    decided = desk.decide(
        item.consideration,
        decision_id=uuid.uuid4(),
        source=acting_for,
        decision=decision,
        reason=reason,
        at=now,
    )
    sealed = seal_signed(decided.event, key, now)
    records = (
        signed_record(settings.topics.jtai, decided.event, sealed.envelope),
        audit_outbound(settings, decided.audit, key),
    )
    async with (
        transactional_sink(settings, acting_for.value) as sink,
        sink.transaction() as transaction,
    ):
        pending = [await transaction.send(record) for record in records]
        for delivery in pending:
            await delivery
    _log.info(
        "jtai_decision_recorded",
        decision_id=str(decided.event.id),
        consideration_id=str(consideration_id),
        inspectorate=acting_for.value,
        area=decided.event.area,
        decision=decision.value,
        keyid=key.keyid,
    )
    return decided


async def selected_areas(
    settings: Settings, trust: TrustStore, now: dt.datetime
) -> dict[str, tuple[Theme, dt.datetime]]:
    """Areas whose consideration's current decision is ``select``: area -> (theme, when
    decided). For an inbox's "selected for a JTAI" mark; reads ``liaison.jtai`` only and
    audits nothing (the inbox's own read is its receipt)."""
    view, _refused = await read_view(settings, trust, now, findings=False)
    return desk.selected_areas(view)
