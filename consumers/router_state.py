"""The router's state as records of ``liaison.router.state``: encode, authenticate, load.

The router's memory of one partition number *p* (the ids it routed within the dedupe
horizon, the JTAI watch's retained concerns and claimed windows, and how far it has read
each input topic's partition *p*) is written to partition *p* of a compacted topic, in
the same Kafka transaction as the records it routed and the audit records. So the state
and the log never disagree, and loading it reads only what is live (a bounded amount),
never the whole feed.

Records keyed so that compaction keeps the latest of each (ids and concerns in groups,
so that loading reads few large records however they arrived):

========================  =============================================================
key                       value (compact JSON)
========================  =============================================================
``o``                     ``{"o": {topic: next offset}}``: input read up to here
``r/<id hex>``            a group of ids routed: ``{"t": newest, "i": [[id, signer,``
                          ``kind, routed at ms], ...]}``; null: all past the horizon
``g/<id hex>``            a group of JTAI concerns (``consumers.jtai.Evidence``) recorded:
                          ``{"c": [[id, source, occurred at (us), area, theme, alone,``
                          ``review], ...]}``; null: every one forgotten
``e/<id hex>``            one JTAI concern, as the first state records held it (still
                          read; now written only as a tombstone, when it is forgotten)
``c/<area>/<theme>/<s>/<e>`` ``{"e": e}``: a window [s, e) claimed (us); null: released
========================  =============================================================

Anyone able to write to the topic could try to teach the router a false memory (an id
"already routed", to hide a real event as a duplicate). Every value therefore carries an
HMAC-SHA256 (header ``liaison_mac``) under a key derived from the bus signing key and the
state topic's name (so a record of another deployment's prefix does not verify here),
over the partition, the key and the value; a record whose MAC does not verify is ignored
and counted. What a MAC cannot stop is deletion or rollback by a writer of the topic: a
tombstone carries no value to MAC, and an older valid value of a key still verifies. A
writer could so make the router forget an id (a copy of that event is routed again, with
the same id, which readers drop), a JTAI concern (a consideration may be missed) or a
claimed window (one may be repeated, with the same id). Write access to this topic is
therefore the router's own authority: ``deploy/acls.toml`` grants it to the router's
principal alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from consumers.jtai import Claimed, Evidence, Released
from schemas.events import Theme
from schemas.inspectorates import Inspectorate
from schemas.jtai import JtaiTrigger

__all__ = [
    "HEADER_MAC",
    "OFFSETS_KEY",
    "ConcernGroups",
    "LoadedState",
    "RoutedGroups",
    "RoutedId",
    "StateRecord",
    "encode_offsets",
    "encode_routed",
    "encode_window_change",
    "load_state",
    "mac",
]

HEADER_MAC: Final = "liaison_mac"
_DOMAIN: Final = b"liaison.router.state.v1\x00"
OFFSETS_KEY: Final = b"o"


class RoutedId(NamedTuple):
    """An id the router routed (32 lowercase hex digits, as the router's memory keys it):
    who signed it, what kind of event, when (ms, UTC). A tuple: a restart loads thousands."""

    id: str
    signer: str
    kind: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class StateRecord:
    """One record for (or from) partition ``partition`` of the state topic."""

    partition: int
    key: bytes
    value: bytes | None
    mac: bytes | None = None


def mac(secret: bytes, partition: int, key: bytes, value: bytes) -> bytes:
    """The MAC of one state record: bound to its partition and key."""
    message = b"%b%d\x00%d\x00%b%b" % (_DOMAIN, partition, len(key), key, value)
    return hmac.new(secret, message, hashlib.sha256).digest()


def _sealed(secret: bytes, partition: int, key: bytes, body: object) -> StateRecord:
    value = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return StateRecord(partition, key, value, mac(secret, partition, key, value))


_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND: Final = dt.timedelta(microseconds=1)


def _us(when: dt.datetime) -> int:
    """``when`` in whole microseconds since the epoch (exact, unlike a float timestamp)."""
    return (when - _EPOCH) // _MICROSECOND


def _when(us: int) -> dt.datetime:
    return _EPOCH + us * _MICROSECOND


def encode_offsets(secret: bytes, partition: int, offsets: Mapping[str, int]) -> StateRecord:
    """How far the router has read each input topic's ``partition``."""
    return _sealed(secret, partition, OFFSETS_KEY, {"o": dict(offsets)})


def encode_routed(secret: bytes, partition: int, group: Sequence[RoutedId]) -> StateRecord:
    """A group of ids routed (one transaction's, or a merge of small groups), keyed by its
    first id (``r/<hex>``; ``r/m<hex>`` for a merge)."""
    return _sealed(secret, partition, _group_key(group), _group_body(group))


def _group_key(group: Sequence[RoutedId], *, merged: bool = False) -> bytes:
    return b"r/" + (b"m" if merged else b"") + group[0].id.encode()


def _group_body(group: Sequence[RoutedId]) -> dict[str, object]:
    return {
        "t": max(r.at_ms for r in group),
        "i": [list(r) for r in group],
    }


SMALL_GROUP: Final = 100
"""A group of fewer ids than this is merged with others once there are ``MERGE_AT``."""
MERGE_AT: Final = 64
MERGE_MAX_GROUPS: Final = 1000
"""Small groups merged in one transaction at most (the work per batch stays bounded)."""
CHUNK: Final = 4000
"""Ids in one merged record at most (about 250 kB, well inside Kafka's 1 MB)."""


class RoutedGroups:
    """Which group records hold the ids routed, so that loading reads few large records
    however the ids arrived (one per transaction under a trickle): small groups are
    merged, and a group whose newest id is past the dedupe horizon is deleted."""

    def __init__(self, secret: bytes, partition: int) -> None:
        """Groups of ``partition``, MAC'd with ``secret``."""
        self._secret = secret
        self._partition = partition
        self._newest: dict[bytes, int] = {}
        self._small: dict[bytes, list[RoutedId]] = {}

    def __len__(self) -> int:
        return len(self._newest)

    def load(self, groups: Mapping[bytes, Sequence[RoutedId]]) -> None:
        """The groups the state topic holds."""
        for key, group in groups.items():
            self._remember(key, group)

    def add(self, ids: Sequence[RoutedId]) -> list[StateRecord]:
        """The records for ``ids`` routed in one transaction: one, or one per ``CHUNK``
        (a state rebuilt from the feed), none for none."""
        records = []
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            record = encode_routed(self._secret, self._partition, chunk)
            self._remember(record.key, chunk)
            records.append(record)
        return records

    def expire(self, oldest_ms: int) -> list[StateRecord]:
        """Tombstones of the groups whose newest id was routed before ``oldest_ms``."""
        gone = [key for key, newest in self._newest.items() if newest < oldest_ms]
        for key in gone:
            del self._newest[key]
            self._small.pop(key, None)
        return [StateRecord(self._partition, key, None) for key in gone]

    def consolidate(self) -> list[StateRecord]:
        """Merge small groups into chunks once there are enough of them: the merged records
        first, then tombstones of the groups merged (never of a key just written)."""
        if len(self._small) < MERGE_AT:
            return []
        keys = list(self._small)[:MERGE_MAX_GROUPS]
        ids = sorted((r for key in keys for r in self._small[key]), key=lambda r: r.at_ms)
        written: list[StateRecord] = []
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            key = _group_key(chunk, merged=True)
            body = _group_body(chunk)
            written.append(_sealed(self._secret, self._partition, key, body))
        for key in keys:
            del self._newest[key]
            del self._small[key]
        for record, start in zip(written, range(0, len(ids), CHUNK), strict=True):
            self._remember(record.key, ids[start : start + CHUNK])
        fresh = {record.key for record in written}
        return [
            *written,
            *(StateRecord(self._partition, key, None) for key in keys if key not in fresh),
        ]

    def _remember(self, key: bytes, group: Sequence[RoutedId]) -> None:
        self._newest[key] = max(r.at_ms for r in group)
        if len(group) < SMALL_GROUP:
            self._small[key] = list(group)
        else:
            self._small.pop(key, None)


class ConcernGroups:
    """Which group records hold the JTAI watch's concerns, so that loading reads few large
    records: the concerns recorded in one transaction are one group (``g/<first id>``); a
    group is deleted once every one of its concerns is forgotten; groups left small or
    mostly forgotten are merged.

    A group may so still hold concerns the watch has forgotten. Loading restores them too,
    and the watch's ``settle`` forgets them again: what the watch forgets is a function of
    what it holds (per area and theme, every concern older than the newest held minus two
    windows), so a watch restored from the groups holds exactly what the writer held.
    """

    def __init__(self, secret: bytes, partition: int) -> None:
        """Groups of ``partition``, MAC'd with ``secret``."""
        self._secret = secret
        self._partition = partition
        self._live: dict[bytes, dict[uuid.UUID, Evidence]] = {}
        """Group key -> the concerns of the group not yet forgotten."""
        self._written: dict[bytes, int] = {}
        """Group key -> how many concerns its record holds (forgotten ones included)."""
        self._group_of: dict[uuid.UUID, bytes] = {}

    def __len__(self) -> int:
        return len(self._live)

    @property
    def held(self) -> int:
        """Concerns the group records hold, forgotten ones included."""
        return sum(self._written.values())

    def load(self, groups: Mapping[bytes, Sequence[Evidence]]) -> None:
        """The groups the state topic holds (call ``forget`` with what the watch's
        ``settle`` forgets)."""
        for key, group in groups.items():
            self._remember(key, group)

    def record(self, concerns: Sequence[Evidence]) -> list[StateRecord]:
        """The records for the concerns recorded in one transaction: one per ``CHUNK``."""
        return self._write(b"g/", concerns)

    def forget(self, ids: Iterable[uuid.UUID]) -> list[StateRecord]:
        """Tombstones of the groups whose every concern is now forgotten."""
        emptied: list[bytes] = []
        for concern_id in ids:
            key = self._group_of.pop(concern_id, None)
            if key is None:
                continue
            live = self._live[key]
            del live[concern_id]
            if not live:
                emptied.append(key)
        for key in emptied:
            del self._live[key]
            del self._written[key]
        return [StateRecord(self._partition, key, None) for key in emptied]

    def consolidate(self) -> list[StateRecord]:
        """Merge the groups left small (fewer than ``SMALL_GROUP`` concerns not forgotten)
        or mostly forgotten, once there are ``MERGE_AT`` of them or they hold ``CHUNK``
        forgotten concerns: the merged records first, then tombstones of the groups merged.
        At most ``MERGE_MAX_GROUPS`` groups and ``4 * CHUNK`` concerns are rewritten at once,
        so the work per transaction stays bounded."""
        candidates = [
            key
            for key, live in self._live.items()
            if len(live) < SMALL_GROUP or 2 * len(live) < self._written[key]
        ]
        dead = sum(self._written[key] - len(self._live[key]) for key in candidates)
        if len(candidates) < MERGE_AT and dead < CHUNK:
            return []
        keys: list[bytes] = []
        kept: list[Evidence] = []
        for key in candidates[:MERGE_MAX_GROUPS]:
            if kept and len(kept) + len(self._live[key]) > 4 * CHUNK:
                break
            keys.append(key)
            kept.extend(self._live[key].values())
        kept.sort(key=lambda c: (c.occurred_at, c.id))
        for key in keys:
            del self._live[key]
            del self._written[key]
        written = self._write(b"g/m", kept)
        fresh = {record.key for record in written}
        return [
            *written,
            *(StateRecord(self._partition, key, None) for key in keys if key not in fresh),
        ]

    def _write(self, prefix: bytes, concerns: Sequence[Evidence]) -> list[StateRecord]:
        """Records of ``concerns``, ``CHUNK`` at most each, keyed by ``prefix`` and their
        first concern's id; remembered as groups."""
        records = []
        for start in range(0, len(concerns), CHUNK):
            chunk = concerns[start : start + CHUNK]
            record = self._encode(prefix + chunk[0].id.hex.encode(), chunk)
            self._remember(record.key, chunk)
            records.append(record)
        return records

    def _encode(self, key: bytes, concerns: Sequence[Evidence]) -> StateRecord:
        body = {
            "c": [
                [
                    c.id.hex,
                    c.source.value,
                    _us(c.occurred_at),
                    c.area,
                    c.theme.value,
                    c.alone.value if c.alone is not None else None,
                    c.review,
                ]
                for c in concerns
            ]
        }
        return _sealed(self._secret, self._partition, key, body)

    def _remember(self, key: bytes, group: Sequence[Evidence]) -> None:
        for concern in group:
            old = self._group_of.get(concern.id)
            if old is not None and old != key and old in self._live:
                # Recorded again (or merged): the older group no longer holds it live.
                self._live[old].pop(concern.id, None)
        self._live[key] = {concern.id: concern for concern in group}
        self._written[key] = len(group)
        for concern in group:
            self._group_of[concern.id] = key


def _claim_key(window: Claimed) -> bytes:
    return f"c/{window.area}/{window.theme.value}/{_us(window.start)}/{_us(window.end)}".encode()


def encode_window_change(secret: bytes, partition: int, change: Claimed | Released) -> StateRecord:
    """A JTAI window claimed (its record) or released (a tombstone)."""
    if isinstance(change, Claimed):
        return _sealed(secret, partition, _claim_key(change), {"e": _us(change.end)})
    return StateRecord(partition, _claim_key(change.window), None)


@dataclass(slots=True)
class LoadedState:
    """What partition *p* of the state topic holds now (the latest value of each key)."""

    offsets: dict[str, int] | None = None
    routed: list[RoutedId] = field(default_factory=list)
    groups: dict[bytes, list[RoutedId]] = field(default_factory=dict)
    """The same ids, by the group record that holds them."""
    evidence: list[Evidence] = field(default_factory=list)
    concern_groups: dict[bytes, list[Evidence]] = field(default_factory=dict)
    """The same concerns, by the record that holds them."""
    claims: list[Claimed] = field(default_factory=list)
    refused: int = 0
    """Records ignored: a MAC that does not verify, or a value that does not decode."""


def load_state(secret: bytes, partition: int, records: Iterable[StateRecord]) -> LoadedState:
    """The state ``records`` (one partition, in log order) hold, latest value per key.

    A value whose MAC does not verify, or that does not decode, is ignored (counted in
    ``refused``) and does not replace an earlier good value; a tombstone deletes.
    """
    latest: dict[bytes, bytes | None] = {}
    refused = 0
    for record in records:
        if record.value is None:
            latest[record.key] = None
            continue
        expected = mac(secret, partition, record.key, record.value)
        if record.mac is None or not hmac.compare_digest(expected, record.mac):
            refused += 1
            continue
        latest[record.key] = record.value
    state = LoadedState()
    for key, value in latest.items():
        if value is None:
            continue
        try:
            _decode_into(state, key, value)
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
            refused += 1
    state.refused = refused
    return state


_SOURCES: Final = {i.value: i for i in Inspectorate}
_THEMES: Final = {t.value: t for t in Theme}
_TRIGGERS: Final = {t.value: t for t in JtaiTrigger}


def _concern(fields: object) -> Evidence:
    """One concern of a group record: ``[id, source, occurred at (us), area, theme,
    alone, review]``."""
    if not isinstance(fields, list) or len(fields) != 7:  # noqa: PLR2004 - the seven above
        raise ValueError("a concern's fields")
    hex_id, source, occurred_us, area, theme, alone, review = fields
    if type(occurred_us) is not int or type(area) is not str or type(review) is not bool:
        raise TypeError("a concern's fields")
    return Evidence(
        id=uuid.UUID(hex=str(hex_id)),
        source=_SOURCES[source],
        occurred_at=_when(occurred_us),
        area=area,
        theme=_THEMES[theme],
        alone=None if alone is None else _TRIGGERS[alone],
        review=review,
    )


_HEX_ID: Final = re.compile(r"[0-9a-f]{32}")


def _routed(fields: object) -> RoutedId:
    """One id of a group record: ``[id (hex), signer, kind, routed at (ms)]``."""
    if not isinstance(fields, list) or len(fields) != len(RoutedId._fields):
        raise ValueError("a routed id's fields")
    routed = RoutedId._make(fields)
    if (
        type(routed.id) is not str
        or not _HEX_ID.fullmatch(routed.id)
        or type(routed.signer) is not str
        or type(routed.kind) is not str
        or type(routed.at_ms) is not int
    ):
        raise TypeError("a routed id's fields")
    return routed


def _decode_into(state: LoadedState, key: bytes, value: bytes) -> None:
    body = json.loads(value)
    name = key.decode("ascii")
    if key == OFFSETS_KEY:
        offsets = body["o"]
        if not all(isinstance(k, str) and type(v) is int for k, v in offsets.items()):
            raise ValueError("offsets")
        state.offsets = dict(offsets)
    elif name.startswith("r/"):
        group = [_routed(fields) for fields in body["i"]]
        if not group:
            raise ValueError("an empty group")
        state.groups[key] = group
        state.routed.extend(group)
    elif name.startswith("g/"):
        concerns = [_concern(fields) for fields in body["c"]]
        if not concerns:
            raise ValueError("an empty group")
        state.concern_groups[key] = concerns
        state.evidence.extend(concerns)
    elif name.startswith("e/"):
        alone = body["x"]
        occurred_at = dt.datetime.fromisoformat(body["o"])
        if occurred_at.tzinfo is None:
            raise ValueError("a concern's time without its offset")
        concern = Evidence(
            id=uuid.UUID(hex=name[2:]),
            source=Inspectorate(body["s"]),
            occurred_at=occurred_at,
            area=str(body["a"]),
            theme=Theme(body["t"]),
            alone=JtaiTrigger(alone) if alone is not None else None,
            review=bool(body["r"]),
        )
        state.concern_groups[key] = [concern]
        state.evidence.append(concern)
    elif name.startswith("c/"):
        _, area, theme, start, end = name.split("/")
        if int(body["e"]) != int(end):
            raise ValueError("a claim's end differs from its key's")
        state.claims.append(Claimed(area, Theme(theme), _when(int(start)), _when(int(end))))
    else:
        raise ValueError("unknown key")
