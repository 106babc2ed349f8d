"""Programme inboxes, outcomes, overdue reminders and the unrouted list: the I/O.

The decisions are ``consumers.inbox``'s (pure); here the topics are read whole and every
envelope verified again (``services.reading.read_signed``), a record on a queue counts
only with the router's route attestation (checked by ``consumers.inbox``), reads are
audited as receipt
and outcomes and reminders are published with their audit records in one Kafka
transaction. The CLI (``liaison inbox``, ``liaison unrouted``) and the Python API use
these functions alike, so both write the same audit records:

* ``read_inbox``: a programme's inbox; one ``inbox.read`` record naming the events
  shown, signed by the reading inspectorate's key, appended before anything is returned.
* ``show_finding``: one finding's row with its outcomes, reminder, delivery and JTAI
  status; audited the same way (naming every one of them).
* ``record_outcome``: an ``OutcomeRecorded`` for a finding routed to the programme,
  signed by the receiving inspectorate, to ``liaison.outcomes`` with ``outcome.recorded``.
* ``raise_reminders``: one ``OutcomeOverdue`` (bus key) per overdue finding, once, with
  ``outcome.reminder_raised`` (actor ``router:overdue``).
* ``read_unrouted``: verified findings no rule took, audited as an operator's read.

Who reads: a programme's own inspectorate (``owner_of``); the joint JTAI programme is
read by any inspectorate, which says which (``acting_for``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Final
from uuid import UUID, uuid4

from consumers.inbox import (
    DEFAULT_WORKING_DAYS,
    Inbox,
    InboxQuery,
    Reminders,
    Unrouted,
    build_inbox,
    build_unrouted,
    due_reminders,
    refusal_counts,
)
from schemas.audit import InboxRead, OutcomeGiven, ReminderRaised
from schemas.errors import LiaisonError, SchemaError
from schemas.events import FINDING_TYPES, InspectorateEvent, Theme
from schemas.inspectorates import JTAI, Inspectorate, Programme, owner_of
from schemas.keys import BUS, SigningKey, TrustStore
from schemas.outcomes import Outcome, OutcomeOverdue, OutcomeRecorded
from schemas.records import OutboundRecord, signed_record
from schemas.signed import (
    DELIVERY_TOPIC_TYPES,
    JTAI_TOPIC_TYPES,
    OUTCOME_TOPIC_TYPES,
    PROGRAMME_TOPIC_TYPES,
    decode_signed,
    seal_signed,
)
from services.audit_log import append_audit, audit_outbound
from services.kafka import transactional_sink
from services.keystore import check_signing_key
from services.reading import read_signed
from services.settings import Settings
from services.trust import load_trust

__all__ = [
    "OVERDUE_ACTOR",
    "InboxError",
    "accepted",
    "acting_inspectorate",
    "raise_reminders",
    "read_inbox",
    "read_unrouted",
    "record_outcome",
    "show_finding",
]

OVERDUE_ACTOR: Final = "router:overdue"
"""The actor of reminder audit records (signed by the bus's key)."""

_IDS_PER_RECEIPT: Final = 1000
"""Event ids per ``inbox.read`` record: a large read is several records, each well under
the audit log's size limit."""


class InboxError(LiaisonError):
    """A finding is not in the programme's inbox, or an inbox is asked for as an
    inspectorate that does not read it; trying again as asked cannot help."""


def acting_inspectorate(programme: Programme, acting_for: Inspectorate | None) -> Inspectorate:
    """Who reads ``programme``'s inbox: its owner, or for JTAI the inspectorate named."""
    owner = owner_of(programme)
    if owner is None:
        if acting_for is None:
            names = ", ".join(i.value for i in Inspectorate)
            raise InboxError(
                f"the jtai programme is joint: say which inspectorate you act for (--as {names})"
            )
        return acting_for
    if acting_for is not None and acting_for is not owner:
        msg = f"{programme.value} is run by {owner.value}, not {acting_for.value}"
        raise InboxError(msg)
    return owner


def _queue_types(programme: Programme) -> frozenset[str]:
    return JTAI_TOPIC_TYPES if programme is JTAI else PROGRAMME_TOPIC_TYPES


def accepted(settings: Settings, programme: Programme) -> dict[str, frozenset[str]]:
    """The topics an inbox reads, each with the signed types it carries."""
    topics = settings.topics
    queue = topics.programme(programme)
    return {
        queue: _queue_types(programme),
        topics.outcomes: OUTCOME_TOPIC_TYPES,
        topics.delivery: DELIVERY_TOPIC_TYPES,
        topics.jtai: JTAI_TOPIC_TYPES,
    }


def _receipts(
    queue: str,
    actor: str,
    ids: Sequence[UUID],
    *,
    filters: dict[str, str],
    returned: int,
    now: dt.datetime,
) -> list[InboxRead]:
    """The ``inbox.read`` record(s) of one read: every id shown, in parts if many."""
    parts = [ids[i : i + _IDS_PER_RECEIPT] for i in range(0, len(ids), _IDS_PER_RECEIPT)]
    if len(parts) <= 1:
        parts, named = [ids], [filters]
    else:
        named = [{**filters, "part": f"{n} of {len(parts)}"} for n in range(1, len(parts) + 1)]
    return [
        InboxRead(
            at=now,
            actor=actor,
            event_ids=tuple(part),
            queue=queue,
            filters=given,
            returned=returned,
        )
        for part, given in zip(parts, named, strict=True)
    ]


async def _in_one_transaction(
    settings: Settings, owner: str, records: Sequence[OutboundRecord]
) -> None:
    """Produce ``records`` in one Kafka transaction: all become visible, or none."""
    async with transactional_sink(settings, owner) as sink, sink.transaction() as transaction:
        sent = [await transaction.send(record) for record in records]
        for delivery in sent:
            await delivery


async def _inbox(
    settings: Settings,
    programme: Programme,
    trust: TrustStore,
    now: dt.datetime,
    *,
    working_days: int,
    reader: Inspectorate,
) -> Inbox:
    found = await read_signed(settings, accepted(settings, programme), trust, now)
    return build_inbox(
        programme, settings.topics, found.verified, now, trust=trust,
        working_days=working_days, refused=refusal_counts(found.refused), reader=reader,
    )  # fmt: skip


async def read_inbox(
    settings: Settings,
    programme: Programme,
    *,
    acting_for: Inspectorate | None,
    key: SigningKey,
    include_decided: bool = False,
    area: str | None = None,
    theme: Theme | None = None,
    source: Inspectorate | None = None,
    overdue_only: bool = False,
    working_days: int = DEFAULT_WORKING_DAYS,
    now: dt.datetime | None = None,
    trust: TrustStore | None = None,
) -> Inbox:
    """``programme``'s inbox: findings routed to it with no outcome yet (every one with
    ``include_decided``) and what came back about its own findings, filtered.

    The read is audited as receipt before it is returned: one ``inbox.read`` (actor
    ``inspectorate:<acting_for>``, signed by ``key``) naming every event shown. If that
    append fails, the error is raised and nothing is returned.
    """
    reader = acting_inspectorate(programme, acting_for)
    now = now or dt.datetime.now(dt.UTC)
    trust = trust or await load_trust(settings)
    check_signing_key(key, reader.value, trust, now)
    query = InboxQuery(
        include_decided=include_decided, area=area, theme=theme, source=source,
        overdue_only=overdue_only,
    )  # fmt: skip
    inbox = (
        await _inbox(settings, programme, trust, now, working_days=working_days, reader=reader)
    ).select(query)
    filters = {"programme": programme.value, **query.filters()}
    if working_days != DEFAULT_WORKING_DAYS:
        filters["working_days"] = str(working_days)
    receipts = _receipts(
        inbox.queue, f"inspectorate:{reader.value}", inbox.shown_ids(), filters=filters,
        returned=len(inbox.rows), now=now,
    )  # fmt: skip
    await append_audit(settings, receipts, key)
    return inbox


async def show_finding(
    settings: Settings,
    programme: Programme,
    finding_id: UUID,
    *,
    acting_for: Inspectorate | None,
    key: SigningKey,
    working_days: int = DEFAULT_WORKING_DAYS,
    now: dt.datetime | None = None,
    trust: TrustStore | None = None,
) -> Inbox:
    """The inbox of ``programme`` holding only ``finding_id``'s row (decided or not), with
    its outcomes, reminder, delivery results and JTAI status; nothing returned about the
    programme's own findings.

    Audited as ``read_inbox`` (the ids of the finding, its outcomes and its reminder);
    ``InboxError`` if the finding was not routed to ``programme``.
    """
    reader = acting_inspectorate(programme, acting_for)
    now = now or dt.datetime.now(dt.UTC)
    trust = trust or await load_trust(settings)
    check_signing_key(key, reader.value, trust, now)
    inbox = await _inbox(settings, programme, trust, now, working_days=working_days, reader=reader)
    row = inbox.row(finding_id)
    if row is None:
        raise _not_routed(finding_id, programme, inbox.queue)
    filters = {"programme": programme.value, "id": str(finding_id)}
    receipts = _receipts(
        inbox.queue, f"inspectorate:{reader.value}", row.shown_ids(history=True),
        filters=filters, returned=1, now=now,
    )  # fmt: skip
    await append_audit(settings, receipts, key)
    return replace(inbox, rows=(row,), returned=())


def _not_routed(finding_id: UUID, programme: Programme, queue: str) -> InboxError:
    return InboxError(
        f"{finding_id} was not routed to {programme.value}: no verified finding with this"
        f" id and the router's route on {queue}"
    )


def _outcome(
    finding: InspectorateEvent,
    programme: Programme,
    receiver: Inspectorate,
    *,
    outcome: Outcome,
    note: str,
    now: dt.datetime,
) -> OutcomeRecorded:
    """The outcome event, validated as a reader will (``SchemaError`` lists every
    problem: a note refused by the minimisation lint, say)."""
    document = {
        "type": "uk.inspectorate.finding.outcome_recorded.v1",
        "id": str(uuid4()),
        "source": receiver.value,
        "occurred_at": now.astimezone(dt.UTC).isoformat(),
        "area": finding.area,
        "theme": finding.theme.value,
        "programme": programme.value,
        "finding_id": str(finding.id),
        "finding_type": finding.type,
        "finding_source": finding.source.value,
        "finding_programme": finding.programme.value,
        "outcome": outcome.value,
        "note": note,
    }
    event = decode_signed(json.dumps(document), now=now)
    if not isinstance(event, OutcomeRecorded):  # pragma: no cover - the type says so
        raise SchemaError("not an outcome")
    return event


async def record_outcome(
    settings: Settings,
    programme: Programme,
    finding_id: UUID,
    outcome: Outcome,
    note: str,
    *,
    key: SigningKey,
    now: dt.datetime,
    trust: TrustStore | None = None,
) -> OutcomeRecorded:
    """Record what ``programme`` did with a finding routed to it.

    The receiving inspectorate is ``key``'s owner (it must run ``programme``; any may act
    for JTAI). The finding is looked up, verified and with the router's route, on the
    programme's queue (``InboxError`` if it is not there). The ``OutcomeRecorded`` is
    signed with ``key`` and published to ``liaison.outcomes`` in one Kafka transaction
    with its ``outcome.recorded`` audit record, signed by the same key.
    """
    try:
        receiver = Inspectorate(key.owner)
    except ValueError:
        raise InboxError(f"a key of {key.owner} cannot record an outcome") from None
    acting_inspectorate(programme, receiver)
    trust = trust or await load_trust(settings)
    check_signing_key(key, receiver.value, trust, now)
    topics = settings.topics
    queue = topics.programme(programme)
    found = await read_signed(settings, {queue: _queue_types(programme)}, trust, now)
    routed = build_inbox(programme, topics, found.verified, now, trust=trust).row(finding_id)
    if routed is None:
        raise _not_routed(finding_id, programme, queue)
    finding = routed.finding
    event = _outcome(finding, programme, receiver, outcome=outcome, note=note.strip(), now=now)
    sealed = seal_signed(event, key, now)
    audit = OutcomeGiven(
        at=now, actor=f"inspectorate:{receiver.value}", event_ids=(finding.id, event.id),
        outcome_id=event.id, programme=programme, outcome=outcome,
    )  # fmt: skip
    await _in_one_transaction(
        settings,
        receiver.value,
        [
            signed_record(settings.topics.outcomes, event, sealed.envelope),
            audit_outbound(settings, audit, key),
        ],
    )
    return event


async def raise_reminders(
    settings: Settings,
    programmes: Iterable[Programme] | None = None,
    *,
    key: SigningKey,
    working_days: int = DEFAULT_WORKING_DAYS,
    now: dt.datetime,
    trust: TrustStore | None = None,
) -> Reminders:
    """Publish one ``OutcomeOverdue`` for every finding routed to ``programmes`` (every
    programme by default) with no outcome after ``working_days`` and no reminder yet.

    Signed by the bus's key (``key``, owner ``liaison``), each with its
    ``outcome.reminder_raised`` audit record (actor ``router:overdue``), all in one Kafka
    transaction. A reminder's id is derived from the finding and the programme, and one
    already on ``liaison.outcomes`` is never raised again.
    """
    chosen = list(dict.fromkeys(programmes or Programme))
    trust = trust or await load_trust(settings)
    check_signing_key(key, BUS, trust, now)
    topics = settings.topics
    accept: dict[str, frozenset[str]] = {topics.outcomes: OUTCOME_TOPIC_TYPES}
    for programme in chosen:
        accept[topics.programme(programme)] = _queue_types(programme)
    found = await read_signed(settings, accept, trust, now)
    raised: list[OutcomeOverdue] = []
    skipped: list[tuple[UUID, str]] = []
    for programme in chosen:
        inbox = build_inbox(
            programme, topics, found.verified, now, trust=trust, working_days=working_days
        )
        owed = due_reminders(inbox, now)
        raised.extend(owed.raised)
        skipped.extend(owed.skipped)
    records: list[OutboundRecord] = []
    for reminder in raised:
        sealed = seal_signed(reminder, key, now)
        audit = ReminderRaised(
            at=now, actor=OVERDUE_ACTOR, event_ids=(reminder.finding_id,),
            reminder_id=reminder.id, programme=reminder.programme,
        )  # fmt: skip
        records.append(signed_record(topics.outcomes, reminder, sealed.envelope))
        records.append(audit_outbound(settings, audit, key))
    if records:
        await _in_one_transaction(settings, BUS, records)
    return Reminders(tuple(raised), tuple(skipped))


async def read_unrouted(
    settings: Settings,
    *,
    key: SigningKey,
    actor: str,
    since: dt.datetime | None = None,
    now: dt.datetime | None = None,
    trust: TrustStore | None = None,
) -> Unrouted:
    """Verified findings the router put on ``liaison.unrouted`` (with its route; appended
    since ``since``), audited as one ``inbox.read`` of that topic by ``actor`` (an
    operator), signed by ``key``."""
    now = now or dt.datetime.now(dt.UTC)
    trust = trust or await load_trust(settings)
    topic = settings.topics.unrouted
    found = await read_signed(settings, {topic: FINDING_TYPES}, trust, now)
    unrouted = build_unrouted(
        topic, found.verified, trust=trust, now=now, since=since,
        refused=refusal_counts(found.refused),
    )  # fmt: skip
    filters = {"since": since.isoformat()} if since is not None else {}
    receipts = _receipts(
        topic, actor, unrouted.shown_ids(), filters=filters, returned=len(unrouted.rows), now=now
    )
    await append_audit(settings, receipts, key)
    return unrouted
