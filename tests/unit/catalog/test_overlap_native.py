"""The compiled inner loops of the overlap sketch (catalog/_sketch.c) against the numpy code.

Both compute the same integers; a sketch is part of what the exchange remembers per blob and
compares across versions, so a difference would make overlaps go unseen. The numpy code is
what the rest of test_overlap.py pins down; here every value of the compiled code is compared
with it, on texts chosen to reach every branch: ASCII bytes and UTF-32 texts, unspaced scripts
(each character a token), texts with fewer tokens than a shingle, empty texts, separators.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog import overlap
from catalog.readers import Batch

ALPHABET = "ab xyZ09 ,.!\t\nÉéñØ日本語のテキストไทยក្ខ\u2163ﬁ\x00-"


def test_the_compiled_module_is_built() -> None:
    """The project's install builds it (setup.py); without it publishing is about 2x slower
    and every other test here would compare numpy with itself."""
    assert overlap._native is not None


def _numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overlap, "_native", None)


def _everything(texts: list[str | bytes]) -> list[np.ndarray]:
    hashes, bounds = overlap._shingles(texts)
    levels = overlap._levels(hashes, bounds)
    chosen = np.flatnonzero(levels >= 0)
    signatures = overlap._signatures(hashes, bounds, chosen)
    return [hashes.copy(), bounds.copy(), levels.copy(), signatures.copy()]


def _compare(texts: list[str | bytes]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        native = _everything(texts)
        _numpy(patch)
        reference = _everything(texts)
    for got, expected in zip(native, reference, strict=True):
        assert got.dtype == expected.dtype
        assert np.array_equal(got, expected)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=ALPHABET, max_size=80), max_size=12))
def test_unicode_texts_give_the_numpy_values(texts: list[str]) -> None:
    _compare([overlap.normalise(t.encode()) for t in texts])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab cd EF 09,.!-\t", max_size=80), max_size=12))
def test_ascii_bytes_give_the_numpy_values(texts: list[str]) -> None:
    _compare([t.lower().encode() for t in texts])


def test_large_mixed_groups_give_the_numpy_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many texts per group, groups split by size, long texts and both kinds in one call."""
    rng = random.Random(7)
    texts: list[str | bytes] = []
    for _ in range(400):
        length = rng.choice([0, 1, 4, 5, 6, 40, 700, 5000])
        text = "".join(rng.choice(ALPHABET) for _ in range(length))
        texts.append(overlap.normalise(text.encode()))
    texts += [b"plain ascii text with more than five words in it", b"a b", b"", b"x" * 300]
    monkeypatch.setattr(overlap, "_GROUP_CHARACTERS", 2000)
    _compare(texts)


def _sketch_alike(documents: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """A file's sketch bytes, the end result, are the same with and without the module."""

    def sketch() -> bytes:
        collector = overlap.FileSketch("f.jsonl")
        collector(Batch(0, list(documents), sum(map(len, documents)), 0), [])
        return collector.to_bytes()

    native = sketch()
    _numpy(monkeypatch)
    assert sketch() == native


def test_documents_sketch_alike_through_the_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    """The end result, a file's sketch bytes, is the same either way."""
    rng = random.Random(3)
    documents: list[bytes] = [
        " ".join(
            rng.choice(["alpha", "Beta", "gamma", "délta", "字", "ε"]) for _ in range(n)
        ).encode()
        for n in [rng.randint(0, 300) for _ in range(300)]
    ]

    _sketch_alike(documents, monkeypatch)


@pytest.mark.parametrize("head", [40, 64, 1 << 20])
def test_ascii_heads_are_lower_cased_and_cut_alike(
    head: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ASCII documents are shingled from their bytes by the compiled code (lower-cased, cut at
    MAX_SKETCH_BYTES); a document is ASCII when its first MAX_SKETCH_BYTES bytes are."""
    rng = random.Random(head)
    words = ["Alpha", "BETA", "gamma", "x9", "ZZ-top", "é", "字", "Ωmega"]
    documents = [
        " ".join(rng.choice(words) for _ in range(rng.randint(8, 60))).encode() for _ in range(200)
    ]
    documents += [
        b"A" * 64 + "é".encode() + b" tail words here",
        b"MIXED case ONLY ascii words " * 3,
    ]
    monkeypatch.setattr(overlap, "MAX_SKETCH_BYTES", head)

    _sketch_alike(documents, monkeypatch)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda n: n.shingles(
                b"abc", 2, np.zeros(1, np.intp), b"", b"", 1, bytearray(), bytearray()
            ),
            "width",
        ),
        (
            lambda n: n.shingles(
                b"abc",
                1,
                np.array([5], np.intp),
                bytes(256),
                overlap._TOKEN_WEIGHTS,
                1,
                np.empty(3, np.uint64),
                np.empty(1, np.intp),
            ),
            "exceed",
        ),
        (
            lambda n: n.signatures(
                np.zeros(2, np.uint64),
                np.array([0, 3], np.intp),
                np.array([0], np.intp),
                overlap._PERM_A,
                overlap._PERM_B,
                np.empty((1, overlap.PERMUTATIONS), np.uint64),
            ),
            "out of range",
        ),
    ],
)
def test_bad_arguments_are_refused_not_read_past(call: object, message: str) -> None:
    assert overlap._native is not None
    with pytest.raises(ValueError, match=message):
        call(overlap._native)  # type: ignore[operator]
