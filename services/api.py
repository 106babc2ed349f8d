"""Liaison's Python API for inspectorate systems: the few calls an integrator needs.

An inspectorate's system builds its findings as the contract's models
(``schemas.events.ConcernRaised``, ``ExceptionalPracticeIdentified``,
``RecommendationMade``, ``RecommendationReviewed``), checks them with ``problems``,
publishes them signed with its own key (``publish``); its programme teams read their
inboxes (``inbox``) and record what they did (``record_outcome``). The calls write
exactly the audit records the CLI writes (they share its code): publishing writes
``event.published`` in the same Kafka transaction as the events, reading an inbox
``inbox.read`` (receipt), an outcome ``outcome.recorded`` with the signed event. The
README's "Python API" section shows both sides; a test runs it.

Settings come from the environment (``LIAISON_*``, as for the CLI); the signing key is
``LIAISON_SIGNING_KEY`` / ``LIAISON_SIGNING_KEY_FILE`` or the owner's active key in the
local key store. Every failure is a ``schemas.errors.LiaisonError`` whose message is one
line, safe to show (it never quotes a finding's text).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from uuid import UUID

from consumers.inbox import DEFAULT_WORKING_DAYS, MAX_WORKING_DAYS, Inbox
from producers.publisher import BATCH, Published, Publisher
from schemas.errors import SchemaError
from schemas.events import InspectorateEvent, encode_event, validate_event
from schemas.inspectorates import Inspectorate, Programme
from schemas.keys import SigningKey, TrustStore
from schemas.outcomes import Outcome, OutcomeRecorded
from services.inbox import read_inbox, record_outcome
from services.kafka import transactional_sink
from services.keystore import KeyStore, signing_key_for
from services.settings import Settings, load_settings
from services.trust import load_trust

__all__ = ["Liaison"]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _programme(name: str) -> Programme:
    try:
        return Programme(name)
    except ValueError:
        names = ", ".join(p.value for p in Programme)
        raise SchemaError(f"{name!r} is not a programme ({names})") from None


def _outcome(name: Outcome | str) -> Outcome:
    try:
        return Outcome(name)
    except ValueError:
        names = ", ".join(o.value for o in Outcome)
        raise SchemaError(f"{name!r} is not an outcome ({names})") from None


class Liaison:
    """One inspectorate's connection to the bus: its settings, trust store and key."""

    def __init__(
        self,
        settings: Settings,
        inspectorate: Inspectorate,
        key: SigningKey,
        trust: TrustStore,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        """Prefer ``Liaison.connect``; this is for callers that hold the parts already."""
        self.settings = settings
        self.inspectorate = inspectorate
        self._key = key
        self._trust = trust
        self._clock = clock

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, inspectorate: str, settings: Settings | None = None
    ) -> AsyncIterator[Liaison]:
        """Connect as ``inspectorate`` (``ofsted``, ``cqc``, ...): settings from the
        environment unless given, the trust store from the bus, and the signing key."""
        try:
            who = Inspectorate(inspectorate)
        except ValueError:
            names = ", ".join(i.value for i in Inspectorate)
            raise SchemaError(f"{inspectorate!r} is not an inspectorate ({names})") from None
        settings = settings or load_settings()
        trust = await load_trust(settings)
        key = signing_key_for(who.value, settings, KeyStore(settings), trust)
        yield cls(settings, who, key, trust)

    def problems(self, event: InspectorateEvent) -> list[str]:
        """Every way ``event`` falls short of the contract (fields, reference data, the
        minimisation lint, the clock), as ``path: reason`` lines; ``[]`` when valid."""
        try:
            validate_event(encode_event(event), now=self._clock())
        except SchemaError as exc:
            return [str(p) for p in exc.problems] or [str(exc)]
        if event.source is not self.inspectorate:
            return [f"source: is {event.source.value}, not {self.inspectorate.value}"]
        return []

    async def publish(self, events: Sequence[InspectorateEvent]) -> list[Published]:
        """Validate, sign and publish ``events`` with their ``event.published`` audit
        records, in transactions of ``BATCH``; return once every one has committed.

        Nothing is sent if any event is invalid (``SchemaError`` lists the problems).
        """
        async with transactional_sink(self.settings, self.inspectorate.value) as sink:
            publisher = Publisher(sink, self.settings.topics, self._key, self._clock)
            sealed = [publisher.seal(event) for event in events]
            published: list[Published] = []
            async for batch in publisher.publish_all(sealed, BATCH):
                published.extend(batch)
        return published

    async def inbox(
        self,
        programme: str,
        *,
        include_decided: bool = False,
        working_days: int = DEFAULT_WORKING_DAYS,
    ) -> Inbox:
        """What was routed to ``programme`` (one this inspectorate runs, or ``jtai``) and has
        no outcome yet (``include_decided``: everything), every envelope verified again;
        audited as receipt before it is returned."""
        if not 1 <= working_days <= MAX_WORKING_DAYS:
            msg = f"working_days must be from 1 to {MAX_WORKING_DAYS}, not {working_days}"
            raise SchemaError(msg)
        return await read_inbox(
            self.settings,
            _programme(programme),
            acting_for=self.inspectorate,
            key=self._key,
            include_decided=include_decided,
            working_days=working_days,
            now=self._clock(),
            trust=self._trust,
        )

    async def record_outcome(
        self, programme: str, finding_id: UUID, outcome: Outcome | str, note: str
    ) -> OutcomeRecorded:
        """Record what ``programme`` did with a finding routed to it: a signed
        ``OutcomeRecorded`` on ``liaison.outcomes`` (routed back to the publisher) with its
        audit record, in one transaction."""
        return await record_outcome(
            self.settings,
            _programme(programme),
            finding_id,
            _outcome(outcome),
            note,
            key=self._key,
            now=self._clock(),
            trust=self._trust,
        )
