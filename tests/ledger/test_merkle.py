"""RFC 9162 Merkle tree: published vectors, exhaustive small trees, random large trees."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryTree,
    NodeKey,
    append_leaves,
    consistency_plan,
    consistency_proof,
    frontier_from_reader,
    inclusion_plan,
    inclusion_proof,
    leaf_hash,
    needed_keys,
    node_hash,
    root,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

# --- Reference vectors ---------------------------------------------------------------------
# The 8-leaf tree shared by Certificate Transparency implementations: C++
# cpp/merkletree/merkle_tree_test.cc, certificate-transparency-go / trillian merkle tests,
# transparency-dev/merkle testonly/constants.go and proof/verify_test.go.

CT_INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_LEAVES = [leaf_hash(entry) for entry in CT_INPUTS]

CT_EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# Root for tree size 1..8.
CT_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

# Every complete-subtree node of the 8-leaf tree, by level then index (testonly NodeHashes).
CT_NODES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]

# Compact range (our Frontier) after each size 0..8 (testonly CompactTrees), as (level, index).
CT_FRONTIERS: list[list[NodeKey]] = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]

# (leaf index, tree size, path). The published tables count leaves from 1; these from 0.
CT_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

# (first size, second size, proof).
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
SMALL_TREE_LEAVES_MAX = 64
LARGE_TREE_LEAVES_MAX = 100_000
READ_BOUND_SIZES_MAX = 256


def unhex(hexes: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


def index_leaves(count: int) -> list[bytes]:
    """Cheap, distinct, deterministic leaf hashes."""
    return [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(count)]


class CountingReader:
    """Wraps a reader to count round trips and keys, the cost a database would pay."""

    def __init__(self, inner: MemoryTree) -> None:
        self.inner = inner
        self.bulk_calls = 0
        self.single_calls = 0
        self.keys_read = 0

    def node(self, level: int, index: int) -> bytes:
        self.single_calls += 1
        self.keys_read += 1
        return self.inner.node(level, index)

    def nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        self.bulk_calls += 1
        self.keys_read += len(keys)
        return self.inner.nodes(keys)


class SingleNodeReader:
    """A reader without the bulk method: the fallback path."""

    def __init__(self, inner: MemoryTree) -> None:
        self.inner = inner
        self.calls = 0

    def node(self, level: int, index: int) -> bytes:
        self.calls += 1
        return self.inner.node(level, index)


# --- Reference proofs straight from RFC 9162's recursive definitions -------------------------


def reference_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]), section 2.1.3.1."""
    if len(leaves) <= 1:
        return []
    k = merkle.split_point(len(leaves))
    if m < k:
        return [*reference_path(m, leaves[:k]), root_from_leaves(leaves[k:])]
    return [*reference_path(m - k, leaves[k:]), root_from_leaves(leaves[:k])]


def reference_subproof(m: int, leaves: Sequence[bytes], known: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b), section 2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if known else [root_from_leaves(leaves)]
    k = merkle.split_point(n)
    if m <= k:
        return [*reference_subproof(m, leaves[:k], known), root_from_leaves(leaves[k:])]
    return [*reference_subproof(m - k, leaves[k:], False), root_from_leaves(leaves[:k])]


def reference_nodes(leaves: Sequence[bytes]) -> dict[NodeKey, bytes]:
    """Every complete subtree of the tree, by its recursive hash."""
    nodes: dict[NodeKey, bytes] = {}
    for level in range(len(leaves).bit_length()):
        width = 1 << level
        for index in range(len(leaves) // width):
            nodes[(level, index)] = root_from_leaves(leaves[index * width : (index + 1) * width])
    return nodes


def reads_bound(tree_size: int) -> int:
    return 2 * math.ceil(math.log2(tree_size)) if tree_size > 1 else 0


# --- Corruptions (after the probes of the CT test suites) ------------------------------------


def flipped(proof: Sequence[bytes], position: int) -> list[bytes]:
    out = list(proof)
    out[position] = bytes([out[position][0] ^ 0x10]) + out[position][1:]
    return out


def inclusion_corruptions(
    leaf: bytes, index: int, size: int, proof: list[bytes], root_hash: bytes
) -> list[tuple[str, tuple[bytes, int, int, list[bytes], bytes]]]:
    probes = [
        ("index - 1", (leaf, index - 1, size, proof, root_hash)),
        ("index + 1", (leaf, index + 1, size, proof, root_hash)),
        ("index ^ 2", (leaf, index ^ 2, size, proof, root_hash)),
        ("size * 2", (leaf, index, size * 2, proof, root_hash)),
        ("size // 2", (leaf, index, size // 2, proof, root_hash)),
        ("wrong leaf", (leaf_hash(b"WrongLeaf"), index, size, proof, root_hash)),
        ("empty root", (leaf, index, size, proof, EMPTY_ROOT)),
        ("random root", (leaf, index, size, proof, SOME_HASH)),
        ("trailing garbage", (leaf, index, size, [*proof, b""], root_hash)),
        ("trailing root", (leaf, index, size, [*proof, root_hash], root_hash)),
        ("preceding garbage", (leaf, index, size, [b"", *proof], root_hash)),
        ("preceding root", (leaf, index, size, [root_hash, *proof], root_hash)),
    ]
    probes += [
        (f"flip {i}", (leaf, index, size, flipped(proof, i), root_hash)) for i in range(len(proof))
    ]
    if proof:
        probes.append(("removed", (leaf, index, size, proof[:-1], root_hash)))
    if len(proof) > 1:
        probes.append(
            ("inserted", (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root_hash))
        )
    return probes


def consistency_corruptions(
    first: int, second: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> list[tuple[str, tuple[int, int, bytes, bytes, list[bytes]]]]:
    wrong_root = leaf_hash(b"WrongRoot")
    probes = [
        ("first - 1", (first - 1, second, root1, root2, proof)),
        ("first + 1", (first + 1, second, root1, root2, proof)),
        ("first ^ 2", (first ^ 2, second, root1, root2, proof)),
        ("second * 2", (first, second * 2, root1, root2, proof)),
        ("second // 2", (first, second // 2, root1, root2, proof)),
        ("wrong root1", (first, second, wrong_root, root2, proof)),
        ("wrong root2", (first, second, root1, wrong_root, proof)),
        ("swapped roots", (first, second, root2, root1, proof)),
        ("empty proof", (first, second, root1, root2, [])),
        ("trailing garbage", (first, second, root1, root2, [*proof, b""])),
        ("trailing root1", (first, second, root1, root2, [*proof, root1])),
        ("trailing root2", (first, second, root1, root2, [*proof, root2])),
        ("preceding garbage", (first, second, root1, root2, [b"", *proof])),
        ("preceding root1", (first, second, root1, root2, [root1, *proof])),
        ("preceding root2", (first, second, root1, root2, [root2, *proof])),
        ("preceding proof[0]", (first, second, root1, root2, [proof[0], *proof])),
        ("truncated", (first, second, root1, root2, proof[:-1])),
    ]
    probes += [
        (f"flip {i}", (first, second, root1, root2, flipped(proof, i))) for i in range(len(proof))
    ]
    return probes


def assert_inclusion_checks(
    leaf: bytes, index: int, size: int, proof: list[bytes], root_hash: bytes
) -> None:
    assert verify_inclusion(leaf, index, size, proof, root_hash)
    accepted = [
        name
        for name, args in inclusion_corruptions(leaf, index, size, proof, root_hash)
        if verify_inclusion(*args)
    ]
    assert not accepted, f"({index}, {size}) accepted corrupted proofs: {accepted}"


def assert_consistency_checks(
    first: int, second: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> None:
    assert verify_consistency(first, second, root1, root2, proof)
    if not proof:
        return
    accepted = [
        name
        for name, args in consistency_corruptions(first, second, root1, root2, proof)
        if verify_consistency(*args)
    ]
    assert not accepted, f"({first}, {second}) accepted corrupted proofs: {accepted}"


# --- The published vectors ------------------------------------------------------------------


def test_hash_primitives() -> None:
    assert EMPTY_ROOT.hex() == CT_EMPTY_ROOT
    assert leaf_hash(b"").hex() == CT_ROOTS[1]
    assert node_hash(CT_LEAVES[0], CT_LEAVES[1]).hex() == CT_ROOTS[2]
    assert root_from_leaves([]) == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_reference_roots(size: int) -> None:
    tree = MemoryTree(CT_LEAVES[:size])
    assert root_from_leaves(CT_LEAVES[:size]).hex() == CT_ROOTS[size]
    assert tree.root().hex() == CT_ROOTS[size]
    # Smaller trees are read from the nodes of the full one: nodes never change.
    assert root(size, MemoryTree(CT_LEAVES)).hex() == CT_ROOTS[size]


def test_reference_empty_root_needs_no_read() -> None:
    reader = CountingReader(MemoryTree())
    assert root(0, reader) == EMPTY_ROOT
    assert reader.keys_read == 0


def test_reference_stored_nodes() -> None:
    expected = {
        (level, index): bytes.fromhex(h)
        for level, row in enumerate(CT_NODES)
        for index, h in enumerate(row)
    }
    assert dict(MemoryTree(CT_LEAVES).stored) == expected


@pytest.mark.parametrize("size", range(9))
def test_reference_frontiers(size: int) -> None:
    frontier = MemoryTree(CT_LEAVES[:size]).frontier
    assert frontier.keys() == CT_FRONTIERS[size]
    assert [h.hex() for h in frontier.hashes] == [CT_NODES[lv][ix] for lv, ix in CT_FRONTIERS[size]]


@pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION)
def test_reference_inclusion(index: int, size: int, expected: list[str]) -> None:
    tree = MemoryTree(CT_LEAVES)
    proof = inclusion_proof(index, size, tree)
    assert [p.hex() for p in proof] == expected
    assert_inclusion_checks(
        CT_LEAVES[index], index, size, unhex(expected), unhex([CT_ROOTS[size]])[0]
    )


@pytest.mark.parametrize(("first", "second", "expected"), CT_CONSISTENCY)
def test_reference_consistency(first: int, second: int, expected: list[str]) -> None:
    tree = MemoryTree(CT_LEAVES)
    proof = consistency_proof(first, second, tree)
    assert [p.hex() for p in proof] == expected
    root1, root2 = unhex([CT_ROOTS[first], CT_ROOTS[second]])
    assert_consistency_checks(first, second, root1, root2, unhex(expected))


# --- Verifier edge cases ------------------------------------------------------------------


def test_inclusion_rejects_impossible_positions() -> None:
    for index, size in [(0, 0), (1, 0), (2, 1), (-1, 1)]:
        assert not verify_inclusion(SOME_HASH, index, size, [], SOME_HASH)
        assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


def test_inclusion_single_leaf() -> None:
    leaf = leaf_hash(b"data")
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 1, [leaf], leaf)


def test_consistency_trivial_cases() -> None:
    some, other = SOME_HASH, leaf_hash(b"other")
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, some, [])
    assert verify_consistency(3, 3, some, some, [])
    # Stricter than some CT verifiers: the empty tree must come with its true root.
    assert not verify_consistency(0, 5, some, some, [])
    assert not verify_consistency(3, 3, some, other, [])
    assert not verify_consistency(1, 0, some, other, [])
    assert not verify_consistency(2, 1, some, other, [])
    assert not verify_consistency(1, 2, some, other, [])
    assert not verify_consistency(-1, 2, some, other, [])
    # Roots match, but a proof where none belongs.
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    assert not verify_consistency(0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    assert not verify_consistency(1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])


def test_out_of_range_arguments_raise() -> None:
    tree = MemoryTree(CT_LEAVES)
    with pytest.raises(ValueError, match="outside a tree of size 8"):
        inclusion_proof(8, 8, tree)
    with pytest.raises(ValueError, match="outside a tree of size 0"):
        inclusion_proof(0, 0, tree)
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof(-1, 4, tree)
    with pytest.raises(ValueError, match="larger than second"):
        consistency_proof(5, 4, tree)
    with pytest.raises(ValueError, match=">= 0"):
        root(-1, tree)
    with pytest.raises(ValueError, match=">= 0"):
        consistency_proof(-1, 4, tree)
    with pytest.raises(ValueError, match="32 bytes"):
        tree.append(b"short")
    with pytest.raises(ValueError, match="frontier hashes"):
        Frontier(3, (SOME_HASH,))


def test_trivial_consistency_proofs_are_empty() -> None:
    tree = MemoryTree(CT_LEAVES)
    assert consistency_proof(0, 8, tree) == []
    assert consistency_proof(0, 0, tree) == []
    assert consistency_proof(8, 8, tree) == []


def test_reading_past_the_stored_tree_is_a_lookup_error() -> None:
    tree = MemoryTree(CT_LEAVES[:5])
    with pytest.raises(LookupError):
        root(6, tree)
    with pytest.raises(LookupError):
        inclusion_proof(0, 8, tree)


def test_reader_without_bulk_method() -> None:
    tree = MemoryTree(CT_LEAVES)
    reader = SingleNodeReader(tree)
    assert [p.hex() for p in inclusion_proof(5, 8, reader)] == CT_INCLUSION[2][2]
    assert reader.calls == len(needed_keys(inclusion_plan(5, 8)))


# --- Every small tree ------------------------------------------------------------------------


@cache
def small_tree() -> tuple[list[bytes], MemoryTree]:
    leaves = index_leaves(SMALL_TREE_LEAVES_MAX)
    return leaves, MemoryTree(leaves)


@pytest.mark.parametrize("size", range(1, SMALL_TREE_LEAVES_MAX + 1))
def test_every_inclusion_proof(size: int) -> None:
    leaves, tree = small_tree()
    expected_root = root_from_leaves(leaves[:size])
    assert root(size, tree) == expected_root
    for index in range(size):
        proof = inclusion_proof(index, size, tree)
        assert proof == reference_path(index, leaves[:size])
        assert_inclusion_checks(leaves[index], index, size, proof, expected_root)
        for wrong_size in (size - 1, size + 1):
            if index < wrong_size <= SMALL_TREE_LEAVES_MAX:
                true_root = root_from_leaves(leaves[:wrong_size])
                assert not verify_inclusion(leaves[index], index, wrong_size, proof, true_root)


@pytest.mark.parametrize("second", range(1, SMALL_TREE_LEAVES_MAX + 1))
def test_every_consistency_proof(second: int) -> None:
    leaves, tree = small_tree()
    root2 = root_from_leaves(leaves[:second])
    for first in range(1, second + 1):
        proof = consistency_proof(first, second, tree)
        expected = reference_subproof(first, leaves[:second], True) if first < second else []
        assert proof == expected
        root1 = root_from_leaves(leaves[:first])
        assert_consistency_checks(first, second, root1, root2, proof)


def test_read_bound_exhaustively_for_small_trees() -> None:
    for size in range(1, READ_BOUND_SIZES_MAX + 1):
        bound = reads_bound(size)
        for index in range(size):
            assert len(needed_keys(inclusion_plan(index, size))) <= bound
        for first in range(1, size + 1):
            assert len(needed_keys(consistency_plan(first, size))) <= bound


# --- Incremental appends -----------------------------------------------------------------


@given(batches=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=8))
@settings(max_examples=60, deadline=None)
def test_frontier_appends_match_recursive_definition(batches: list[int]) -> None:
    leaves = index_leaves(sum(batches))
    frontier = Frontier()
    stored: dict[NodeKey, bytes] = {}
    for count in batches:
        start = frontier.size
        frontier, created = append_leaves(frontier, leaves[start : start + count])
        for node in created:
            assert node.key not in stored, f"node {node.key} written twice"
            stored[node.key] = node.digest
        assert frontier.size == start + count
        assert frontier.root() == root_from_leaves(leaves[: frontier.size])
        assert stored == reference_nodes(leaves[: frontier.size])
        assert frontier_from_reader(frontier.size, MemoryTree(leaves[: frontier.size])) == frontier


def test_frontier_rebuilt_from_storage_costs_one_read() -> None:
    leaves, tree = small_tree()
    reader = CountingReader(tree)
    frontier = frontier_from_reader(45, reader)
    assert reader.bulk_calls == 1
    assert reader.keys_read == (45).bit_count()
    rest, _ = append_leaves(frontier, leaves[45:])
    assert rest == tree.frontier


# --- Large random trees ------------------------------------------------------------------


@cache
def large_tree() -> tuple[list[bytes], MemoryTree]:
    """One stored tree serves every smaller size, because stored nodes never change."""
    leaves = index_leaves(LARGE_TREE_LEAVES_MAX)
    tree = MemoryTree()
    batch_leaves = 4096
    for start in range(0, LARGE_TREE_LEAVES_MAX, batch_leaves):
        tree.extend(leaves[start : start + batch_leaves])
    return leaves, tree


@st.composite
def sizes_and_positions(draw: st.DrawFn) -> tuple[int, int, int]:
    size = draw(st.integers(min_value=1, max_value=LARGE_TREE_LEAVES_MAX))
    index = draw(st.integers(min_value=0, max_value=size - 1))
    first = draw(st.integers(min_value=1, max_value=size))
    return size, index, first


@given(case=sizes_and_positions())
@settings(max_examples=30, deadline=None)
def test_large_tree_proofs(case: tuple[int, int, int]) -> None:
    size, index, first = case
    leaves, tree = large_tree()
    root2 = root_from_leaves(leaves[:size])
    root1 = root_from_leaves(leaves[:first])

    reader = CountingReader(tree)
    assert root(size, reader) == root2
    assert (reader.bulk_calls, reader.keys_read) == (1, size.bit_count())

    reader = CountingReader(tree)
    proof = inclusion_proof(index, size, reader)
    assert verify_inclusion(leaves[index], index, size, proof, root2)
    if proof:
        assert not verify_inclusion(leaves[index], index, size, flipped(proof, 0), root2)
    assert reader.bulk_calls == (1 if size > 1 else 0)
    assert reader.single_calls == 0
    assert reader.keys_read <= reads_bound(size)

    reader = CountingReader(tree)
    proof = consistency_proof(first, size, reader)
    assert verify_consistency(first, size, root1, root2, proof)
    if proof:
        assert not verify_consistency(first, size, root1, root2, flipped(proof, -1))
    assert reader.bulk_calls == (1 if first < size else 0)
    assert reader.keys_read <= reads_bound(size)


def test_large_tree_root_matches_frontier() -> None:
    leaves, tree = large_tree()
    assert tree.root() == root_from_leaves(leaves)
    assert root(LARGE_TREE_LEAVES_MAX, tree) == tree.root()
