"""RFC 9162 Merkle hashing and proofs: published vectors, adversarial probes, properties."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from schemas.errors import LiaisonError
from schemas.merkle import (
    EMPTY_ROOT,
    CompactRange,
    CompactRangeState,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)


def h(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


# Published vectors. The eight standard leaf inputs, every node hash and the roots of the
# trees of sizes 0 to 8 are copied from transparency-dev/merkle, testonly/constants.go
# (LeafInputs, NodeHashes, RootHashes, CompactTrees); they are the RFC 6962 vectors
# inherited from google/certificate-transparency and google/trillian.
LEAF_INPUTS = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]
NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]
ROOT_HASHES = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]
NH = NODE_HASHES
# testonly/constants.go CompactTrees(): the right edge of each tree of size 0 to 8.
COMPACT_TREES: list[list[bytes]] = [
    [],
    [NH[0][0]],
    [NH[1][0]],
    [NH[1][0], NH[0][2]],
    [NH[2][0]],
    [NH[2][0], NH[0][4]],
    [NH[2][0], NH[1][2]],
    [NH[2][0], NH[1][2], NH[0][6]],
    [NH[3][0]],
]
LEAVES = [leaf_hash(d) for d in LEAF_INPUTS]

# (index, size, proof): the union of transparency-dev/merkle proof/verify_test.go
# `inclusionProofs` (which numbers leaves from 1; converted to 0-based indices here) and
# testonly/reference_test.go TestRefInclusionProof.
INCLUSION_VECTORS: list[tuple[int, int, list[bytes]]] = [
    (0, 1, []),
    (0, 2, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")]),
    (1, 2, [h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")]),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# (old size, new size, proof): transparency-dev/merkle proof/verify_test.go
# `consistencyProofs` (which include testonly/reference_test.go TestRefConsistencyProof).
CONSISTENCY_VECTORS: list[tuple[int, int, list[bytes]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# proof/verify_test.go `sha256SomeHash`: an arbitrary 32-byte value.
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def refuses(check: Callable[[], None]) -> bool:
    """Whether ``check`` raises ``ProofError``."""
    try:
        check()
    except ProofError:
        return True
    return False


def flip(proof: Sequence[bytes], i: int, mask: int) -> list[bytes]:
    """The proof with one bit of element ``i`` flipped."""
    out = list(proof)
    out[i] = bytes([out[i][0] ^ mask]) + out[i][1:]
    return out


# Published vectors.


def test_empty_root_is_sha256_of_nothing() -> None:
    assert ROOT_HASHES[0] == EMPTY_ROOT
    assert root([]) == EMPTY_ROOT


def test_leaf_hashes_match_the_published_level_zero() -> None:
    assert NODE_HASHES[0] == LEAVES


def test_interior_node_hashes_match_the_published_levels() -> None:
    for level in range(1, len(NODE_HASHES)):
        below = NODE_HASHES[level - 1]
        assert NODE_HASHES[level] == [
            node_hash(below[2 * i], below[2 * i + 1]) for i in range(len(below) // 2)
        ]


@pytest.mark.parametrize("size", range(9))
def test_roots_match_the_published_roots(size: int) -> None:
    assert root(LEAVES[:size]) == ROOT_HASHES[size]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_proofs_match_the_published_proofs(
    index: int, size: int, proof: list[bytes]
) -> None:
    assert inclusion_proof(LEAVES[:size], index) == tuple(proof)
    verify_inclusion(LEAVES[index], index, size, proof, ROOT_HASHES[size])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
def test_consistency_proofs_match_the_published_proofs(
    old: int, new: int, proof: list[bytes]
) -> None:
    assert consistency_proof(LEAVES[:new], old) == tuple(proof)
    verify_consistency(old, new, ROOT_HASHES[old], ROOT_HASHES[new], proof)


@pytest.mark.parametrize("size", range(9))
def test_compact_range_edges_match_the_published_compact_trees(size: int) -> None:
    compact = CompactRange()
    compact.extend(LEAVES[:size])
    assert compact.to_state() == CompactRangeState(tuple(COMPACT_TREES[size]), size)
    assert compact.root() == ROOT_HASHES[size]


def test_a_hundred_leaves_agree_with_the_go_reference() -> None:
    # Not a published vector: computed by running transparency-dev/merkle v0.0.2's
    # testonly.Tree (AppendData of the decimal strings "0".."99"), to check our proof
    # builders beyond eight leaves against an independent implementation.
    leaves = [leaf_hash(str(i).encode()) for i in range(100)]
    assert root(leaves) == h("7a1541f5e93292eb40660749ef8f36ef074d30052102fab1abfd03bf09e5685d")
    assert root(leaves[:64]) == h(
        "391a31ee43d791bbe11932a5a2242719c18874e81cf32f0d8d3d7bf31bfca6b8"
    )
    assert inclusion_proof(leaves, 99) == (
        h("7430e94e8d3dd575ef22828b10b79a331c5a7b4897c19efd225d6317da1d99d1"),
        h("4d56fa1361e7df7c7a4736b1b2f44221eab7b3fc81cdcf9f9e9be31c5dc7eba1"),
        h("712da138c00a40ad99c4d60624ef32bf8355668cd95beb47f45222e8b87225f7"),
        h("391a31ee43d791bbe11932a5a2242719c18874e81cf32f0d8d3d7bf31bfca6b8"),
    )
    assert consistency_proof(leaves, 64) == (
        h("92c02a59225547a5960559f96ab08448d5a95b1f6973bc8a961bec1edb227fdd"),
    )


# Adversarial probes, ported from proof/verify_test.go corruptInclusionProof and
# corruptConsistencyProof: each must be refused.


def inclusion_probes(
    index: int, size: int, proof: list[bytes], good_root: bytes, leaf: bytes
) -> list[tuple[str, bytes, int, int, list[bytes], bytes]]:
    probes = [
        ("index - 1", leaf, index - 1, size, proof, good_root),
        ("index + 1", leaf, index + 1, size, proof, good_root),
        ("index ^ 2", leaf, index ^ 2, size, proof, good_root),
        ("size * 2", leaf, index, size * 2, proof, good_root),
        ("size / 2", leaf, index, size // 2, proof, good_root),
        ("wrong leaf", leaf_hash(b"WrongLeaf"), index, size, proof, good_root),
        ("empty root", leaf, index, size, proof, EMPTY_ROOT),
        ("random root", leaf, index, size, proof, SOME_HASH),
        ("trailing root", leaf, index, size, [*proof, good_root], good_root),
        ("preceding root", leaf, index, size, [good_root, *proof], good_root),
    ]
    probes += [
        (f"modified proof[{i}]", leaf, index, size, flip(proof, i, 8), good_root)
        for i in range(len(proof))
    ]
    if proof:
        probes.append(("removed component", leaf, index, size, proof[:-1], good_root))
    if len(proof) > 1:
        probes.append(
            ("inserted component", leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], good_root)
        )
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS[1:])
def test_corrupted_inclusion_proofs_are_refused(index: int, size: int, proof: list[bytes]) -> None:
    probes = inclusion_probes(index, size, proof, ROOT_HASHES[size], LEAVES[index])
    accepted = [
        desc
        for desc, leaf, i, n, p, r in probes
        if not refuses(partial(verify_inclusion, leaf, i, n, p, r))
    ]
    assert accepted == []


def consistency_probes(
    old: int, new: int, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    r1, r2 = ROOT_HASHES[old], ROOT_HASHES[new]
    probes = [
        ("old - 1", old - 1, new, r1, r2, proof),
        ("old + 1", old + 1, new, r1, r2, proof),
        ("old ^ 2", old ^ 2, new, r1, r2, proof),
        ("new * 2", old, new * 2, r1, r2, proof),
        ("new / 2", old, new // 2, r1, r2, proof),
        ("wrong old root", old, new, SOME_HASH, r2, proof),
        ("wrong new root", old, new, r1, SOME_HASH, proof),
        ("swapped roots", old, new, r2, r1, proof),
        ("empty proof", old, new, r1, r2, []),
        ("trailing old root", old, new, r1, r2, [*proof, r1]),
        ("trailing new root", old, new, r1, r2, [*proof, r2]),
        ("preceding old root", old, new, r1, r2, [r1, *proof]),
        ("preceding new root", old, new, r1, r2, [r2, *proof]),
        ("preceding proof[0]", old, new, r1, r2, [proof[0], *proof]),
        ("truncated proof", old, new, r1, r2, proof[:-1]),
    ]
    probes += [
        (f"modified proof[{i}]", old, new, r1, r2, flip(proof, i, 16)) for i in range(len(proof))
    ]
    return probes


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS[1:])
def test_corrupted_consistency_proofs_are_refused(old: int, new: int, proof: list[bytes]) -> None:
    accepted = [
        desc
        for desc, m, n, r1, r2, p in consistency_probes(old, new, proof)
        if not refuses(partial(verify_consistency, m, n, r1, r2, p))
    ]
    assert accepted == []


# Edge cases and messages.


def test_a_wrong_root_is_named_in_plain_english() -> None:
    index, size, proof = INCLUSION_VECTORS[-1]
    with pytest.raises(
        ProofError, match=r"^inclusion proof does not lead to the root of a tree of size 8$"
    ):
        verify_inclusion(LEAVES[index], index, size, proof, ROOT_HASHES[7])


def test_proof_length_errors_say_which_way_the_length_is_wrong() -> None:
    index, size, proof = INCLUSION_VECTORS[-1]
    leaf, top = LEAVES[index], ROOT_HASHES[size]
    with pytest.raises(ProofError, match="longer than a tree of size 8 needs"):
        verify_inclusion(leaf, index, size, [*proof, top], top)
    with pytest.raises(ProofError, match="too short for a tree of size 8"):
        verify_inclusion(leaf, index, size, proof[:-1], top)
    old, new, cproof = CONSISTENCY_VECTORS[2]
    r1, r2 = ROOT_HASHES[old], ROOT_HASHES[new]
    with pytest.raises(ProofError, match="longer than sizes 6 and 8 need"):
        verify_consistency(old, new, r1, r2, [*cproof, r2])
    with pytest.raises(ProofError, match="too short for sizes 6 and 8"):
        verify_consistency(old, new, r1, r2, cproof[:-1])
    with pytest.raises(ProofError, match="root of the old tree of size 6"):
        verify_consistency(old, new, SOME_HASH, r2, cproof)
    with pytest.raises(ProofError, match="root of the new tree of size 8"):
        verify_consistency(old, new, r1, SOME_HASH, cproof)


def test_proof_error_is_a_liaison_value_error() -> None:
    assert issubclass(ProofError, LiaisonError)
    assert issubclass(ProofError, ValueError)
    assert not ProofError.retriable


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (1, 1), (2, 1), (8, 8), (-1, 8)])
def test_inclusion_outside_the_tree_is_refused(index: int, size: int) -> None:
    with pytest.raises(ProofError, match="outside a tree"):
        verify_inclusion(SOME_HASH, index, size, [], SOME_HASH)


def test_single_leaf_tree_root_is_its_leaf_hash() -> None:
    # proof/verify_test.go TestVerifyInclusionSingleEntry.
    leaf = leaf_hash(b"data")
    verify_inclusion(leaf, 0, 1, [], leaf)
    with pytest.raises(ProofError, match="root"):
        verify_inclusion(leaf, 0, 1, [], b"")
    with pytest.raises(ProofError, match="leaf hash"):
        verify_inclusion(b"", 0, 1, [], leaf)


@pytest.mark.parametrize(
    ("old", "new", "old_root", "new_root", "proof", "message"),
    [
        (1, 0, SOME_HASH, SOME_HASH, [], "not between"),
        (2, 1, SOME_HASH, SOME_HASH, [], "not between"),
        (-1, 1, SOME_HASH, SOME_HASH, [], "not between"),
        (1, 1, ROOT_HASHES[1], ROOT_HASHES[2], [], "different roots"),
        (1, 1, ROOT_HASHES[1], ROOT_HASHES[1], [EMPTY_ROOT], "not empty"),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], "not empty"),
        (0, 1, EMPTY_ROOT, ROOT_HASHES[1], [EMPTY_ROOT], "not empty"),
        (0, 1, SOME_HASH, ROOT_HASHES[1], [], "empty tree"),
        (1, 2, ROOT_HASHES[1], ROOT_HASHES[2], [], "is empty"),
        (1, 2, ROOT_HASHES[1], ROOT_HASHES[2], [b"short"], "hash 0 is 5 bytes"),
        (1, 2, b"", ROOT_HASHES[2], [NH[0][1]], "old root is 0 bytes"),
    ],
)
def test_impossible_consistency_claims_are_refused(
    old: int,
    new: int,
    *,
    old_root: bytes,
    new_root: bytes,
    proof: list[bytes],
    message: str,
) -> None:
    with pytest.raises(ProofError, match=message):
        verify_consistency(old, new, old_root, new_root, proof)


def test_trivial_consistency_claims_hold() -> None:
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 8, EMPTY_ROOT, ROOT_HASHES[8], [])
    verify_consistency(8, 8, ROOT_HASHES[8], ROOT_HASHES[8], [])


def test_proof_builders_refuse_impossible_requests() -> None:
    with pytest.raises(ProofError, match="outside a tree of size 8"):
        inclusion_proof(LEAVES, 8)
    with pytest.raises(ProofError, match="outside a tree of size 0"):
        inclusion_proof([], 0)
    with pytest.raises(ProofError, match="not between 0 and the tree size 8"):
        consistency_proof(LEAVES, 9)
    with pytest.raises(ProofError, match="leaf hash 1 is 3 bytes"):
        root([LEAVES[0], b"abc"])
    assert consistency_proof(LEAVES, 0) == ()
    assert consistency_proof(LEAVES, 8) == ()


def test_compact_range_refuses_an_inconsistent_state() -> None:
    with pytest.raises(ProofError, match="holds 2 hashes, not 1"):
        CompactRange.from_state(((SOME_HASH,), 3))
    with pytest.raises(ProofError, match="not a whole number"):
        CompactRange.from_state(((), -1))
    with pytest.raises(ProofError, match="compact range hash 0 is 4 bytes"):
        CompactRange.from_state(((b"abcd",), 1))
    with pytest.raises(ProofError, match="leaf hash is 0 bytes"):
        CompactRange().append(b"")


def test_compact_range_equality_and_repr() -> None:
    a, b = CompactRange(), CompactRange()
    a.extend(LEAVES[:3])
    b.extend(LEAVES[:3])
    assert a == b
    assert a != CompactRange()
    assert a != "not a range"
    assert repr(a) == f"CompactRange(size=3, root={ROOT_HASHES[3].hex()[:16]}...)"


# Properties.

trees = st.lists(st.binary(max_size=12), min_size=1, max_size=64, unique=True).map(
    lambda data: [leaf_hash(d) for d in data]
)


@given(trees)
def test_every_inclusion_proof_verifies(leaves: list[bytes]) -> None:
    size, top = len(leaves), root(leaves)
    for index in range(size):
        verify_inclusion(leaves[index], index, size, inclusion_proof(leaves, index), top)


@given(trees)
def test_every_consistency_proof_verifies(leaves: list[bytes]) -> None:
    new, top = len(leaves), root(leaves)
    for old in range(new + 1):
        verify_consistency(old, new, root(leaves[:old]), top, consistency_proof(leaves, old))


@given(trees, st.data())
def test_changing_a_leaf_breaks_every_inclusion_proof(
    leaves: list[bytes], data: st.DataObject
) -> None:
    size = len(leaves)
    changed = data.draw(st.integers(0, size - 1))
    new_leaf = data.draw(st.binary(max_size=12).map(leaf_hash).filter(lambda x: x not in leaves))
    old_root = root(leaves)
    proofs = [inclusion_proof(leaves, i) for i in range(size)]
    tampered = [*leaves[:changed], new_leaf, *leaves[changed + 1 :]]
    new_root = root(tampered)
    assert new_root != old_root
    with pytest.raises(ProofError):
        verify_inclusion(new_leaf, changed, size, proofs[changed], old_root)
    for i in range(size):
        if i != changed:  # its own old proof still fits: only its siblings were used
            with pytest.raises(ProofError):
                verify_inclusion(tampered[i], i, size, proofs[i], new_root)


@given(trees, st.data())
def test_changing_one_proof_hash_breaks_inclusion(leaves: list[bytes], data: st.DataObject) -> None:
    size = len(leaves)
    assume(size > 1)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(leaves, index)
    at = data.draw(st.integers(0, len(proof) - 1))
    replacement = data.draw(st.binary(min_size=32, max_size=32).filter(lambda x: x != proof[at]))
    bad = [*proof[:at], replacement, *proof[at + 1 :]]
    with pytest.raises(ProofError):
        verify_inclusion(leaves[index], index, size, bad, root(leaves))


@given(trees, st.data())
def test_changing_the_index_breaks_inclusion(leaves: list[bytes], data: st.DataObject) -> None:
    size = len(leaves)
    index = data.draw(st.integers(0, size - 1))
    other = data.draw(st.integers(-1, size).filter(lambda j: j != index))
    with pytest.raises(ProofError):
        verify_inclusion(leaves[index], other, size, inclusion_proof(leaves, index), root(leaves))


@given(trees, st.data())
def test_changing_the_size_breaks_inclusion(leaves: list[bytes], data: st.DataObject) -> None:
    """A proof for one tree size never verifies against another size's tree head.

    Note the claim is about the (size, root) pair: the RFC algorithm reads only the path's
    shape from the size, and two sizes can share a shape (index 0 in trees of 3 and 4), so
    size and root must come from the same verified checkpoint.
    """
    size = data.draw(st.integers(1, len(leaves)))
    other = data.draw(st.integers(0, len(leaves)).filter(lambda n: n != size))
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(leaves[:size], index)
    with pytest.raises(ProofError):
        verify_inclusion(leaves[index], index, other, proof, root(leaves[:other]))


def test_two_sizes_can_share_a_path_shape() -> None:
    # Why the property above binds size and root together: this proof for index 0 of
    # the 3-leaf tree also "verifies" for size 4 when handed the 3-leaf root.
    proof = inclusion_proof(LEAVES[:3], 0)
    verify_inclusion(LEAVES[0], 0, 4, proof, ROOT_HASHES[3])
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[0], 0, 4, proof, ROOT_HASHES[4])


@given(trees, st.data())
def test_changing_one_consistency_hash_breaks_it(leaves: list[bytes], data: st.DataObject) -> None:
    new = len(leaves)
    old = data.draw(st.integers(1, new))
    proof = consistency_proof(leaves, old)
    assume(proof)
    at = data.draw(st.integers(0, len(proof) - 1))
    replacement = data.draw(st.binary(min_size=32, max_size=32).filter(lambda x: x != proof[at]))
    bad = [*proof[:at], replacement, *proof[at + 1 :]]
    with pytest.raises(ProofError):
        verify_consistency(old, new, root(leaves[:old]), root(leaves), bad)


@given(trees, st.data())
def test_changing_a_size_breaks_consistency(leaves: list[bytes], data: st.DataObject) -> None:
    """A proof between two sizes proves nothing about another pair of sizes."""
    new = data.draw(st.integers(1, len(leaves)))
    old = data.draw(st.integers(1, new - 1)) if new > 1 else 1
    proof = consistency_proof(leaves[:new], old)
    assume(proof)
    other_old = data.draw(st.integers(0, new).filter(lambda m: m != old))
    other_new = data.draw(st.integers(old, len(leaves)).filter(lambda n: n != new))
    for m, n in ((other_old, new), (old, other_new)):
        # Skip the pairs whose real proof is this very proof: they are consistent.
        assume(consistency_proof(leaves[:n], m) != proof if m <= n else True)
        with pytest.raises(ProofError):
            verify_consistency(m, n, root(leaves[:m]), root(leaves[:n]), proof)


@given(trees, st.data())
def test_changing_an_old_leaf_breaks_consistency(leaves: list[bytes], data: st.DataObject) -> None:
    new = len(leaves)
    assume(new > 1)
    old = data.draw(st.integers(1, new - 1))
    changed = data.draw(st.integers(0, old - 1))
    rewritten = [*leaves[:changed], leaf_hash(b"rewritten history"), *leaves[changed + 1 :]]
    assume(rewritten != leaves)
    # The log rewrote an old leaf and then proves the new tree extends the old head.
    with pytest.raises(ProofError):
        verify_consistency(
            old, new, root(leaves[:old]), root(rewritten), consistency_proof(rewritten, old)
        )


@given(trees)
def test_compact_range_tracks_root_and_survives_persistence(leaves: list[bytes]) -> None:
    compact = CompactRange()
    assert compact.root() == EMPTY_ROOT
    for count, leaf in enumerate(leaves, start=1):
        compact.append(leaf)
        assert compact.size == count
        assert compact.root() == root(leaves[:count])
        state = compact.to_state()
        assert len(state.hashes) == count.bit_count()
        resumed = CompactRange.from_state(state)
        assert resumed == compact
        assert resumed.root() == compact.root()
        compact = resumed  # keep appending to the restored copy


@given(trees, st.data())
def test_compact_range_resumed_from_plain_tuples(leaves: list[bytes], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(leaves)))
    first = CompactRange()
    first.extend(leaves[:cut])
    hashes, size = first.to_state()
    resumed = CompactRange.from_state((tuple(hashes), size))
    resumed.extend(leaves[cut:])
    assert resumed.root() == root(leaves)
