"""The Merkle tree of RFC 9162 (Certificate Transparency v2), section 2.1, over SHA-256.

Pure: hashing and arithmetic only, no I/O. Storage is reached through `NodeReader`.

Addressing. A node is the key (level, index) and covers the leaves
[index * 2**level, (index + 1) * 2**level). Only roots of *complete* subtrees are ever
stored: such a node is written once, when its last leaf arrives, and never changes, so a
store can be append-only. A node of the RFC tree whose width is not a power of two (one on
the right edge of a tree) is never stored; it is the hash of the complete subtrees that tile
it, folded from right to left.

Reads. Every reading algorithm works in three steps so a database pays one query per call:
plan (which keys, pure), fetch (one bulk read), combine (pure). The plan is public
(`inclusion_plan`, `consistency_plan`, `root_plan`, `needed_keys`, `combine`) so that code
which cannot use the synchronous `NodeReader` (an async session, a batch of proofs) can run
the fetch itself.

Writes. `Frontier` is the compact range [0, size): the roots of the complete subtrees that
tile the tree, highest first. `append_leaves` extends it and returns the nodes to store,
without reading anything.

Leaves are leaf hashes throughout (`leaf_hash(entry)`), never raw entries: the service
hashes an entry once, when it is journaled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

digest_size_bytes: Final = 32
LEAF_PREFIX: Final = b"\x00"
NODE_PREFIX: Final = b"\x01"
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

NodeKey = tuple[int, int]
"""(level, index): the complete subtree over leaves [index * 2**level, (index + 1) * 2**level)."""

ProofPlan = list[tuple[NodeKey, ...]]
"""One group of keys per proof element; the element is the group's nodes folded right to left."""


@dataclass(frozen=True, slots=True)
class StoredNode:
    """A complete-subtree node to write: immutable once its leaves exist."""

    level: int
    index: int
    digest: bytes

    @property
    def key(self) -> NodeKey:
        return (self.level, self.index)


# --- Hashing -----------------------------------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def fold_right(digests: Sequence[bytes]) -> bytes:
    """The hash of a right-edge node from the complete subtrees that tile it, left to right.

    The RFC splits a width-w node at the largest power of two below w, which is exactly the
    first (largest) tile; the rest is again a right-edge node, hence the right-to-left fold.
    """
    if not digests:
        raise ValueError("cannot fold an empty list of subtree hashes")
    acc = digests[-1]
    for digest in reversed(digests[:-1]):
        acc = node_hash(digest, acc)
    return acc


def root_from_leaves(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) by its recursive definition (RFC 9162, 2.1.1), over leaf hashes.

    The reference the stored-node algorithms are checked against; O(n log n) hashing.
    """
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = split_point(len(leaves))
    return node_hash(root_from_leaves(leaves[:k]), root_from_leaves(leaves[k:]))


# --- Tree arithmetic -----------------------------------------------------------------------


def split_point(width: int) -> int:
    """k, the largest power of two strictly less than `width` (width >= 2)."""
    if width < 2:
        raise ValueError(f"only a node of width >= 2 splits, got {width}")
    return 1 << ((width - 1).bit_length() - 1)


def range_keys(begin: int, end: int) -> list[NodeKey]:
    """The fewest complete subtrees that tile the leaves [begin, end), left to right.

    Each tile is the largest one aligned at its start that still fits, so there are at most
    2 * log2(end - begin) of them; for a right-edge node (begin aligned to its width) the
    tiles follow the binary digits of end - begin, largest first.
    """
    if not 0 <= begin <= end:
        raise ValueError(f"invalid leaf range [{begin}, {end})")
    keys: list[NodeKey] = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)
        keys.append((level, begin >> level))
        begin += 1 << level
    return keys


def _check_size(tree_size: int) -> None:
    if tree_size < 0:
        raise ValueError(f"tree size must be >= 0, got {tree_size}")


# --- Plans: which nodes a result needs --------------------------------------------------


def root_plan(tree_size: int) -> ProofPlan:
    """One group: the tiles of [0, tree_size). Empty for the empty tree."""
    _check_size(tree_size)
    return [tuple(range_keys(0, tree_size))] if tree_size else []


def _inclusion_ranges(leaf_index: int, tree_size: int) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, tree_size
    while hi - lo > 1:
        mid = lo + split_point(hi - lo)
        if leaf_index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    # Descent found the siblings root first; the proof lists them leaf first.
    ranges.reverse()
    return ranges


def inclusion_plan(leaf_index: int, tree_size: int) -> ProofPlan:
    """PATH(m, D[n]) of RFC 9162, 2.1.3.1, as groups of stored nodes."""
    _check_size(tree_size)
    if not 0 <= leaf_index < tree_size:
        raise ValueError(f"leaf index {leaf_index} is outside a tree of size {tree_size}")
    return [tuple(range_keys(a, b)) for a, b in _inclusion_ranges(leaf_index, tree_size)]


def _consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, second
    # The RFC's flag b: true while the current node is a prefix the verifier already holds.
    known = True
    while hi != first:
        mid = lo + split_point(hi - lo)
        if first <= mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
            known = False
    if not known:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def consistency_plan(first: int, second: int) -> ProofPlan:
    """PROOF(m, D[n]) of RFC 9162, 2.1.4.1, as groups of stored nodes.

    Empty when first is 0 or first == second: nothing needs proving.
    """
    _check_size(first)
    if first > second:
        raise ValueError(f"first size {first} is larger than second size {second}")
    if first in (0, second):
        return []
    return [tuple(range_keys(a, b)) for a, b in _consistency_ranges(first, second)]


def needed_keys(plan: ProofPlan) -> list[NodeKey]:
    """Every key the plan reads, once each, in first-use order."""
    return list(dict.fromkeys(key for group in plan for key in group))


def combine(plan: ProofPlan, fetched: Mapping[NodeKey, bytes]) -> list[bytes]:
    """The plan's hashes, from the nodes fetched for `needed_keys(plan)`."""
    missing = [key for key in needed_keys(plan) if key not in fetched]
    if missing:
        raise LookupError(f"nodes not stored: {missing}")
    return [fold_right([fetched[key] for key in group]) for group in plan]


# --- Reading from storage ------------------------------------------------------------------


class NodeReader(Protocol):
    """Stored complete-subtree nodes. A missing node is a LookupError."""

    def node(self, level: int, index: int) -> bytes: ...


@runtime_checkable
class BulkNodeReader(NodeReader, Protocol):
    """A reader that can fetch many nodes at once: one database query per proof."""

    def nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]: ...


def fetch(reader: NodeReader, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
    """All of `keys`, in one bulk call when the reader has one."""
    if not keys:
        return {}
    if isinstance(reader, BulkNodeReader):
        return reader.nodes(keys)
    return {key: reader.node(*key) for key in keys}


def _resolve(plan: ProofPlan, reader: NodeReader) -> list[bytes]:
    return combine(plan, fetch(reader, needed_keys(plan)))


def root(tree_size: int, reader: NodeReader) -> bytes:
    """MTH of the first `tree_size` leaves; EMPTY_ROOT for 0, without a read."""
    hashes = _resolve(root_plan(tree_size), reader)
    return hashes[0] if hashes else EMPTY_ROOT


def inclusion_proof(leaf_index: int, tree_size: int, reader: NodeReader) -> list[bytes]:
    return _resolve(inclusion_plan(leaf_index, tree_size), reader)


def consistency_proof(first: int, second: int, reader: NodeReader) -> list[bytes]:
    return _resolve(consistency_plan(first, second), reader)


# --- Verification (no storage) -----------------------------------------------------------


def _all_digests(*values: bytes) -> bool:
    return all(len(value) == digest_size_bytes for value in values)


def _shift_until_odd_or_zero(fn: int, sn: int) -> tuple[int, int]:
    while fn and not fn & 1:
        fn >>= 1
        sn >>= 1
    return fn, sn


def verify_inclusion(
    leaf: bytes, leaf_index: int, tree_size: int, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """RFC 9162, 2.1.3.2. `leaf` is the leaf hash. Bad arguments fail, they never raise."""
    if not 0 <= leaf_index < tree_size or not _all_digests(leaf, root_hash, *proof):
        return False
    fn, sn = leaf_index, tree_size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_until_odd_or_zero(fn, sn)
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162, 2.1.4.2, plus the cases it leaves out: first == second and first == 0.

    Equal sizes need equal roots and an empty proof; the empty tree is consistent with every
    tree, given an empty proof and the true empty root. Bad arguments fail, they never raise.
    """
    if not 0 <= first <= second or not _all_digests(first_root, second_root, *proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    return _verify_consistency_path(first, second, first_root, second_root, proof)


def _verify_consistency_path(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            fn, sn = _shift_until_odd_or_zero(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


# --- Appending -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frontier:
    """The compact range [0, size): what appending needs to know about a tree.

    `hashes` holds one complete-subtree root per set bit of `size`, highest level first; the
    node for bit `level` is (level, (size >> level) - 1). The empty tree is Frontier(0, ()).
    It is O(log n) hashes, enough to append and to compute the root without any read.
    """

    size: int = 0
    hashes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        _check_size(self.size)
        if len(self.hashes) != self.size.bit_count():
            raise ValueError(
                f"a tree of size {self.size} has {self.size.bit_count()} frontier hashes, "
                f"got {len(self.hashes)}"
            )

    def keys(self) -> list[NodeKey]:
        return range_keys(0, self.size)

    def root(self) -> bytes:
        return fold_right(self.hashes) if self.hashes else EMPTY_ROOT


def frontier_from_reader(tree_size: int, reader: NodeReader) -> Frontier:
    """Rebuild the frontier from storage (after a restart): one bulk read of O(log n) nodes."""
    _check_size(tree_size)
    keys = range_keys(0, tree_size)
    fetched = fetch(reader, keys)
    return Frontier(tree_size, tuple(fetched[key] for key in keys))


def append_leaves(frontier: Frontier, leaves: Iterable[bytes]) -> tuple[Frontier, list[StoredNode]]:
    """Append leaf hashes; return the new frontier and every node that became complete.

    The new nodes come bottom-up per leaf (the leaf itself, then each parent it completes);
    none is ever rewritten later, so they can be inserted as they are.
    """
    size = frontier.size
    stack = list(frontier.hashes)
    created: list[StoredNode] = []
    for leaf in leaves:
        if len(leaf) != digest_size_bytes:
            raise ValueError(f"a leaf hash is {digest_size_bytes} bytes, got {len(leaf)}")
        created.extend(_push_leaf(stack, size, leaf))
        size += 1
    return Frontier(size, tuple(stack)), created


def _push_leaf(stack: list[bytes], leaf_index: int, leaf: bytes) -> Iterator[StoredNode]:
    digest, level, index = leaf, 0, leaf_index
    yield StoredNode(level, index, digest)
    # A set bit at `level` of the old size is a complete left sibling waiting on the stack.
    while index & 1:
        digest = node_hash(stack.pop(), digest)
        level += 1
        index >>= 1
        yield StoredNode(level, index, digest)
    stack.append(digest)


# --- In-memory tree ------------------------------------------------------------------------


class MemoryTree:
    """An append-only tree kept in a dict; a BulkNodeReader for tests and offline checks."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._nodes: dict[NodeKey, bytes] = {}
        self._frontier = Frontier()
        self.extend(leaves)

    @property
    def size(self) -> int:
        return self._frontier.size

    @property
    def frontier(self) -> Frontier:
        return self._frontier

    @property
    def stored(self) -> Mapping[NodeKey, bytes]:
        return self._nodes

    def append(self, leaf: bytes) -> int:
        """Append one leaf hash; return its index."""
        self.extend((leaf,))
        return self.size - 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        self._frontier, created = append_leaves(self._frontier, leaves)
        for node in created:
            self._nodes[node.key] = node.digest

    def root(self) -> bytes:
        return self._frontier.root()

    def node(self, level: int, index: int) -> bytes:
        try:
            return self._nodes[(level, index)]
        except KeyError:
            raise LookupError(f"node ({level}, {index}) is not stored") from None

    def nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        return {key: self.node(*key) for key in keys}
