"""The compiled per-document hashing (catalog/_digests.c) against hashlib.

Document hashes, leaves and subtree roots are what every manifest, proof and overlap index is
made of: both implementations must give the same bytes, and the compiled one must refuse what
it cannot hash rather than read past a buffer.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from catalog import documents
from catalog.documents import DocumentTree, digest_leaves, document_digests
from catalog.errors import IngestError


def test_the_compiled_module_is_built() -> None:
    """The project's install builds it (setup.py, with OpenSSL's libcrypto); without it every
    other test here would compare hashlib with itself."""
    assert documents._native is not None


def _documents() -> list[bytes | memoryview]:
    rng = random.Random(5)
    blob = rng.randbytes(1 << 16)
    view = memoryview(blob)
    found: list[bytes | memoryview] = [b"", b"a", "é日本".encode()]
    found += [rng.randbytes(rng.choice([1, 31, 32, 33, 64, 1000, 5000])) for _ in range(300)]
    found += [view[a : a + n] for a, n in ((0, 0), (7, 100), (1000, 4096), (60000, 5536))]
    return found


def test_digests_and_leaves_are_hashlibs() -> None:
    given = _documents()
    digests = document_digests(given)
    assert digests == [hashlib.sha256(d).digest() for d in given]
    assert digest_leaves(digests) == [hashlib.sha256(b"\x00" + d).digest() for d in digests]
    assert document_digests(iter(given)) == digests  # any iterable, not only lists


@pytest.mark.parametrize("count", [1, 2, 3, 1023, 1024, 1025, 2048 + 5])
def test_tree_roots_are_the_same_either_way(count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    leaves = digest_leaves(document_digests(str(i).encode() for i in range(count)))

    def root() -> bytes:
        tree = DocumentTree()
        for start in range(0, count, 700):
            tree.extend(leaves[start : start + 700])
        return tree.root()

    native = root()
    monkeypatch.setattr(documents, "_native", None)
    assert root() == native


def test_bad_input_is_refused() -> None:
    assert documents._native is not None
    with pytest.raises(IngestError, match="32 bytes"):
        digest_leaves([b"short"])
    with pytest.raises(ValueError, match="power of two"):
        documents._native.perfect_root([b"\x00" * 32] * 3)
    with pytest.raises(ValueError, match="32 bytes"):
        documents._native.perfect_root([b"\x00" * 31, b"\x00" * 32])
    with pytest.raises(TypeError):
        document_digests([b"ok", 5])  # type: ignore[list-item]
