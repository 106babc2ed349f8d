"""Co-partitioning: every area's records on one partition *number*, and each number on one
router.

Every area-keyed topic (each inspectorate's events topic, ``liaison.outcomes``, the feed,
the JTAI queue, the router's state) has the same number of partitions, and every record
is keyed by its area's GSS code and placed by Kafka's default partitioner (murmur2 of
the key, as the Java client and aiokafka do). So all five inspectorates' events about
one area sit on partition *p* of their topics, and the router that owns *p* of every
topic judges them all: one JTAI watch and one memory of routed ids per area.

``partition_for`` is that partitioner (known-answer tested against aiokafka's);
``assign_numbers`` decides which router owns which partition number. Both are pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

__all__ = ["assign_numbers", "murmur2", "partition_for"]

_SEED: Final = 0x9747B28C
_M: Final = 0x5BD1E995
_MASK: Final = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 as Kafka's Java client computes it (``Utils.murmur2``), unsigned."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length % 4
    if rest >= 3:  # noqa: PLR2004 - the tail's third byte
        h ^= data[whole + 2] << 16
    if rest >= 2:  # noqa: PLR2004 - the tail's second byte
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a record with ``key``."""
    if partitions < 1:
        msg = f"a topic has at least one partition, not {partitions}"
        raise ValueError(msg)
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def assign_numbers(numbers: Iterable[int], members: Mapping[str, str]) -> dict[str, list[int]]:
    """Which partition numbers each member owns: member id -> sorted numbers.

    ``members`` maps each member id to its router instance name. Members are ordered by
    instance name (then member id), numbers ascending, and dealt round-robin: every
    number goes to exactly one member, counts differ by at most one, and the same
    instances get the same numbers whatever their member ids (a restarted router takes
    back what it had, so only what moves is loaded again).
    """
    order = sorted(members, key=lambda member: (members[member], member))
    owned: dict[str, list[int]] = {member: [] for member in order}
    if not order:
        return owned
    for i, number in enumerate(sorted(set(numbers))):
        owned[order[i % len(order)]].append(number)
    return owned
