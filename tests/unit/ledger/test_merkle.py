"""Tests for ledger.merkle: public vectors, known answers, properties and a pymerkle cross-check."""

from __future__ import annotations

import base64
import functools
import json
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from pymerkle import InmemoryTree  # type: ignore[import-untyped]

from ledger.errors import FormatError, StoreError, VerificationError
from ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Integration,
    NodeID,
    RootBuilder,
    consistency_proof,
    consistency_proof_ids,
    frontier_root,
    inclusion_proof,
    inclusion_proof_ids,
    integrate,
    leaf_hash,
    node_hash,
    subtree_ids,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
VECTORS = PROJECT_ROOT.parent / "shared" / "vectors"
MERKLE_TESTDATA = VECTORS / "merkle-rfc6962" / "testdata"


def _vector_files(kind: str) -> list[str]:
    base = MERKLE_TESTDATA / kind
    return sorted(str(p.relative_to(MERKLE_TESTDATA)) for p in base.glob("**/*.json"))


INCLUSION_FILES = _vector_files("inclusion")
CONSISTENCY_FILES = _vector_files("consistency")

MAX_SIZE = 70
LEAVES = [leaf_hash(f"leaf {i}".encode()) for i in range(MAX_SIZE)]
FULL = integrate(0, [], LEAVES)
NODES: dict[NodeID, bytes] = dict(FULL.nodes)
ROOTS = [tree_root(LEAVES[:n]) for n in range(MAX_SIZE + 1)]


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _load(rel: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((MERKLE_TESTDATA / rel).read_text())
    return data


def _flip(value: bytes, pos: int) -> bytes:
    return value[:pos] + bytes([value[pos] ^ 0x01]) + value[pos + 1 :]


def _split(n: int) -> int:
    """Largest power of two strictly below n (n >= 2), as RFC 6962 defines k."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@functools.cache
def _mth(start: int, end: int) -> bytes:
    """RFC 6962 MTH(D[start:end]) over LEAVES, straight from the recursive definition."""
    if end == start:
        return EMPTY_ROOT
    if end - start == 1:
        return LEAVES[start]
    k = _split(end - start)
    return node_hash(_mth(start, start + k), _mth(start + k, end))


def _rfc_path(m: int, start: int, end: int) -> list[bytes]:
    """RFC 6962 PATH(m, D[start:end]), recursive reference."""
    if end - start <= 1:
        return []
    k = _split(end - start)
    if m < k:
        return [*_rfc_path(m, start, start + k), _mth(start + k, end)]
    return [*_rfc_path(m - k, start + k, end), _mth(start, start + k)]


def _rfc_subproof(m: int, start: int, end: int, whole: bool) -> list[bytes]:
    """RFC 6962 SUBPROOF(m, D[start:end], b), recursive reference."""
    if m == end - start:
        return [] if whole else [_mth(start, end)]
    k = _split(end - start)
    if m <= k:
        return [*_rfc_subproof(m, start, start + k, whole), _mth(start + k, end)]
    return [*_rfc_subproof(m - k, start + k, end, False), _mth(start, start + k)]


class Reader:
    """A read_nodes backed by a dict, recording calls and refusing nodes beyond the tree."""

    def __init__(self, nodes: Mapping[NodeID, bytes], size: int) -> None:
        self.nodes = nodes
        self.size = size
        self.calls: list[list[NodeID]] = []

    def __call__(self, ids: Sequence[NodeID]) -> list[bytes]:
        ids = list(ids)
        self.calls.append(ids)
        assert len(set(ids)) == len(ids), "ids must be distinct"
        assert all(n.end <= self.size for n in ids), "node not complete at this size"
        return [self.nodes[n] for n in ids]


def _id_budget(size: int) -> int:
    return 2 * math.ceil(math.log2(size)) + 2 if size > 1 else 2


def _expect_fail(check: Callable[..., None], **kwargs: Any) -> None:
    with pytest.raises(VerificationError):
        check(**kwargs)


# --- public vectors (transparency-dev/merkle testdata) -------------------------------------


def test_vector_directories_are_complete() -> None:
    assert len(INCLUSION_FILES) >= 98, MERKLE_TESTDATA
    assert len(CONSISTENCY_FILES) >= 98, MERKLE_TESTDATA


@pytest.mark.parametrize("rel", INCLUSION_FILES)
def test_inclusion_vector(rel: str) -> None:
    v = _load(rel)
    kwargs: dict[str, Any] = {
        "leaf_hash": _b64(v["leafHash"]),
        "index": v["leafIdx"],
        "size": v["treeSize"],
        "proof": [_b64(p) for p in v["proof"] or []],
        "root": _b64(v["root"]),
    }
    if v["wantErr"]:
        _expect_fail(verify_inclusion, **kwargs)
    else:
        verify_inclusion(**kwargs)


@pytest.mark.parametrize("rel", CONSISTENCY_FILES)
def test_consistency_vector(rel: str) -> None:
    v = _load(rel)
    kwargs: dict[str, Any] = {
        "size1": v["size1"],
        "size2": v["size2"],
        "proof": [_b64(p) for p in v["proof"] or []],
        "root1": _b64(v["root1"]),
        "root2": _b64(v["root2"]),
    }
    if v["wantErr"]:
        _expect_fail(verify_consistency, **kwargs)
    else:
        verify_consistency(**kwargs)


# --- known answers (signed-notes.json) -----------------------------------------------------


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "signed-notes.json").read_text())
    return data["golden_strings"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def reference_leaves(golden: dict[str, Any]) -> list[bytes]:
    return [leaf_hash(bytes.fromhex(x)) for x in golden["rfc6962-reference-tree"]["leaves_hex"]]


def test_rfc6962_hasher_known_answers(golden: dict[str, Any]) -> None:
    kat = golden["rfc6962-hasher-kats"]
    assert EMPTY_ROOT.hex() == kat["empty_tree_root_hex"]
    assert tree_root([]) == EMPTY_ROOT == frontier_root([]) == RootBuilder().root()
    assert leaf_hash(b"").hex() == kat["leaf_hash_of_empty_hex"]
    assert leaf_hash(b"L123456").hex() == kat["leaf_hash_of_L123456_hex"]
    assert node_hash(b"N123", b"N456").hex() == kat["node_hash_of_N123_N456_hex"]
    assert len(EMPTY_ROOT) == HASH_SIZE


def test_go_sumdb_tree_root_is_rfc6962_leaf_hash(golden: dict[str, Any]) -> None:
    tree = golden["go-sumdb-tlog-FormatTree"]
    root_b64 = tree["text"].splitlines()[2]
    assert tree_root([leaf_hash(b"hello world")]) == base64.b64decode(root_b64)


def test_reference_tree_roots(golden: dict[str, Any], reference_leaves: list[bytes]) -> None:
    want = [bytes.fromhex(x) for x in golden["rfc6962-reference-tree"]["roots_hex_by_size_1_to_8"]]
    builder = RootBuilder()
    frontier: tuple[bytes, ...] = ()
    for size, leaf in enumerate(reference_leaves, start=1):
        builder.append(leaf)
        frontier = integrate(size - 1, frontier, [leaf]).frontier
        assert tree_root(reference_leaves[:size]) == want[size - 1]
        assert builder.root() == frontier_root(frontier) == want[size - 1]


def test_happy_vectors_are_what_the_builders_produce(
    golden: dict[str, Any], reference_leaves: list[bytes]
) -> None:
    """Every happy-path vector from the reference tree is exactly what we would serve."""
    nodes = dict(integrate(0, [], reference_leaves).nodes)
    roots = [tree_root(reference_leaves[:n]) for n in range(9)]
    checked = 0
    for rel in INCLUSION_FILES:
        v = _load(rel)
        index, size = v["leafIdx"], v["treeSize"]
        if v["wantErr"] or not 0 < size <= 8 or _b64(v["root"]) != roots[size]:
            continue
        proof = inclusion_proof(index, size, Reader(nodes, size))
        assert proof == [_b64(p) for p in v["proof"] or []], rel
        checked += 1
    for rel in CONSISTENCY_FILES:
        v = _load(rel)
        size1, size2 = v["size1"], v["size2"]
        if v["wantErr"] or not 0 < size1 <= size2 <= 8 or _b64(v["root2"]) != roots[size2]:
            continue
        proof = consistency_proof(size1, size2, Reader(nodes, size2))
        assert proof == [_b64(p) for p in v["proof"] or []], rel
        checked += 1
    assert checked >= 10


# --- integrate / roots ---------------------------------------------------------------------


def test_integrate_leaf_by_leaf_matches_tree_root() -> None:
    size, frontier = 0, cast(tuple[bytes, ...], ())
    for leaf in LEAVES:
        result = integrate(size, frontier, [leaf])
        size, frontier = result.size, result.frontier
        assert len(frontier) == size.bit_count()
        assert frontier_root(frontier) == ROOTS[size]
    assert frontier == FULL.frontier


def test_integrate_in_random_batches_matches_all_at_once() -> None:
    rng = random.Random(6962)
    for _ in range(40):
        size, frontier = 0, cast(tuple[bytes, ...], ())
        nodes: list[tuple[NodeID, bytes]] = []
        while size < MAX_SIZE:
            batch = LEAVES[size : size + rng.randint(0, 9)]
            result = integrate(size, frontier, batch)
            assert result.size == size + len(batch)
            size, frontier = result.size, result.frontier
            nodes.extend(result.nodes)
            assert frontier_root(frontier) == ROOTS[size]
        assert frontier == FULL.frontier
        assert sorted(nodes) == sorted(FULL.nodes)


def test_integrate_nodes_are_exactly_the_perfect_subtrees() -> None:
    """Every node written is the root of its leaf range; every complete subtree is written once."""
    ids = [node for node, _ in FULL.nodes]
    assert len(ids) == len(set(ids))
    want = {
        NodeID(level, index)
        for level in range(MAX_SIZE.bit_length())
        for index in range(MAX_SIZE >> level)
    }
    assert set(ids) == want
    for node, h in FULL.nodes:
        assert node.end - node.start == 1 << node.level
        assert h == tree_root(LEAVES[node.start : node.end]) == _mth(node.start, node.end)


def test_integrate_with_no_leaves_is_a_no_op() -> None:
    frontier = integrate(0, [], LEAVES[:5]).frontier
    assert integrate(5, frontier, []) == Integration(size=5, frontier=frontier, nodes=())
    assert integrate(0, [], []) == Integration(size=0, frontier=(), nodes=())


def test_integrate_rejects_a_frontier_that_does_not_fit() -> None:
    frontier = integrate(0, [], LEAVES[:5]).frontier
    with pytest.raises(StoreError, match="frontier"):
        integrate(7, frontier, [LEAVES[5]])
    with pytest.raises(StoreError, match="frontier"):
        integrate(5, frontier[:1], [LEAVES[5]])
    with pytest.raises(StoreError):
        integrate(-1, [], [LEAVES[0]])
    with pytest.raises(StoreError, match="32 bytes"):
        integrate(5, (frontier[0][:31], frontier[1]), [LEAVES[5]])
    with pytest.raises(StoreError, match="32 bytes"):
        integrate(5, frontier, [b"short"])


def test_tree_root_matches_the_rfc_definition() -> None:
    for size in range(MAX_SIZE + 1):
        assert ROOTS[size] == _mth(0, size)


def test_root_builder_matches_tree_root() -> None:
    builder = RootBuilder()
    assert builder.size == 0
    assert builder.root() == EMPTY_ROOT
    for size, leaf in enumerate(LEAVES, start=1):
        builder.append(leaf)
        assert builder.size == size
        assert builder.root() == ROOTS[size]
        assert builder.frontier == integrate(0, [], LEAVES[:size]).frontier


def test_root_builder_rejects_non_hashes() -> None:
    with pytest.raises(FormatError, match="32 bytes"):
        RootBuilder().append(b"not a hash")
    with pytest.raises(FormatError):
        tree_root([LEAVES[0], b""])


# --- node ids ------------------------------------------------------------------------------


def test_node_id_ordering_and_range() -> None:
    assert NodeID(0, 5) < NodeID(1, 0) < NodeID(1, 1)
    assert (NodeID(3, 2).start, NodeID(3, 2).end) == (16, 24)


def test_subtree_ids_cover_ranges_exactly() -> None:
    for start in range(41):
        for end in range(start, 41):
            ids = subtree_ids(start, end)
            pos = start
            for node in ids:
                assert node.start == pos
                pos = node.end
            assert pos == end
            assert len(ids) <= 2 * max(1, (end - start).bit_length())


def test_subtree_ids_rejects_bad_ranges() -> None:
    for start, end in ((3, 2), (-1, 2)):
        with pytest.raises(StoreError):
            subtree_ids(start, end)


# --- proofs: properties over every (index, size) / (size1, size2) up to 70 -----------------


def test_inclusion_proofs_for_every_pair() -> None:
    rng = random.Random(9162)
    for size in range(1, MAX_SIZE + 1):
        for index in range(size):
            reader = Reader(NODES, size)
            proof = inclusion_proof(index, size, reader)
            assert proof == _rfc_path(index, 0, size)
            assert len(reader.calls) == (1 if proof else 0)
            assert sum(map(len, reader.calls)) <= _id_budget(size)
            verify_inclusion(
                leaf_hash=LEAVES[index], index=index, size=size, proof=proof, root=ROOTS[size]
            )
            _check_inclusion_tampering(rng, index, size, proof)


def _check_inclusion_tampering(
    rng: random.Random, index: int, size: int, proof: list[bytes]
) -> None:
    good: dict[str, Any] = {
        "leaf_hash": LEAVES[index],
        "index": index,
        "size": size,
        "proof": proof,
        "root": ROOTS[size],
    }
    for i in range(len(proof)):
        bad = [*proof]
        bad[i] = _flip(bad[i], rng.randrange(HASH_SIZE))
        _expect_fail(verify_inclusion, **{**good, "proof": bad})
    pos = rng.randrange(HASH_SIZE)
    _expect_fail(verify_inclusion, **{**good, "root": _flip(ROOTS[size], pos)})
    _expect_fail(verify_inclusion, **{**good, "leaf_hash": _flip(LEAVES[index], pos)})
    _expect_fail(verify_inclusion, **{**good, "proof": [*proof, ROOTS[size]]})
    if proof:
        _expect_fail(verify_inclusion, **{**good, "proof": proof[:-1]})
    if size > 1:
        _expect_fail(verify_inclusion, **{**good, "index": (index + 1) % size})


def test_consistency_proofs_for_every_pair() -> None:
    rng = random.Random(6962)
    for size2 in range(1, MAX_SIZE + 1):
        for size1 in range(1, size2 + 1):
            reader = Reader(NODES, size2)
            proof = consistency_proof(size1, size2, reader)
            assert proof == _rfc_subproof(size1, 0, size2, True)
            assert len(reader.calls) == (1 if proof else 0)
            assert sum(map(len, reader.calls)) <= _id_budget(size2)
            verify_consistency(
                size1=size1, size2=size2, proof=proof, root1=ROOTS[size1], root2=ROOTS[size2]
            )
            _check_consistency_tampering(rng, size1, size2, proof)


def _check_consistency_tampering(
    rng: random.Random, size1: int, size2: int, proof: list[bytes]
) -> None:
    good: dict[str, Any] = {
        "size1": size1,
        "size2": size2,
        "proof": proof,
        "root1": ROOTS[size1],
        "root2": ROOTS[size2],
    }
    for i in range(len(proof)):
        bad = [*proof]
        bad[i] = _flip(bad[i], rng.randrange(HASH_SIZE))
        _expect_fail(verify_consistency, **{**good, "proof": bad})
    pos = rng.randrange(HASH_SIZE)
    _expect_fail(verify_consistency, **{**good, "root1": _flip(ROOTS[size1], pos)})
    _expect_fail(verify_consistency, **{**good, "root2": _flip(ROOTS[size2], pos)})
    _expect_fail(verify_consistency, **{**good, "proof": [*proof, ROOTS[size1]]})
    if proof:
        _expect_fail(verify_consistency, **{**good, "proof": proof[:-1]})
    if size1 < size2:
        _expect_fail(verify_consistency, **{**good, "root1": ROOTS[size1 + 1]})
        _expect_fail(verify_consistency, **{**good, "size1": size1 + 1})


@pytest.mark.parametrize("size", [5, 13, 64, 70])
def test_every_flipped_byte_is_detected(size: int) -> None:
    """Exhaustive version of the tampering checks, for a few sizes."""
    for index in range(size):
        proof = inclusion_proof(index, size, Reader(NODES, size))
        args = {"leaf_hash": LEAVES[index], "index": index, "size": size}
        for i, pos in ((i, pos) for i in range(len(proof)) for pos in range(HASH_SIZE)):
            bad = [*proof]
            bad[i] = _flip(bad[i], pos)
            _expect_fail(verify_inclusion, **args, proof=bad, root=ROOTS[size])
        for pos in range(HASH_SIZE):
            _expect_fail(verify_inclusion, **args, proof=proof, root=_flip(ROOTS[size], pos))
    for size1 in range(1, size):
        proof = consistency_proof(size1, size, Reader(NODES, size))
        sizes = {"size1": size1, "size2": size}
        roots = {"root1": ROOTS[size1], "root2": ROOTS[size]}
        for i, pos in ((i, pos) for i in range(len(proof)) for pos in range(HASH_SIZE)):
            bad = [*proof]
            bad[i] = _flip(bad[i], pos)
            _expect_fail(verify_consistency, **sizes, **roots, proof=bad)
        for key, pos in ((k, pos) for k in roots for pos in range(HASH_SIZE)):
            _expect_fail(
                verify_consistency, **sizes, **{**roots, key: _flip(roots[key], pos)}, proof=proof
            )


def test_proof_ids_fold_right_to_left_into_each_element() -> None:
    for size in range(1, MAX_SIZE + 1):
        for index in range(size):
            groups = inclusion_proof_ids(index, size)
            assert [frontier_root([NODES[n] for n in g]) for g in groups] == _rfc_path(
                index, 0, size
            )
            assert sum(len(g) > 1 for g in groups) <= 1
        for size1 in range(size + 1):
            groups = consistency_proof_ids(size1, size)
            folded = [frontier_root([NODES[n] for n in g]) for g in groups]
            assert folded == (_rfc_subproof(size1, 0, size, True) if size1 else [])


# --- bad arguments -------------------------------------------------------------------------


def _never_called(ids: Sequence[NodeID]) -> list[bytes]:
    raise AssertionError("read_nodes must not be called")


def test_proof_builders_reject_bad_arguments() -> None:
    for index, size in ((5, 5), (0, 0), (-1, 5), (6, 5), (0, -1)):
        with pytest.raises(StoreError):
            inclusion_proof_ids(index, size)
        with pytest.raises(StoreError):
            inclusion_proof(index, size, _never_called)
    for size1, size2 in ((3, 2), (-1, 2), (1, 0), (-2, -1)):
        with pytest.raises(StoreError):
            consistency_proof_ids(size1, size2)
        with pytest.raises(StoreError):
            consistency_proof(size1, size2, _never_called)


def test_trivial_proofs_do_not_touch_the_store() -> None:
    assert inclusion_proof(0, 1, _never_called) == []
    assert consistency_proof(7, 7, _never_called) == []
    assert consistency_proof(0, 7, _never_called) == []


def test_proof_builders_reject_a_misbehaving_store() -> None:
    with pytest.raises(StoreError, match="node hashes"):
        inclusion_proof(3, 9, lambda ids: [NODES[n] for n in ids][:-1])
    with pytest.raises(StoreError, match="32 bytes"):
        consistency_proof(3, 9, lambda ids: [b"x" for _ in ids])


def test_verifiers_reject_bad_arguments_with_verification_error() -> None:
    proof = inclusion_proof(2, 5, Reader(NODES, 5))
    base: dict[str, Any] = {"leaf_hash": LEAVES[2], "proof": proof, "root": ROOTS[5]}
    for index, size in ((5, 5), (-1, 5), (0, 0), (0, -3)):
        _expect_fail(verify_inclusion, **base, index=index, size=size)
    with pytest.raises(VerificationError, match=r"expected 3 hashes, found 2"):
        verify_inclusion(**{**base, "proof": proof[:2]}, index=2, size=5)
    with pytest.raises(VerificationError, match="32 bytes"):
        verify_inclusion(**{**base, "proof": [proof[0][:31], *proof[1:]]}, index=2, size=5)
    with pytest.raises(VerificationError, match=f"expected {ROOTS[4].hex()}, found"):
        verify_inclusion(**{**base, "root": ROOTS[4]}, index=2, size=5)

    cproof = consistency_proof(3, 5, Reader(NODES, 5))
    roots = {"root1": ROOTS[3], "root2": ROOTS[5]}
    for size1, size2 in ((6, 5), (-1, 5), (0, 5), (0, 0)):
        _expect_fail(verify_consistency, **roots, proof=cproof, size1=size1, size2=size2)
    with pytest.raises(VerificationError, match="empty proof"):
        verify_consistency(size1=5, size2=5, proof=cproof, root1=ROOTS[5], root2=ROOTS[5])
    with pytest.raises(VerificationError, match=r"expected \d+ hashes, found"):
        verify_consistency(size1=3, size2=5, proof=cproof[1:], **roots)
    with pytest.raises(VerificationError, match="root of tree size 5"):
        verify_consistency(size1=3, size2=5, proof=cproof, root1=ROOTS[3], root2=ROOTS[4])


def test_verifiers_never_leak_value_or_index_errors() -> None:
    """Random garbage only ever raises VerificationError, whatever its shape."""
    rng = random.Random(1)
    for _ in range(3000):
        a, b = rng.randint(-3, 20), rng.randint(-3, 20)
        proof = [rng.randbytes(rng.choice((0, 31, 32, 32, 33))) for _ in range(rng.randint(0, 7))]
        h1, h2 = rng.randbytes(rng.choice((0, 32))), rng.randbytes(rng.choice((0, 32)))
        with pytest.raises(VerificationError):
            verify_inclusion(leaf_hash=h1, index=a, size=b, proof=proof, root=h2)
        with pytest.raises(VerificationError):
            verify_consistency(size1=a, size2=b, proof=proof or [h1], root1=h1, root2=h2)


# --- cross-check against pymerkle (an independent RFC 6962 implementation) ----------------


@pytest.fixture(scope="module")
def pymerkle_tree() -> Any:
    # pymerkle's defaults are RFC 6962: SHA-256 with 0x00/0x01 prefixes (security mode on).
    return InmemoryTree.init_from_entries([f"leaf {i}".encode() for i in range(MAX_SIZE)])


def test_pymerkle_hashing_matches(pymerkle_tree: Any) -> None:
    assert pymerkle_tree.hash_empty() == EMPTY_ROOT
    assert pymerkle_tree.hash_buff(b"L123456") == leaf_hash(b"L123456")
    assert pymerkle_tree.hash_pair(b"N123", b"N456") == node_hash(b"N123", b"N456")
    for size in range(MAX_SIZE + 1):
        assert pymerkle_tree.get_root(size) == ROOTS[size]


def test_pymerkle_inclusion_paths_match(pymerkle_tree: Any) -> None:
    for size in range(1, MAX_SIZE + 1):
        for index in range(size):
            theirs = pymerkle_tree.prove_inclusion(index + 1, size)  # pymerkle counts from 1
            assert theirs.path[0] == LEAVES[index]
            assert theirs.path[1:] == inclusion_proof(index, size, Reader(NODES, size))


def test_pymerkle_consistency_proofs_agree_on_roots(pymerkle_tree: Any) -> None:
    """pymerkle's consistency path is not in RFC 9162 layout (it carries every perfect subtree
    of the old tree), so proofs cannot be compared byte for byte; the roots it proves can."""
    for size2 in range(1, MAX_SIZE + 1):
        for size1 in range(1, size2 + 1):
            theirs = pymerkle_tree.prove_consistency(size1, size2)
            theirs.verify(ROOTS[size1], ROOTS[size2], prior_size=size1, later_size=size2)
            assert theirs.retrieve_prior_state() == ROOTS[size1]


# --- large trees and speed -----------------------------------------------------------------


class UniformTree:
    """A tree whose leaves are all equal, so any perfect subtree's hash depends only on its level.

    That lets tests build and verify real proofs for trees of millions (or 2**62) of leaves.
    """

    def __init__(self, leaf: bytes, levels: int = 64) -> None:
        self.level_hash = [leaf]
        for _ in range(levels):
            self.level_hash.append(node_hash(self.level_hash[-1], self.level_hash[-1]))

    def read_nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        return [self.level_hash[n.level] for n in ids]

    def root(self, size: int) -> bytes:
        return frontier_root([self.level_hash[n.level] for n in subtree_ids(0, size)])


def test_uniform_tree_agrees_with_small_trees() -> None:
    leaf = leaf_hash(b"same")
    uniform = UniformTree(leaf)
    for size in range(MAX_SIZE + 1):
        assert uniform.root(size) == tree_root([leaf] * size)


@pytest.mark.parametrize("size", [1_000_000, 1_048_576, 2**40 + 12345, 2**62 - 1])
def test_proofs_on_huge_trees(size: int) -> None:
    uniform = UniformTree(leaf_hash(b"same"))
    rng = random.Random(size)
    for _ in range(50):
        index = rng.randrange(size)
        proof = inclusion_proof(index, size, uniform.read_nodes)
        assert len(proof) <= 2 * size.bit_length()
        verify_inclusion(
            leaf_hash=uniform.level_hash[0],
            index=index,
            size=size,
            proof=proof,
            root=uniform.root(size),
        )
        size1 = rng.randrange(1, size + 1)
        proof = consistency_proof(size1, size, uniform.read_nodes)
        verify_consistency(
            size1=size1,
            size2=size,
            proof=proof,
            root1=uniform.root(size1),
            root2=uniform.root(size),
        )


def test_proofs_on_a_million_leaves_take_well_under_a_millisecond() -> None:
    size = 1_000_000
    uniform = UniformTree(leaf_hash(b"same"))
    root = uniform.root(size)
    rng = random.Random(0)
    indices = [rng.randrange(size) for _ in range(500)]
    started = time.perf_counter()
    for index in indices:
        proof = inclusion_proof(index, size, uniform.read_nodes)
        verify_inclusion(
            leaf_hash=uniform.level_hash[0], index=index, size=size, proof=proof, root=root
        )
        proof = consistency_proof(index + 1, size, uniform.read_nodes)
        verify_consistency(
            size1=index + 1, size2=size, proof=proof, root1=uniform.root(index + 1), root2=root
        )
    per_round = (time.perf_counter() - started) / len(indices)
    # One round = build + verify of both proof kinds (plus a root); the budget is per proof.
    assert per_round < 4e-3, f"{per_round * 1e6:.0f} us per round"
