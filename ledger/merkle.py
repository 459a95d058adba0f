"""The RFC 6962 / RFC 9162 Merkle tree at the heart of the transparency log.

Everything here is pure: no I/O, no state beyond what the caller passes in. A store keeps the
*frontier* (one hash per set bit of the tree size) and the hashes of perfect subtrees, addressed
by :class:`NodeID`; this module says which nodes to write when leaves are appended and which nodes
to read to answer a proof, so that a SQL store can do either in a single statement.

Hashing follows RFC 6962 section 2.1 (SHA-256, ``0x00`` leaf prefix, ``0x01`` node prefix).
Proofs use the RFC 9162 section 2.1.3 / 2.1.4 layouts, bottom-up. Verification mirrors
transparency-dev/merkle (the reference Go library whose test vectors this module passes),
including its rule that a consistency proof from an empty tree is rejected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ledger.errors import FormatError, LedgerError, StoreError, VerificationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Integration",
    "NodeID",
    "NodeReader",
    "RootBuilder",
    "consistency_proof",
    "consistency_proof_ids",
    "frontier_root",
    "inclusion_proof",
    "inclusion_proof_ids",
    "integrate",
    "leaf_hash",
    "node_hash",
    "subtree_ids",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()

# Copying a pre-seeded hash object is measurably cheaper than constructing one and prefixing
# the input by concatenation; these two functions dominate the cost of every operation below.
_LEAF_SEED = hashlib.sha256(b"\x00")
_NODE_SEED = hashlib.sha256(b"\x01")


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the prefix keeps a leaf from ever passing for an interior node."""
    h = _LEAF_SEED.copy()
    h.update(data)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the interior-node hash of RFC 6962."""
    h = _NODE_SEED.copy()
    h.update(left)
    h.update(right)
    return h.digest()


@dataclass(frozen=True, order=True, slots=True)
class NodeID:
    """The perfect subtree covering leaves ``[index << level, (index + 1) << level)``.

    Level 0 is the leaves themselves. Perfect subtrees never change once complete, so this is the
    stable key under which a store keeps a hash. Ordered by level, then index.
    """

    level: int
    index: int

    @property
    def start(self) -> int:
        """First leaf covered, so a store can check or index by leaf range."""
        return self.index << self.level

    @property
    def end(self) -> int:
        """One past the last leaf covered."""
        return (self.index + 1) << self.level


NodeReader = Callable[[Sequence[NodeID]], Sequence[bytes]]
"""Returns the stored hashes of the given nodes, in the same order (one query, not one per id)."""


@dataclass(frozen=True)
class Integration:
    """What appending leaves produced: everything a store must persist, nothing it must read.

    ``frontier`` holds the hashes of the perfect subtrees making up the tree, largest (leftmost)
    first, one per set bit of ``size``. ``nodes`` lists every perfect subtree completed by the new
    leaves, the leaves themselves (level 0) included, in the order they were completed.
    """

    size: int
    frontier: tuple[bytes, ...]
    nodes: tuple[tuple[NodeID, bytes], ...]


def _require_hash(value: bytes, what: str, error: type[LedgerError]) -> None:
    """Reject a value that cannot be a SHA-256 hash, naming it, before it poisons a tree."""
    if len(value) != HASH_SIZE:
        raise error(f"{what} must be {HASH_SIZE} bytes, found {len(value)}")


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Root of a left-balanced tree from its perfect parts, largest first (right-to-left fold).

    For parts P1..Pk of a tree whose leaf count has those powers of two as its bits, RFC 6962's
    MTH is node_hash(P1, node_hash(P2, ... Pk)).
    """
    acc = hashes[-1]
    for i in range(len(hashes) - 2, -1, -1):
        acc = node_hash(hashes[i], acc)
    return acc


def integrate(size: int, frontier: Sequence[bytes], leaf_hashes: Sequence[bytes]) -> Integration:
    """Append leaves to a tree known only by its frontier, without reading anything else.

    Works like a binary counter: a new leaf merges with the frontier's smallest subtrees for as
    long as the bit of the old size at that level is set (the carry). Raises StoreError when the
    frontier cannot describe a tree of ``size`` leaves, or when a hash has the wrong length.
    """
    _check_frontier(size, frontier)
    stack = list(frontier)
    nodes: list[tuple[NodeID, bytes]] = []
    add = nodes.append
    for h in leaf_hashes:
        if len(h) != HASH_SIZE:
            raise StoreError(f"leaf hash #{size} must be {HASH_SIZE} bytes, found {len(h)}")
        add((NodeID(0, size), h))
        level = 0
        while (size >> level) & 1:
            h = node_hash(stack.pop(), h)
            level += 1
            add((NodeID(level, size >> level), h))
        stack.append(h)
        size += 1
    return Integration(size=size, frontier=tuple(stack), nodes=tuple(nodes))


def _check_frontier(size: int, frontier: Sequence[bytes]) -> None:
    """A frontier that does not match its size would silently produce a wrong tree forever."""
    if size < 0:
        raise StoreError(f"tree size must be >= 0, found {size}")
    if len(frontier) != size.bit_count():
        raise StoreError(
            f"a tree of size {size} has a frontier of {size.bit_count()} hashes, "
            f"found {len(frontier)}"
        )
    for i, h in enumerate(frontier):
        _require_hash(h, f"frontier hash #{i}", StoreError)


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """Root of the tree a frontier describes; EMPTY_ROOT (RFC 6962 MTH of no leaves) if empty."""
    return _fold(frontier) if frontier else EMPTY_ROOT


class RootBuilder:
    """Streaming tree root over leaf hashes with O(log n) memory.

    For hashing millions of documents one at a time (e.g. to check a log against a corpus) without
    holding their leaf hashes in memory.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._stack: list[bytes] = []
        self._size = 0

    def append(self, leaf_hash: bytes) -> None:
        """Add the next leaf; raises FormatError if it is not a 32-byte hash."""
        _require_hash(leaf_hash, f"leaf hash #{self._size}", FormatError)
        stack = self._stack
        size = self._size
        h = leaf_hash
        while size & 1:
            h = node_hash(stack.pop(), h)
            size >>= 1
        stack.append(h)
        self._size += 1

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def frontier(self) -> tuple[bytes, ...]:
        """The current frontier, so a builder's result can seed :func:`integrate`."""
        return tuple(self._stack)

    def root(self) -> bytes:
        """Root of the leaves appended so far (EMPTY_ROOT if none)."""
        return frontier_root(self._stack)


def tree_root(leaf_hashes: Iterable[bytes]) -> bytes:
    """RFC 6962 MTH over in-memory leaf hashes (for small trees and tests)."""
    builder = RootBuilder()
    for h in leaf_hashes:
        builder.append(h)
    return builder.root()


def subtree_ids(start: int, end: int) -> list[NodeID]:
    """The perfect subtrees that exactly cover leaves ``[start, end)``, left to right.

    Each step takes the largest subtree that is aligned at ``start`` and fits before ``end``.
    """
    if not 0 <= start <= end:
        raise StoreError(f"leaf range [{start}, {end}) is not a valid range")
    ids: list[NodeID] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        ids.append(NodeID(level, start >> level))
        start += 1 << level
    return ids


def _inclusion_groups(index: int, size: int) -> list[list[NodeID]]:
    """Node ids of the inclusion proof of ``index``, one group per proof element, bottom-up.

    At each level the proof holds the sibling of the node on the path to the leaf, clipped to the
    tree size; a right sibling that starts beyond the tree does not exist (the node is promoted),
    and one that straddles the tree's edge is split into its perfect parts.
    """
    groups: list[list[NodeID]] = []
    last = size - 1
    level = 0
    while last >> level:
        sibling = (index >> level) ^ 1
        start = sibling << level
        if start + (1 << level) <= size:
            groups.append([NodeID(level, sibling)])
        elif start < size:
            groups.append(subtree_ids(start, size))
        level += 1
    return groups


def _consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Leaf ranges whose roots make up the RFC 9162 consistency proof, bottom-up.

    Iterative form of SUBPROOF(m, D[lo:hi], whole): descend towards the old tree's right edge,
    collecting the subtree not taken at each step; add the final subtree unless it is the whole
    old tree (which the verifier already has as ``root1``).
    """
    if size1 in (0, size2):
        return []
    ranges: list[tuple[int, int]] = []
    lo, hi, m, whole = 0, size2, size1, True
    while m != hi - lo:
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def inclusion_proof_ids(index: int, size: int) -> list[list[NodeID]]:
    """Per proof element (bottom-up), the perfect subtrees whose hashes fold into it.

    Only the element covering the tree's right edge can have more than one part.
    """
    if not 0 <= index < size:
        raise StoreError(f"no leaf {index} in a tree of size {size}")
    return _inclusion_groups(index, size)


def consistency_proof_ids(size1: int, size2: int) -> list[list[NodeID]]:
    """Per proof element (bottom-up), the perfect subtrees whose hashes fold into it.

    Empty when ``size1`` is 0 or equals ``size2``: there is nothing to prove. (Note that
    :func:`verify_consistency` rejects ``size1 == 0``, as the reference implementation does.)
    """
    if not 0 <= size1 <= size2:
        raise StoreError(f"no consistency proof from size {size1} to size {size2}")
    return [subtree_ids(a, b) for a, b in _consistency_ranges(size1, size2)]


def inclusion_proof(index: int, size: int, read_nodes: NodeReader) -> list[bytes]:
    """The RFC 9162 inclusion proof for leaf ``index`` in the tree of ``size`` leaves.

    ``read_nodes`` is called once (or not at all for an empty proof) with O(log n) node ids.
    """
    return _read_proof(inclusion_proof_ids(index, size), read_nodes)


def consistency_proof(size1: int, size2: int, read_nodes: NodeReader) -> list[bytes]:
    """The RFC 9162 consistency proof from the tree of ``size1`` leaves to that of ``size2``.

    ``read_nodes`` is called once (or not at all for an empty proof) with O(log n) node ids.
    """
    return _read_proof(consistency_proof_ids(size1, size2), read_nodes)


def _read_proof(groups: list[list[NodeID]], read_nodes: NodeReader) -> list[bytes]:
    """Fetch every node of every proof element in one read, then fold multi-part elements.

    The elements cover disjoint leaf ranges, so the ids are already distinct.
    """
    if not groups:
        return []
    ids = [node for group in groups for node in group]
    hashes = read_nodes(ids)
    if len(hashes) != len(ids):
        raise StoreError(f"asked the store for {len(ids)} node hashes, got {len(hashes)}")
    for node, h in zip(ids, hashes, strict=True):
        if len(h) != HASH_SIZE:
            raise StoreError(f"stored hash of {node} must be {HASH_SIZE} bytes, found {len(h)}")
    proof: list[bytes] = []
    pos = 0
    for group in groups:
        n = len(group)
        proof.append(hashes[pos] if n == 1 else _fold(hashes[pos : pos + n]))
        pos += n
    return proof


def _mismatch(what: str, expected: bytes, found: bytes) -> VerificationError:
    """A verification error that shows both values, since "invalid proof" alone is undebuggable."""
    return VerificationError(f"{what}: expected {expected.hex()}, found {found.hex()}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    """Reject malformed proof elements as such, rather than as a mysterious root mismatch."""
    for i, h in enumerate(proof):
        _require_hash(h, f"proof hash #{i}", VerificationError)


def verify_inclusion(
    *, leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    The proof length is fixed by (index, size): ``inner`` hashes below the point where the path
    leaves the tree's right edge, then one per set bit of the index above it. Raises
    VerificationError saying what was expected and what was found.
    """
    if not 0 <= index < size:
        raise VerificationError(f"leaf index {index} is not in a tree of size {size}")
    inner = (index ^ (size - 1)).bit_length()
    expected = inner + (index >> inner).bit_count()
    if len(proof) != expected:
        raise VerificationError(
            f"inclusion proof for leaf {index} in a tree of size {size}: "
            f"expected {expected} hashes, found {len(proof)}"
        )
    _require_hash(leaf_hash, "leaf hash", VerificationError)
    _require_hash(root, "root hash", VerificationError)
    _check_proof_hashes(proof)
    h = leaf_hash
    for i in range(inner):
        h = node_hash(proof[i], h) if (index >> i) & 1 else node_hash(h, proof[i])
    for i in range(inner, expected):
        h = node_hash(proof[i], h)
    if h != root:
        raise _mismatch(f"root of tree size {size} from inclusion proof of leaf {index}", root, h)


def verify_consistency(
    *, size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size1`` leaves with ``root1`` is a prefix of the ``size2`` tree.

    Follows transparency-dev/merkle: the proof is a suffix of the inclusion proof of leaf
    ``size1 - 1`` in the new tree, started at the level of the old tree's smallest perfect
    subtree; hashes left of the path rebuild ``root1``, all of them rebuild ``root2``. A proof
    from size 0 is rejected (it proves nothing), as is any non-empty proof between equal sizes.
    """
    _check_consistency_sizes(size1, size2, proof)
    if size1 == size2:
        if root1 != root2:
            raise _mismatch(f"root of tree size {size2} (same size as the old tree)", root1, root2)
        return
    _require_hash(root1, "root1", VerificationError)
    _require_hash(root2, "root2", VerificationError)
    _check_proof_hashes(proof)
    shift = (size1 & -size1).bit_length() - 1
    mask = (size1 - 1) >> shift
    inner = ((size1 - 1) ^ (size2 - 1)).bit_length() - shift
    start = 0 if mask == 0 else 1
    seed = root1 if start == 0 else proof[0]
    hash1, hash2 = _chain_consistency(
        seed, mask, proof[start : start + inner], proof[start + inner :]
    )
    if hash1 != root1:
        raise _mismatch(f"root of tree size {size1} from consistency proof", root1, hash1)
    if hash2 != root2:
        raise _mismatch(f"root of tree size {size2} from consistency proof", root2, hash2)


def _check_consistency_sizes(size1: int, size2: int, proof: Sequence[bytes]) -> None:
    """Reject impossible sizes and proofs of the wrong length before hashing anything."""
    if not 0 <= size1 <= size2:
        raise VerificationError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == 0:
        raise VerificationError("a consistency proof from an empty tree (size1 = 0) proves nothing")
    if size1 == size2:
        if proof:
            raise VerificationError(
                f"sizes are equal ({size1}): expected an empty proof, found {len(proof)} hashes"
            )
        return
    shift = (size1 & -size1).bit_length() - 1
    inner0 = ((size1 - 1) ^ (size2 - 1)).bit_length()
    expected = (inner0 - shift) + ((size1 - 1) >> inner0).bit_count()
    if size1 != 1 << shift:
        expected += 1
    if len(proof) != expected:
        raise VerificationError(
            f"consistency proof from size {size1} to size {size2}: "
            f"expected {expected} hashes, found {len(proof)}"
        )


def _chain_consistency(
    seed: bytes, mask: int, inner: Sequence[bytes], border: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """Rebuild (old root, new root): the old root uses only hashes to the left of the path."""
    hash1 = hash2 = seed
    for i, p in enumerate(inner):
        if (mask >> i) & 1:
            hash1 = node_hash(p, hash1)
            hash2 = node_hash(p, hash2)
        else:
            hash2 = node_hash(hash2, p)
    for p in border:
        hash1 = node_hash(p, hash1)
        hash2 = node_hash(p, hash2)
    return hash1, hash2
