"""The router's state as records of ``liaison.router.state``: encode, authenticate, load.

The router's memory of one partition number *p* (the ids it routed within the dedupe
horizon, the JTAI watch's retained concerns and claimed windows, and how far it has read
each input topic's partition *p*) is written to partition *p* of a compacted topic, in
the same Kafka transaction as the records it routed and the audit records. So the state
and the log never disagree, and loading it reads only what is live (a bounded amount),
never the whole feed.

One record per item, keyed so that compaction keeps the latest of each:

========================  =============================================================
key                       value (compact JSON)
========================  =============================================================
``o``                     ``{"o": {topic: next offset}}``: input read up to here
``r/<id hex>``            a group of ids routed: ``{"t": newest, "i": [[id, signer,``
                          ``kind, routed at ms], ...]}``; null: all past the horizon
``e/<id hex>``            a JTAI concern (``consumers.jtai.Evidence``); null: forgotten
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
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from consumers.jtai import Claimed, Evidence, Forgotten, WatchChange
from schemas.events import Theme
from schemas.inspectorates import Inspectorate
from schemas.jtai import JtaiTrigger

__all__ = [
    "HEADER_MAC",
    "OFFSETS_KEY",
    "LoadedState",
    "RoutedGroups",
    "RoutedId",
    "StateRecord",
    "encode_offsets",
    "encode_routed",
    "encode_watch_change",
    "load_state",
    "mac",
]

HEADER_MAC: Final = "liaison_mac"
_DOMAIN: Final = b"liaison.router.state.v1\x00"
OFFSETS_KEY: Final = b"o"


@dataclass(frozen=True, slots=True)
class RoutedId:
    """An id the router routed: who signed it, what kind of event, when (ms, UTC)."""

    id: uuid.UUID
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
    return b"r/" + (b"m" if merged else b"") + group[0].id.hex.encode()


def _group_body(group: Sequence[RoutedId]) -> dict[str, object]:
    return {
        "t": max(r.at_ms for r in group),
        "i": [[r.id.hex, r.signer, r.kind, r.at_ms] for r in group],
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


def _claim_key(window: Claimed) -> bytes:
    return f"c/{window.area}/{window.theme.value}/{_us(window.start)}/{_us(window.end)}".encode()


def encode_watch_change(secret: bytes, partition: int, change: WatchChange) -> StateRecord:
    """A change of the JTAI watch: a concern kept or forgotten, a window claimed or released."""
    if isinstance(change, Evidence):
        body = {
            "s": change.source.value,
            "o": change.occurred_at.astimezone(dt.UTC).isoformat(),
            "a": change.area,
            "t": change.theme.value,
            "x": change.alone.value if change.alone is not None else None,
            "r": change.review,
        }
        return _sealed(secret, partition, b"e/" + change.id.hex.encode(), body)
    if isinstance(change, Forgotten):
        return StateRecord(partition, b"e/" + change.id.hex.encode(), None)
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
        except (ValueError, KeyError, TypeError, AttributeError):
            refused += 1
    state.refused = refused
    return state


def _decode_into(state: LoadedState, key: bytes, value: bytes) -> None:
    body = json.loads(value)
    name = key.decode("ascii")
    if key == OFFSETS_KEY:
        offsets = body["o"]
        if not all(isinstance(k, str) and type(v) is int for k, v in offsets.items()):
            raise ValueError("offsets")
        state.offsets = dict(offsets)
    elif name.startswith("r/"):
        group = [
            RoutedId(uuid.UUID(hex=str(hex_id)), str(signer), str(kind), int(at))
            for hex_id, signer, kind, at in body["i"]
        ]
        if not group:
            raise ValueError("an empty group")
        state.groups[key] = group
        state.routed.extend(group)
    elif name.startswith("e/"):
        alone = body["x"]
        state.evidence.append(
            Evidence(
                id=uuid.UUID(hex=name[2:]),
                source=Inspectorate(body["s"]),
                occurred_at=dt.datetime.fromisoformat(body["o"]),
                area=str(body["a"]),
                theme=Theme(body["t"]),
                alone=JtaiTrigger(alone) if alone is not None else None,
                review=bool(body["r"]),
            )
        )
    elif name.startswith("c/"):
        _, area, theme, start, end = name.split("/")
        if int(body["e"]) != int(end):
            raise ValueError("a claim's end differs from its key's")
        state.claims.append(Claimed(area, Theme(theme), _when(int(start)), _when(int(end))))
    else:
        raise ValueError("unknown key")
