"""A log in memory for witness tests: leaves, signed checkpoints and consistency proofs.

It is built from the real ``ledger.merkle`` functions, so a test can also make a *fork*: the
same log key signing a tree that differs from an earlier one.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.merkle import NodeID, consistency_proof, frontier_root, integrate, leaf_hash
from ledger.note import Ed25519Signer


class ToyLog:
    def __init__(self, signer: Ed25519Signer | None, leaves: Sequence[bytes] = ()) -> None:
        self.signer = signer
        self.leaves: list[bytes] = []
        self._nodes: dict[NodeID, bytes] = {}
        self._frontier: tuple[bytes, ...] = ()
        self._roots: list[bytes] = []
        self.append(*leaves)

    @classmethod
    def of_leaf_hashes(cls, hashes: Sequence[bytes]) -> ToyLog:
        """A tree over given leaf hashes (say, a real log's tiles), for its proofs only."""
        log = cls(None)
        for h in hashes:
            log._add(h)
        return log

    @property
    def size(self) -> int:
        return len(self._roots)

    def append(self, *data: bytes) -> ToyLog:
        for item in data:
            self._add(leaf_hash(item))
            self.leaves.append(item)
        return self

    def _add(self, hash_: bytes) -> None:
        done = integrate(self.size, self._frontier, [hash_])
        self._nodes.update(done.nodes)
        self._frontier = done.frontier
        self._roots.append(frontier_root(self._frontier))

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return self._roots[size - 1]

    def checkpoint(self, size: int | None = None) -> str:
        """The signed checkpoint note of the tree of ``size`` leaves (default: all)."""
        size = self.size if size is None else size
        assert self.signer is not None, "a tree of bare hashes has no key"
        return sign_checkpoint(Checkpoint(self.signer.name, size, self.root(size)), self.signer)

    def proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        size2 = self.size if size2 is None else size2
        if size1 in (0, size2):
            return []
        return consistency_proof(size1, size2, lambda ids: [self._nodes[i] for i in ids])

    def fork(self, at: int, *data: bytes) -> ToyLog:
        """Another tree with the first ``at`` leaves of this one, then ``data``: a split view."""
        return ToyLog(self.signer, [*self.leaves[:at], *data])
