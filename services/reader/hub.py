"""The reader's live view of the log: every verified finding, outcome, consideration and
decision, kept in memory and followed as the router appends.

``FeedHub.start`` reads ``liaison.feed.areas`` (findings and outcomes) and ``liaison.jtai``
(the bus's considerations and the JTAI programme's decisions; routed copies of findings
there are left to the feed) from the beginning to their end, committed records only,
verifying every envelope with the trust store, then follows both topics in the
background. Each verified event becomes an ``Entry``: the record, the opened envelope and
the analysts' ``Item`` (``consumers.analysis``), numbered in arrival order (``seq``) so a
live feed can ask for what came after what it has sent.

Trust is judged again whenever it changes: when the trust store the service follows is a
new one (a key revoked, a key added), every record kept is opened again with it, and an
event whose key no longer verifies leaves every view at once (it keeps its ``seq``, so a
follower never sees it twice). A record that does not verify is counted by reason and
never shown; nothing of it is logged but its place and reason.

Anyone able to write a topic can write anything to it, so what is kept is bounded by
what verifies: a record that does not verify is kept (to be judged again) only when a
change of trust could make it verify (a key not known yet, or not yet valid), and at most
``MAX_PENDING`` of those; any other is counted and dropped. A record whose event (by
publisher, id and signed bytes) is already held is a replay and is dropped too, so a
re-appended old finding never shows as new. The view changes (and live feeds wake) only
when the set of verified events does. Memory otherwise grows with the feed (about a
kilobyte an event); bounded state is the scale-out issue's work, as for the router.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from consumers import jtai_desk as desk
from consumers.analysis import Item, project
from consumers.inbox import needs_route
from schemas.envelope import Reason
from schemas.errors import EnvelopeError
from schemas.events import Theme
from schemas.jtai import JtaiDecision
from schemas.keys import TrustStore
from schemas.records import InboundRecord
from schemas.signed import FEED_TYPES, JTAI_TOPIC_TYPES, OpenedSigned, open_signed
from services.kafka import assigned, catch_up, inbound
from services.settings import Settings

__all__ = ["Entry", "FeedHub", "LogView"]

_log = structlog.get_logger("liaison.reader.hub")

_POLL_MS: Final = 500
_RETRY_S: Final = 1.0
_WAIT_STEP_S: Final = 0.2
MAX_PENDING: Final = 10_000
"""Most refused records kept to be judged again when trust changes (the oldest go first)."""
_PENDING_REASONS: Final = frozenset({Reason.UNKNOWN_KEY, Reason.KEY_NOT_VALID})


@dataclass(frozen=True, slots=True)
class Entry:
    """One verified event: where it was read, its opened envelope, and its row."""

    seq: int
    record: InboundRecord
    opened: OpenedSigned
    item: Item


@dataclass(frozen=True, slots=True)
class LogView:
    """Everything verified at one moment (immutable: a page renders from one view)."""

    entries: tuple[Entry, ...]
    triage: desk.TriageView
    refused: Mapping[str, int]
    """Records that did not verify, by reason code."""
    version: int

    @property
    def items(self) -> tuple[Item, ...]:
        """Every verified event's row, in arrival order."""
        return tuple(e.item for e in self.entries)

    def after(self, seq: int) -> tuple[Entry, ...]:
        """The entries that arrived after ``seq`` (0: all)."""
        return tuple(e for e in self.entries if e.seq > seq)

    def find(self, event_id: uuid.UUID) -> tuple[Entry, ...]:
        """Every verified entry with this event id (two publishers may use one id)."""
        return tuple(e for e in self.entries if e.item.id == event_id)

    @property
    def last_seq(self) -> int:
        """The newest entry's number (0: none)."""
        return self.entries[-1].seq if self.entries else 0

    def jtai_marks(
        self, admits: Callable[[str, Theme], bool]
    ) -> tuple[frozenset[str], frozenset[str], tuple[uuid.UUID, ...]]:
        """Areas with an open JTAI consideration, areas selected for a JTAI, and the ids
        of the considerations and standing decisions behind those marks, counting only
        considerations whose area and theme ``admits`` (the analyst's scope): a mark never
        tells of a consideration the analyst may not see."""
        considered: set[str] = set()
        selected: set[str] = set()
        ids: list[uuid.UUID] = []
        for item in self.triage.items:
            area, theme = item.consideration.area, item.consideration.theme
            if not admits(area, theme):
                continue
            current = item.current
            if current is not None and current.decision is JtaiDecision.SELECT:
                selected.add(area)
            elif item.is_open:
                considered.add(area)
            else:
                continue
            ids.append(item.consideration.id)
            if current is not None:
                ids.append(current.id)
        return frozenset(considered), frozenset(selected), tuple(dict.fromkeys(ids))


def _accepted(settings: Settings) -> dict[str, frozenset[str]]:
    topics = settings.topics
    return {
        topics.feed: FEED_TYPES,
        # Every type the JTAI queue carries: routed copies verify and are then left to the
        # feed (``_open``), rather than counted as refused.
        topics.jtai: JTAI_TOPIC_TYPES,
    }


class FeedHub:
    """The verified feed and JTAI log, in memory, followed live (one per service)."""

    def __init__(
        self,
        settings: Settings,
        trust: Callable[[], TrustStore],
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._settings = settings
        self._trust = trust
        self._clock = clock
        self._accept = _accepted(settings)
        self._pending: collections.OrderedDict[int, InboundRecord] = collections.OrderedDict()
        self._held: set[tuple[str, uuid.UUID, bytes]] = set()
        self._entries: list[Entry] = []
        self._refused: collections.Counter[str] = collections.Counter()
        self._judged_with: TrustStore | None = None
        self._seq = 0
        self._version = 0
        self._view: LogView | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._resources = contextlib.AsyncExitStack()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read both topics to their end now, then follow them in the background."""
        resources = contextlib.AsyncExitStack()
        try:
            consumer = await resources.enter_async_context(
                assigned(self._settings, list(self._accept))
            )
            async for records in catch_up(consumer):
                self.add([inbound(raw) for raw in records])
        except BaseException:
            await resources.aclose()
            raise
        self._resources = resources
        self._consumer = consumer
        _log.info("feed_loaded", events=len(self._entries), refused=sum(self._refused.values()))
        self._task = asyncio.create_task(self._follow(consumer))

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._consumer = None
        with contextlib.suppress(KafkaError):
            await self._resources.aclose()

    def add(self, records: Sequence[InboundRecord]) -> None:
        """Take records as read (``start`` and the follower call this; tests may too)."""
        now = self._clock()
        trust = self._current_trust(now)
        changed = False
        for record in records:
            self._seq += 1
            changed |= self._open(self._seq, record, trust, now)
        if changed:
            self._touch()
        elif records and self._view is not None:
            # Only counts changed: the same version (nobody wakes), no triage rebuilt.
            self._view = dataclasses.replace(self._view, refused=dict(self._refused))

    def view(self) -> LogView:
        """Everything verified now, judged with the trust store as it is now."""
        self._current_trust(self._clock())
        if self._view is None:
            events = [e.opened.event for e in self._entries]
            self._view = LogView(
                entries=tuple(self._entries),
                triage=desk.triage(events),
                refused=dict(self._refused),
                version=self._version,
            )
        return self._view

    async def wait(self, version: int, *, within: float) -> int:
        """Return once the view is newer than ``version`` or ``within`` seconds passed;
        the version then.

        It looks every ``_WAIT_STEP_S`` rather than waiting on a condition: a hub may be fed
        from another event loop (the follower's, or a test's), and a look costs nothing.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self.view().version <= version and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(min(_WAIT_STEP_S, max(deadline - loop.time(), 0)))
        return self.view().version

    # -- inside ------------------------------------------------------------------------

    def _take(self, batch: Mapping[TopicPartition, Collection[object]]) -> None:
        self.add([inbound(raw) for records in batch.values() for raw in records])

    def _current_trust(self, now: dt.datetime) -> TrustStore:
        trust = self._trust()
        if self._judged_with is not None and trust is not self._judged_with:
            self._judged_with = trust
            kept = [(e.seq, e.record) for e in self._entries]
            again = sorted([*kept, *self._pending.items()], key=lambda pair: pair[0])
            self._entries.clear()
            self._pending.clear()
            self._held.clear()
            for reason in _PENDING_REASONS:  # judged again below; every other count stands
                self._refused.pop(str(reason), None)
            for seq, record in again:
                self._open(seq, record, trust, now)
            self._touch()
            _log.info("feed_judged_again", events=len(self._entries))
        self._judged_with = trust
        return trust

    def _open(self, seq: int, record: InboundRecord, trust: TrustStore, now: dt.datetime) -> bool:
        """Judge one record; whether it added a verified event."""
        try:
            opened = open_signed(record, trust, now, self._accept[record.topic])
        except EnvelopeError as exc:
            self._refused[str(exc.reason)] += 1
            if exc.reason in _PENDING_REASONS:
                self._pending[seq] = record
                while len(self._pending) > MAX_PENDING:
                    self._pending.popitem(last=False)
            _log.warning(
                "feed_record_refused",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                reason=str(exc.reason),
            )
            return False
        if record.topic == self._settings.topics.jtai and needs_route(opened.event):
            return False  # a routed copy: its original on the feed is what counts
        held = (str(opened.event.source), opened.event.id, hashlib.sha256(opened.payload).digest())
        if held in self._held:
            return False  # a replay of an event already held: never shown as new
        received = dt.datetime.fromtimestamp(record.timestamp_ms / 1000, dt.UTC)
        item = project(opened.event, received)
        if item is None:
            return False
        self._held.add(held)
        self._entries.append(Entry(seq=seq, record=record, opened=opened, item=item))
        return True

    def _touch(self) -> None:
        self._version += 1
        self._view = None

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        failing = False
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=_POLL_MS)
            except KafkaError as exc:
                if not failing:
                    _log.warning("feed_follow_failed", error=type(exc).__name__)
                    failing = True
                await asyncio.sleep(_RETRY_S)
                continue
            if failing:
                _log.info("feed_follow_resumed")
                failing = False
            self._take(batch)
            self._current_trust(self._clock())
