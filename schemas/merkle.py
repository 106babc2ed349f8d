"""Merkle tree hashing and proofs for the audit log: RFC 9162 (CT v2), SHA-256.

The audit log is an append-only list of records; its tree head (size and root) is what a
checkpoint signs. Everything here is pure arithmetic over hashes already in memory::

    leaf_hash(d)        = SHA-256(0x00 || d)
    node_hash(l, r)     = SHA-256(0x01 || l || r)
    root([])            = SHA-256("")                      (EMPTY_ROOT)
    root(D[n])          = node_hash(root(D[0:k]), root(D[k:n])), k the largest power
                          of two smaller than n

The prefixes are RFC 9162's domain separation: without them a leaf could be passed off as
an interior node whose children concatenate to the same bytes.

``inclusion_proof`` / ``verify_inclusion`` prove that one record is in the log (RFC 9162
2.1.3); ``consistency_proof`` / ``verify_consistency`` prove that a later tree head only
appended to an earlier one (2.1.4), which is what makes the log tamper-evident.
``CompactRange`` lets an appender keep the root current with O(log n) hashes instead of
every leaf.

A store that keeps every *complete aligned subtree* (``NodeId``: level ``l`` and index
``i`` cover leaves ``[i * 2**l, (i + 1) * 2**l)``; level 0 is a leaf) proves without reading
every leaf: ``inclusion_nodes`` / ``consistency_nodes`` / ``range_nodes`` name the
O(log n) nodes a proof or root needs, and ``inclusion_proof_from_nodes`` /
``consistency_proof_from_nodes`` / ``root_from_nodes`` build exactly what
``inclusion_proof`` / ``consistency_proof`` / ``root`` build from the full list.
``completed_nodes`` says which nodes an append completes, so the store can keep them.

Every failure raises ``ProofError`` with a message naming what failed; verifiers return
nothing, as ``cryptography``'s ``verify()`` does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from schemas.errors import LiaisonError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "CompactRangeState",
    "NodeId",
    "NodeReader",
    "ProofError",
    "completed_nodes",
    "consistency_nodes",
    "consistency_proof",
    "consistency_proof_from_nodes",
    "inclusion_nodes",
    "inclusion_proof",
    "inclusion_proof_from_nodes",
    "leaf_hash",
    "node_hash",
    "range_nodes",
    "root",
    "root_from_nodes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
"""Bytes in every hash here (SHA-256)."""

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
"""The root of the empty tree (RFC 9162 2.1.1): SHA-256 of the empty string."""

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"


class ProofError(LiaisonError, ValueError):
    """A Merkle proof, tree size, index or hash is wrong; retrying cannot help."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash (MTH, RFC 9162 2.1.1) of a tree with these leaf hashes."""
    _check_leaves(leaf_hashes)
    if not leaf_hashes:
        return EMPTY_ROOT
    return _subtree_root(leaf_hashes, 0, len(leaf_hashes))


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> tuple[bytes, ...]:
    """The audit path (RFC 9162 2.1.3.1) proving leaf ``index`` is in this tree."""
    _check_leaves(leaf_hashes)
    return tuple(
        _subtree_root(leaf_hashes, lo, hi) for lo, hi in _inclusion_ranges(index, len(leaf_hashes))
    )


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> tuple[bytes, ...]:
    """The proof (RFC 9162 2.1.4.1) that this tree extends its first ``old_size`` leaves.

    Empty when ``old_size`` is 0 (every tree extends the empty one) or equals the tree
    size (nothing to prove).
    """
    _check_leaves(leaf_hashes)
    return tuple(
        _subtree_root(leaf_hashes, lo, hi)
        for lo, hi in _consistency_ranges(old_size, len(leaf_hashes))
    )


@dataclass(frozen=True, slots=True, order=True)
class NodeId:
    """A complete aligned subtree: ``level`` 0 is leaf ``index``; level ``l`` covers the
    ``2**l`` leaves from ``index * 2**l``. Its hash never changes once the tree holds them."""

    level: int
    index: int


NodeReader = Callable[[int, int], bytes]
"""``node(level, index)``: the hash of a complete aligned subtree (``NodeId``)."""


def range_nodes(size: int) -> tuple[NodeId, ...]:
    """The complete aligned subtrees a tree of ``size`` leaves splits into, largest first:
    what ``root_from_nodes`` reads (one per set bit of ``size``), and the tree's right edge
    (``CompactRange``'s hashes)."""
    _check_size("tree size", size)
    return _nodes_of(0, size)


def root_from_nodes(node: NodeReader, size: int) -> bytes:
    """``root()`` of a tree of ``size`` leaves, from the nodes ``range_nodes(size)`` names."""
    _check_size("tree size", size)
    return EMPTY_ROOT if size == 0 else _range_root(node, 0, size)


def inclusion_nodes(index: int, size: int) -> tuple[NodeId, ...]:
    """The nodes ``inclusion_proof_from_nodes(node, index, size)`` reads: at most two per
    level of the tree."""
    return tuple(n for lo, hi in _inclusion_ranges(index, size) for n in _nodes_of(lo, hi))


def inclusion_proof_from_nodes(node: NodeReader, index: int, size: int) -> tuple[bytes, ...]:
    """``inclusion_proof`` of leaf ``index`` in a tree of ``size`` leaves, read from the
    complete aligned subtrees ``inclusion_nodes(index, size)`` names: O(log n) reads."""
    return tuple(_range_root(node, lo, hi) for lo, hi in _inclusion_ranges(index, size))


def consistency_nodes(old_size: int, new_size: int) -> tuple[NodeId, ...]:
    """The nodes ``consistency_proof_from_nodes(node, old_size, new_size)`` reads."""
    return tuple(n for lo, hi in _consistency_ranges(old_size, new_size) for n in _nodes_of(lo, hi))


def consistency_proof_from_nodes(
    node: NodeReader, old_size: int, new_size: int
) -> tuple[bytes, ...]:
    """``consistency_proof`` of the first ``old_size`` leaves of a tree of ``new_size``,
    read from the complete aligned subtrees ``consistency_nodes`` names: O(log n) reads."""
    return tuple(_range_root(node, lo, hi) for lo, hi in _consistency_ranges(old_size, new_size))


def completed_nodes(
    size: int, edge: Sequence[bytes], leaf_hashes: Iterable[bytes]
) -> Iterator[tuple[NodeId, bytes]]:
    """Every complete aligned subtree that appending ``leaf_hashes`` to a tree of ``size``
    leaves completes, with its hash, in order: each leaf (level 0), then the nodes it
    completes, lowest first. ``edge`` is the tree's right edge: the hashes of
    ``range_nodes(size)``, largest first. What a store keeps to prove in O(log n) reads.
    """
    _check_size("tree size", size)
    if len(edge) != size.bit_count():
        raise ProofError(
            f"the right edge of a tree of size {size} holds {size.bit_count()} hashes,"
            f" not {len(edge)}"
        )
    _check_proof("right edge", edge)
    stack = list(edge)
    n = size
    for h in leaf_hashes:
        _check_hash("leaf hash", h)
        yield NodeId(0, n), h
        # As CompactRange.append: each trailing 1 bit of n is a subtree the new one completes.
        level, index, carried = 0, n, h
        while index & 1:
            carried = node_hash(stack.pop(), carried)
            level, index = level + 1, index >> 1
            yield NodeId(level, index), carried
        stack.append(carried)
        n += 1


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``tree_size`` with ``root``.

    Exactly RFC 9162 2.1.3.2. Returns nothing; raises ``ProofError`` if the proof fails.
    """
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root", root)
    _check_proof("inclusion proof", proof)
    # Step 1.
    if not 0 <= index < tree_size:
        raise ProofError(f"leaf index {index} is outside a tree of size {tree_size}")
    # Steps 2 and 3.
    fn, sn = index, tree_size - 1
    r = leaf_hash
    # Step 4.
    for p in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof is longer than a tree of size {tree_size} needs")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # 4.b.ii: a left child with no sibling on its level is carried up unchanged.
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # Step 5.
    if sn != 0:
        raise ProofError(f"inclusion proof is too short for a tree of size {tree_size}")
    if r != root:
        raise ProofError(f"inclusion proof does not lead to the root of a tree of size {tree_size}")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (``new_size``, ``new_root``) appends to (``old_size``, ``old_root``).

    RFC 9162 2.1.4.2 for 0 < old_size < new_size. Its two edge cases, which the RFC's
    algorithm does not cover, are decided here: equal sizes need equal roots and an empty
    proof; old size 0 needs the empty tree's root and an empty proof. Returns nothing;
    raises ``ProofError`` if the proof fails.
    """
    _check_hash("old root", old_root)
    _check_hash("new root", new_root)
    _check_proof("consistency proof", proof)
    if not 0 <= old_size <= new_size:
        raise ProofError(f"old size {old_size} is not between 0 and the new size {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError(f"consistency proof between two trees of size {new_size} is not empty")
        if old_root != new_root:
            raise ProofError(f"the two trees of size {new_size} have different roots")
        return
    if old_size == 0:
        if proof:
            raise ProofError("consistency proof from the empty tree is not empty")
        if old_root != EMPTY_ROOT:
            raise ProofError("old root is not the root of the empty tree")
        return
    fr, sr = _consistency_roots(old_size, new_size, old_root, proof)
    if fr != old_root:
        raise ProofError(
            f"consistency proof does not lead to the root of the old tree of size {old_size}"
        )
    if sr != new_root:
        raise ProofError(
            f"consistency proof does not lead to the root of the new tree of size {new_size}"
        )


def _consistency_roots(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """Steps 1 to 7 of RFC 9162 2.1.4.2: the old and new roots the proof leads to."""
    # Step 1.
    if not proof:
        raise ProofError(f"consistency proof from size {old_size} to size {new_size} is empty")
    # Step 2: a power-of-two old tree is a complete subtree, so its root starts the path.
    path = [old_root, *proof] if old_size & (old_size - 1) == 0 else list(proof)
    # Steps 3 and 4.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise ProofError(
                f"consistency proof is longer than sizes {old_size} and {new_size} need"
            )
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # 6.b.iii: as in inclusion, a left child with no sibling is carried up.
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7 (the root comparisons are the caller's).
    if sn != 0:
        raise ProofError(f"consistency proof is too short for sizes {old_size} and {new_size}")
    return fr, sr


class CompactRangeState(NamedTuple):
    """What a store persists to resume a ``CompactRange``: its right edge and size."""

    hashes: tuple[bytes, ...]
    size: int


class CompactRange:
    """The right edge of a growing tree: append leaves one at a time, read the root.

    Keeps one hash per set bit of ``size`` (the roots of the perfect subtrees the tree
    splits into, largest first), so memory is O(log n) however long the log grows.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        """An empty tree."""
        self._hashes: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        """How many leaves have been appended."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Add the next leaf (its ``leaf_hash``, not its data)."""
        _check_hash("leaf hash", leaf_hash)
        h = leaf_hash
        # Each trailing 1 bit of the old size is a perfect subtree as tall as the one being
        # carried up: merge them, as binary addition carries.
        n = self._size
        while n & 1:
            h = node_hash(self._hashes.pop(), h)
            n >>= 1
        self._hashes.append(h)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append each leaf hash in order."""
        for h in leaf_hashes:
            self.append(h)

    def root(self) -> bytes:
        """The root of the tree of every leaf appended so far; ``root()`` of those leaves."""
        if not self._hashes:
            return EMPTY_ROOT
        # Folding right to left gives RFC 9162's shape: the smaller subtrees on the right
        # join first, and each larger one on the left takes the result as its sibling.
        r = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            r = node_hash(h, r)
        return r

    def to_state(self) -> CompactRangeState:
        """The hashes and size to persist; ``from_state`` restores them."""
        return CompactRangeState(tuple(self._hashes), self._size)

    @classmethod
    def from_state(cls, state: CompactRangeState | tuple[tuple[bytes, ...], int]) -> CompactRange:
        """A range resumed from ``to_state()`` output; raises ``ProofError`` if inconsistent."""
        hashes, size = state
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ProofError(f"compact range size {size!r} is not a whole number")
        if len(hashes) != size.bit_count():
            raise ProofError(
                f"a compact range of size {size} holds {size.bit_count()} hashes, not {len(hashes)}"
            )
        for i, h in enumerate(hashes):
            _check_hash(f"compact range hash {i}", h)
        compact = cls()
        compact._hashes = list(hashes)
        compact._size = size
        return compact

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable: equal now, maybe not later

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()[:16]}...)"


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_root(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) for a non-empty range, without copying slices."""
    if hi - lo == 1:
        return leaves[lo]
    k = lo + _split(hi - lo)
    return node_hash(_subtree_root(leaves, lo, k), _subtree_root(leaves, k, hi))


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTH is each hash of the audit path, leaf-side first."""
    _check_size("tree size", size)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    out: list[tuple[int, int]] = []
    _path(index, 0, size, out)
    return out


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTH is each hash of the consistency proof, in proof order;
    none when ``old_size`` is 0 or ``new_size``."""
    _check_size("tree size", new_size)
    if isinstance(old_size, bool) or not isinstance(old_size, int):
        raise ProofError(f"old size {old_size!r} is not a whole number")
    if not 0 <= old_size <= new_size:
        raise ProofError(f"old size {old_size} is not between 0 and the tree size {new_size}")
    out: list[tuple[int, int]] = []
    if old_size not in (0, new_size):
        _subproof(old_size, 0, new_size, b=True, out=out)
    return out


def _path(m: int, lo: int, hi: int, out: list[tuple[int, int]]) -> None:
    """PATH(m, D[lo:hi]) of RFC 9162 2.1.3.1, as the ranges D[a:b] whose MTH it holds,
    appended to ``out`` leaf-side first."""
    if hi - lo == 1:
        return
    k = _split(hi - lo)
    if m < k:
        _path(m, lo, lo + k, out)
        out.append((lo + k, hi))
    else:
        _path(m - k, lo + k, hi, out)
        out.append((lo, lo + k))


def _subproof(m: int, lo: int, hi: int, *, b: bool, out: list[tuple[int, int]]) -> None:
    """SUBPROOF(m, D[lo:hi], b) of RFC 9162 2.1.4.1, as ranges, appended to ``out``."""
    n = hi - lo
    if m == n:
        if not b:
            out.append((lo, hi))
        return
    k = _split(n)
    if m <= k:
        _subproof(m, lo, lo + k, b=b, out=out)
        out.append((lo + k, hi))
    else:
        _subproof(m - k, lo + k, hi, b=False, out=out)
        out.append((lo, lo + k))


def _nodes_of(lo: int, hi: int) -> tuple[NodeId, ...]:
    """D[lo:hi] as complete aligned subtrees, largest first.

    Every range RFC 9162's recursion asks for starts at a multiple of the largest power of
    two not above its length (``lo`` is a sum of larger powers of two), so each piece is
    aligned: a perfect subtree on the left, then the tree's right edge below it.
    """
    out: list[NodeId] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        out.append(NodeId(level, lo >> level))
        lo += 1 << level
    return tuple(out)


def _range_root(node: NodeReader, lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) from its complete aligned subtrees: folded right to left, as
    ``CompactRange.root`` folds its edge (RFC 9162 splits off the largest power of two)."""
    hashes = []
    for n in _nodes_of(lo, hi):
        h = node(n.level, n.index)
        _check_hash(f"node ({n.level}, {n.index})", h)
        hashes.append(h)
    r = hashes[-1]
    for h in reversed(hashes[:-1]):
        r = node_hash(h, r)
    return r


def _check_hash(what: str, h: bytes) -> None:
    if not isinstance(h, bytes) or len(h) != HASH_SIZE:
        got = f"{len(h)} bytes" if isinstance(h, bytes) else type(h).__name__
        raise ProofError(f"{what} is {got}, not a {HASH_SIZE}-byte hash")


def _check_proof(what: str, proof: Sequence[bytes]) -> None:
    for i, h in enumerate(proof):
        _check_hash(f"{what} hash {i}", h)


def _check_size(what: str, size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ProofError(f"{what} {size!r} is not a whole number")


def _check_leaves(leaf_hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(leaf_hashes):
        _check_hash(f"leaf hash {i}", h)
