"""Proofs from complete aligned subtrees: the same proofs as from every leaf, in O(log n).

A store keeps the hash of every complete aligned subtree (``NodeId``) and proves from
the O(log n) of them a proof names. Held here to today's builders over the full list of
leaf hashes (themselves held to the published vectors in ``test_merkle``), with a node
reader that refuses any node the tree of that size does not hold complete.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeId,
    NodeReader,
    ProofError,
    completed_nodes,
    consistency_nodes,
    consistency_proof,
    consistency_proof_from_nodes,
    inclusion_nodes,
    inclusion_proof,
    inclusion_proof_from_nodes,
    leaf_hash,
    node_hash,
    range_nodes,
    root,
    root_from_nodes,
)
from tests.unit.test_merkle import (
    CONSISTENCY_VECTORS,
    INCLUSION_VECTORS,
    NODE_HASHES,
    ROOT_HASHES,
)

MAX = 300
HASHES = [leaf_hash(str(i).encode()) for i in range(MAX)]


def every_node(leaves: list[bytes]) -> dict[NodeId, bytes]:
    """Every complete aligned subtree of ``leaves``, level by level: the reference."""
    nodes = {NodeId(0, i): h for i, h in enumerate(leaves)}
    level, below = 0, leaves
    while len(below) > 1:
        level += 1
        below = [node_hash(below[2 * i], below[2 * i + 1]) for i in range(len(below) // 2)]
        nodes.update({NodeId(level, i): h for i, h in enumerate(below)})
    return nodes


NODES = every_node(HASHES)


class Reader:
    """A node reader over ``nodes`` that refuses any node not complete in a tree of
    ``size`` leaves (a store of that size has no others), and counts its reads."""

    def __init__(self, nodes: dict[NodeId, bytes], size: int) -> None:
        self.nodes, self.size, self.reads = nodes, size, 0

    def __call__(self, level: int, index: int) -> bytes:
        assert level >= 0
        assert index >= 0
        assert (index + 1) << level <= self.size, f"node ({level}, {index}) is not complete"
        self.reads += 1
        return self.nodes[NodeId(level, index)]


def ceil_log2(n: int) -> int:
    return max(0, (n - 1).bit_length())


# ---- the published vectors, from the published node hashes --------------------------


PUBLISHED = {NodeId(lv, i): x for lv, row in enumerate(NODE_HASHES) for i, x in enumerate(row)}


def published(size: int) -> NodeReader:
    return Reader(PUBLISHED, size)


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_from_nodes_matches_the_published_proofs(
    index: int, size: int, proof: list[bytes]
) -> None:
    assert inclusion_proof_from_nodes(published(size), index, size) == tuple(proof)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
def test_consistency_from_nodes_matches_the_published_proofs(
    old: int, new: int, proof: list[bytes]
) -> None:
    assert consistency_proof_from_nodes(published(new), old, new) == tuple(proof)


@pytest.mark.parametrize("size", range(9))
def test_roots_from_nodes_match_the_published_roots(size: int) -> None:
    assert root_from_nodes(published(size), size) == ROOT_HASHES[size]


def test_the_nodes_a_proof_reads_are_named_exactly() -> None:
    # Leaf 5 of 7: its sibling leaf 4, then (2, 0) = leaves 0-3, (0, 6) = leaf 6 and
    # (1, 2) = leaves 4-5 ... as RFC 9162's PATH(5, D[7]) = [MTH(D[4]), MTH(D[6:7]),
    # MTH(D[0:4])].
    assert inclusion_nodes(5, 7) == (NodeId(0, 4), NodeId(0, 6), NodeId(2, 0))
    # MTH(D[4:7]) on the right of leaf 0's path is two nodes: leaves 4-5 and leaf 6.
    assert inclusion_nodes(0, 7) == (
        NodeId(0, 1),
        NodeId(1, 1),
        NodeId(1, 2),
        NodeId(0, 6),
    )
    assert consistency_nodes(6, 7) == (NodeId(1, 2), NodeId(0, 6), NodeId(2, 0))
    assert range_nodes(7) == (NodeId(2, 0), NodeId(1, 2), NodeId(0, 6))
    assert range_nodes(0) == ()
    assert root_from_nodes(published(0), 0) == EMPTY_ROOT


def test_the_right_edge_is_the_compact_range() -> None:
    for size in range(MAX):
        compact = CompactRange()
        compact.extend(HASHES[:size])
        assert tuple(NODES[n] for n in range_nodes(size)) == compact.to_state().hashes


# ---- the same proofs as from every leaf ------------------------------------------------


@pytest.mark.parametrize("size", range(1, 70))
def test_every_inclusion_proof_of_small_trees_is_the_same(size: int) -> None:
    for index in range(size):
        assert inclusion_proof_from_nodes(Reader(NODES, size), index, size) == inclusion_proof(
            HASHES[:size], index
        )


@pytest.mark.parametrize("new", range(1, 70))
def test_every_consistency_proof_of_small_trees_is_the_same(new: int) -> None:
    for old in range(new + 1):
        assert consistency_proof_from_nodes(Reader(NODES, new), old, new) == consistency_proof(
            HASHES[:new], old
        )


@given(st.data())
def test_inclusion_proofs_up_to_hundreds_of_leaves_are_the_same(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, MAX))
    index = data.draw(st.integers(0, size - 1))
    reader = Reader(NODES, size)
    assert inclusion_proof_from_nodes(reader, index, size) == inclusion_proof(HASHES[:size], index)
    assert reader.reads == len(inclusion_nodes(index, size))


@given(st.data())
def test_consistency_proofs_up_to_hundreds_of_leaves_are_the_same(data: st.DataObject) -> None:
    new = data.draw(st.integers(0, MAX))
    old = data.draw(st.integers(0, new))
    reader = Reader(NODES, new)
    assert consistency_proof_from_nodes(reader, old, new) == consistency_proof(HASHES[:new], old)
    assert reader.reads == len(consistency_nodes(old, new))


def test_every_root_from_nodes_is_the_same() -> None:
    for size in range(MAX + 1):
        reader = Reader(NODES, size)
        assert root_from_nodes(reader, size) == root(HASHES[:size])
        assert reader.reads == size.bit_count()


@given(st.integers(1, 2**48), st.data())
def test_a_proof_reads_at_most_two_nodes_per_level(size: int, data: st.DataObject) -> None:
    # Pure arithmetic: no hashing, so trees far beyond any store are cheap to ask about.
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(0, size))
    bound = 2 * ceil_log2(size) + 1
    for needed in (inclusion_nodes(index, size), consistency_nodes(old, size)):
        assert len(needed) <= bound
        assert len(set(needed)) == len(needed)
        assert all((n.index + 1) << n.level <= size for n in needed)


# ---- which nodes an append completes ----------------------------------------------------


def appended(batches: Iterable[list[bytes]]) -> dict[NodeId, bytes]:
    """Every node ``completed_nodes`` yields over ``batches`` appended one after another,
    each starting from the right edge the nodes so far give."""
    kept: dict[NodeId, bytes] = {}
    size = 0
    for leaves in batches:
        edge = [kept[n] for n in range_nodes(size)]
        for node, h in completed_nodes(size, edge, leaves):
            assert node not in kept, f"{node} completed twice"
            kept[node] = h
        size += len(leaves)
    return kept


@given(st.lists(st.integers(0, 40), max_size=12))
def test_appends_in_any_batches_complete_exactly_the_tree_s_nodes(shape: list[int]) -> None:
    batches, start = [], 0
    for wanted in shape:
        count = min(wanted, MAX - start)
        batches.append(HASHES[start : start + count])
        start += count
    assert appended(batches) == every_node(HASHES[:start])


def test_a_leaf_completes_one_node_per_trailing_one_bit() -> None:
    edge = [NODES[n] for n in range_nodes(7)]
    assert [n for n, _ in completed_nodes(7, edge, [HASHES[7]])] == [
        NodeId(0, 7),
        NodeId(1, 3),
        NodeId(2, 1),
        NodeId(3, 0),
    ]
    assert list(completed_nodes(7, edge, [])) == []


# ---- refusals -----------------------------------------------------------------------------


def test_bad_sizes_indices_and_hashes_are_proof_errors() -> None:
    reader = Reader(NODES, 8)
    with pytest.raises(ProofError, match="leaf index 8 is outside a tree of size 8"):
        inclusion_nodes(8, 8)
    with pytest.raises(ProofError, match="leaf index -1 is outside"):
        inclusion_proof_from_nodes(reader, -1, 8)
    with pytest.raises(ProofError, match="leaf index 0 is outside a tree of size 0"):
        inclusion_proof_from_nodes(reader, 0, 0)
    with pytest.raises(ProofError, match="old size 9 is not between 0 and the tree size 8"):
        consistency_nodes(9, 8)
    with pytest.raises(ProofError, match="tree size -1 is not a whole number"):
        range_nodes(-1)
    with pytest.raises(ProofError, match="tree size True is not a whole number"):
        root_from_nodes(reader, True)  # noqa: FBT003 - the refusal is the point
    with pytest.raises(ProofError, match=r"node \(0, 1\) is 3 bytes, not a 32-byte hash"):
        inclusion_proof_from_nodes(lambda level, index: b"bad", 0, 2)
    assert consistency_proof_from_nodes(reader, 0, 8) == ()
    assert consistency_proof_from_nodes(reader, 8, 8) == ()


def test_a_wrong_right_edge_is_refused() -> None:
    with pytest.raises(ProofError, match="size 3 holds 2 hashes, not 1"):
        list(completed_nodes(3, [HASHES[0]], HASHES[3:4]))
    with pytest.raises(ProofError, match="right edge hash 0 is 1 bytes"):
        list(completed_nodes(1, [b"x"], HASHES[1:2]))
    with pytest.raises(ProofError, match="leaf hash is 0 bytes"):
        list(completed_nodes(0, [], [b""]))
