"""Co-partitioning: Kafka's default partitioner, known answers and properties; which router
owns which partition number."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from consumers.copartition import assign_numbers, murmur2, partition_for

# Known answers of Kafka's Java client (org.apache.kafka.common.utils.Utils.murmur2),
# as its own tests and librdkafka's murmur2 test vectors give them.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_murmur2_known_answers_of_the_java_client() -> None:
    for data, signed in JAVA_MURMUR2.items():
        assert murmur2(data) == signed & 0xFFFFFFFF, data


@given(st.binary(max_size=200))
def test_murmur2_is_aiokafkas(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


@given(st.binary(min_size=1, max_size=40), st.integers(min_value=1, max_value=64))
def test_partition_for_is_the_default_partitioners(key: bytes, partitions: int) -> None:
    every = list(range(partitions))
    assert partition_for(key, partitions) == DefaultPartitioner()(key, every, every)


def test_an_areas_partition_is_a_known_answer() -> None:
    # Leeds, Coventry, Kent on three partitions: pinned so a change of partitioner shows.
    codes = (b"E08000035", b"E08000026", b"E10000016")
    assert [partition_for(code, 3) for code in codes] == [2, 2, 2]


members_st = st.dictionaries(
    st.text(alphabet="abcdef0123456789-", min_size=1, max_size=12),
    st.text(alphabet="abc012", min_size=1, max_size=4),
    max_size=8,
)


@given(st.sets(st.integers(min_value=0, max_value=50), max_size=30), members_st)
def test_every_number_goes_to_exactly_one_member_and_counts_differ_by_one(
    numbers: set[int], members: dict[str, str]
) -> None:
    owned = assign_numbers(numbers, members)
    assert set(owned) == set(members)
    given_out = [n for ns in owned.values() for n in ns]
    if members:
        assert sorted(given_out) == sorted(numbers)
        sizes = [len(ns) for ns in owned.values()]
        assert max(sizes) - min(sizes) <= 1
    for ns in owned.values():
        assert ns == sorted(ns)


@given(st.sets(st.integers(min_value=0, max_value=20), max_size=10), members_st)
def test_the_same_instances_get_the_same_numbers_whatever_their_member_ids(
    numbers: set[int], members: dict[str, str]
) -> None:
    by_name = {name: n for n, name in enumerate(sorted(set(members.values())))}
    distinct = {f"m{by_name[name]}": name for name in members.values()}
    renamed = {f"x{9 - by_name[name]}": name for name in members.values()}
    first = {distinct[m]: ns for m, ns in assign_numbers(numbers, distinct).items()}
    second = {renamed[m]: ns for m, ns in assign_numbers(numbers, renamed).items()}
    assert first == second


def test_two_routers_share_three_partition_numbers() -> None:
    assert assign_numbers([2, 0, 1], {"b-id": "1", "a-id": "0"}) == {
        "a-id": [0, 2],
        "b-id": [1],
    }
    assert assign_numbers([0, 1, 2], {}) == {}
