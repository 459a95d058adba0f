"""The compiled inner loops of the overlap sketch (catalog/_sketch.c) against the numpy code.

Both compute the same integers; a sketch is part of what the exchange remembers per blob and
compares across versions, so a difference would make overlaps go unseen. The numpy code is
what the rest of test_overlap.py pins down; here every value of the compiled code is compared
with it, on texts chosen to reach every branch: ASCII bytes and UTF-32 texts, unspaced scripts
(each character a token), texts with fewer tokens than a shingle, empty texts, separators.
"""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

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
    assert overlap._native is not None
    with pytest.MonkeyPatch.context() as patch:
        native = _everything(texts)
        try:
            overlap._native.use_vectors(False)
            scalar = _everything(texts)
        finally:
            overlap._native.use_vectors(True)
        _numpy(patch)
        reference = _everything(texts)
    for got, got_scalar, expected in zip(native, scalar, reference, strict=True):
        assert got.dtype == expected.dtype
        assert np.array_equal(got, expected)
        assert np.array_equal(got_scalar, expected)


def _cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads the CPU flags on Linux")
def test_signatures_use_avx512_where_the_cpu_has_it() -> None:
    """So that the comparisons here test the vector path on such a machine (this one, in CI)."""
    assert overlap._native is not None
    expected = {"avx512f", "avx512dq", "avx512bw"} <= _cpu_flags()
    assert overlap._native.use_vectors(True) is expected


@pytest.mark.parametrize("permutations", [1, 7, 8, 9, 15, 16, 17, 100, 101])
def test_signatures_of_any_number_of_permutations_both_ways(permutations: int) -> None:
    """Every count of permutations (the vector path takes 8 at a time and masks the rest), for
    texts of 0 to 40 shingles, by the defining formula in Python integers."""
    native = overlap._native
    assert native is not None
    rng = np.random.default_rng(permutations)
    sizes = rng.integers(0, 41, 30)
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
    hashes = rng.integers(0, 2**64, int(bounds[-1]), dtype=np.uint64, endpoint=False)
    a = rng.integers(0, 2**64, permutations, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**64, permutations, dtype=np.uint64)
    chosen = np.array([29, 0, 3, 3, 17], np.intp)
    expected = np.full((len(chosen), permutations), 2**64 - 1, np.uint64)
    for r, t in enumerate(chosen.tolist()):
        for h in hashes[bounds[t] : bounds[t + 1]].tolist():
            for p in range(permutations):
                value = (h * int(a[p]) + int(b[p])) % 2**64
                expected[r, p] = min(int(expected[r, p]), value)
    for vectors in (True, False):
        native.use_vectors(vectors)
        out = np.empty((len(chosen), permutations), np.uint64)
        try:
            native.signatures(hashes, bounds, chosen, a, b, out)
        finally:
            native.use_vectors(True)
        assert np.array_equal(out, expected), vectors


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


def _folded() -> list[str]:
    table = overlap._fold_table()
    return [chr(c) for c in np.flatnonzero(table != overlap._UNFOLDED).tolist()]


def test_every_folded_code_point_is_its_own_nfkc_form_lower_cased() -> None:
    """The table's promise, code point by code point: normalise leaves it as its one lower-case
    code point, which is what the table maps it to."""
    table = overlap._fold_table()
    folded = _folded()
    assert len(folded) > 40_000  # Latin, Greek, Cyrillic, punctuation, CJK ...
    for character in folded:
        assert unicodedata.normalize("NFKC", character) == character
        assert overlap.normalise(character.encode()) == chr(table[ord(character)])
    for refused in "\u0301\u00b4\ufb01\u2163\u03a3\u0130\uac00\u1100\u0bbe\u2026":
        assert table[ord(refused)] == overlap._UNFOLDED, hex(ord(refused))


def test_texts_of_folded_code_points_are_left_alone_by_nfkc() -> None:
    """Nothing joins across two folded code points (é next to anything folded stays é): 300,000
    random pairs and triples, weighted towards those with decompositions."""
    rng = random.Random(11)
    folded = _folded()
    decomposed = [c for c in folded if unicodedata.decomposition(c)]
    for _ in range(100_000):
        a, b = rng.choice(decomposed), rng.choice(folded)
        c = rng.choice(folded)
        for text in (a + b, b + a, a + b + c):
            assert unicodedata.normalize("NFKC", text) == text
            assert text.lower() == "".join(ch.lower() for ch in text)


FOLDED_ALPHABET = "ab Zé ÉñØßÿ ΑΩως Дж \u2019\u201c\u201d\u2014\u2013 日本 ¿¡ 09 \t\n,."
UNFOLDED_ALPHABET = "\u0301ﬁ\u2163Σİ가…\U0001f600"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(alphabet=FOLDED_ALPHABET, max_size=60)
        | st.text(alphabet=FOLDED_ALPHABET + UNFOLDED_ALPHABET, max_size=60),
        max_size=10,
    )
)
def test_folded_documents_give_the_normalised_shingles(texts: list[str]) -> None:
    """The compiled code reads a document itself, or declines it; what it reads gives the
    shingles that normalise and the numpy code give."""
    assert overlap._native is not None
    documents = [t.encode() for t in texts]
    hashes, counts, others = overlap._native.folded_shingles(
        documents,
        overlap.MAX_SKETCH_BYTES,
        overlap._character_classes(),
        overlap._fold_table(),
        overlap._TOKEN_WEIGHTS,
        overlap._BASE,
    )
    got = np.frombuffer(hashes, dtype=np.uint64)
    sizes = np.frombuffer(counts, dtype=np.intp)
    position = 0
    for i, text in enumerate(texts):
        table = overlap._fold_table()
        readable = all(ord(c) < 0x10000 and table[ord(c)] != overlap._UNFOLDED for c in text)
        assert (i not in others) == readable
        if i in others:
            assert sizes[i] == 0
            continue
        expected = overlap.shingle_hashes(overlap.normalise(documents[i]))
        assert np.array_equal(got[position : position + sizes[i]], expected)
        position += sizes[i]
    assert position == len(got)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.text(alphabet=FOLDED_ALPHABET + UNFOLDED_ALPHABET, min_size=30, max_size=200),
        max_size=30,
    )
)
def test_mixed_documents_sketch_alike(texts: list[str]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        _sketch_alike([t.encode() for t in texts], patch)


@pytest.mark.parametrize(
    "document",
    [
        b"caf\xc3",  # a sequence cut at the end
        b"over long \xc0\xaf slash",
        b"over long \xe0\x80\xaf slash",
        b"surrogate \xed\xa0\x80 here",
        b"lone continuation \x80 byte",
        "beyond the plane \U0001f600".encode(),
        b"bad second byte \xc3\x28 here",
        b"bad third byte \xe2\x80\x28 here",
    ],
)
def test_text_that_is_not_plain_utf8_is_declined(document: bytes) -> None:
    """The compiled reader takes only well-formed UTF-8 of folded code points; anything else
    goes to normalise (which drops what is not UTF-8), so the sketch is the same either way."""
    assert overlap._native is not None
    _, others = overlap._native.folded_levels(
        [document, b"plain words"],
        overlap.MAX_SKETCH_BYTES,
        overlap._character_classes(),
        overlap._fold_table(),
        overlap._TOKEN_WEIGHTS,
        overlap._BASE,
        int(overlap._SAMPLE_SEED),
        int(overlap._LEVEL_SEED),
        overlap._LEVEL_MASK,
        overlap._LEVEL_OF_LOW_BITS,
    )
    assert others == [0]
    with pytest.MonkeyPatch.context() as patch:
        _sketch_alike([document * 4, b"plain words " * 8], patch)


def test_a_head_cut_inside_a_character_sketches_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """MAX_SKETCH_BYTES can fall inside a character: normalise drops the cut bytes, the compiled
    reader declines the document and leaves it to normalise."""
    monkeypatch.setattr(overlap, "MAX_SKETCH_BYTES", 41)
    documents = [("a" * 40 + "é and more words after the cut").encode(), ("ж" * 30).encode()]
    _sketch_alike(documents, monkeypatch)


def test_folded_levels_are_the_levels_of_the_shingles() -> None:
    """The one-pass levels (no shingles kept) are those of the shingles the other path keeps."""
    assert overlap._native is not None
    rng = random.Random(5)
    words = ["Café", "naïve", "Ωμέγα", "жук", "\u2019quoted\u2019", "plain", "WORDS", "日本語", "x"]
    documents = [
        " ".join(rng.choice(words) for _ in range(rng.randint(0, 40))).encode() for _ in range(500)
    ]
    levels = overlap._NativeLevels(documents).levels
    hashes, bounds = overlap._shingles([overlap.normalise(d) for d in documents])
    assert np.array_equal(levels, overlap._levels(hashes, bounds))
    assert (levels >= 0).sum() > 400
    try:
        overlap._native.use_vectors(False)
        assert np.array_equal(overlap._NativeLevels(documents).levels, levels)
    finally:
        overlap._native.use_vectors(True)


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


ASCII_PRINTABLE = "".join(chr(c) for c in range(32, 127)) + "\t\n\r"


def _ascii_compare(documents: list[bytes]) -> None:
    """folded_shingles and folded_levels (ASCII read a word at a time, from a bitmap) against
    normalise + the numpy code (a character at a time)."""
    assert overlap._native is not None
    tables = (overlap._character_classes(), overlap._fold_table(), overlap._TOKEN_WEIGHTS)
    hashes, counts, others = overlap._native.folded_shingles(
        documents, overlap.MAX_SKETCH_BYTES, *tables, overlap._BASE
    )
    assert others == []
    got = np.frombuffer(hashes, dtype=np.uint64)
    sizes = np.frombuffer(counts, dtype=np.intp)
    expected, bounds = overlap._shingles([overlap.normalise(d) for d in documents])
    assert np.array_equal(sizes, np.diff(bounds)) and np.array_equal(got, expected)
    levels = overlap._NativeLevels(documents).levels
    assert np.array_equal(levels, overlap._levels(expected, bounds))
    try:
        overlap._native.use_vectors(False)  # the levels word by word, as before the vectors
        scalar = overlap._NativeLevels(documents).levels
    finally:
        overlap._native.use_vectors(True)
    assert np.array_equal(scalar, levels)


def test_ascii_levels_of_every_length_around_the_vector_groups() -> None:
    """Texts of 0 to 60 words (the vector path takes 8 shingles at a time and masks the rest),
    each in many variants, so that the least shingle falls at every position of a group."""
    rng = random.Random(3)
    words = ["w" + str(i) for i in range(500)]
    documents = [
        " ".join(rng.choice(words) for _ in range(n)).encode() for n in range(61) for _ in range(40)
    ]
    _ascii_compare(documents)


def _levels_both_ways(documents: list[bytes]) -> None:
    """The compiled levels, with and without the vector path, are normalise + numpy's."""
    assert overlap._native is not None
    hashes, bounds = overlap._shingles([overlap.normalise(d) for d in documents])
    expected = overlap._levels(hashes, bounds)
    for vectors in (True, False):
        try:
            overlap._native.use_vectors(vectors)
            assert np.array_equal(overlap._NativeLevels(documents).levels, expected), vectors
        finally:
            overlap._native.use_vectors(True)


def test_folded_levels_of_every_length_around_the_vector_groups() -> None:
    """The same for text that is folded code point by code point (accents, Cyrillic, and
    Japanese, each character of which is a token), with and without the vector path."""
    assert overlap._native is not None
    rng = random.Random(4)
    words = ["café", "жук", "ωμέγα", "日本", "語の", "plain"]
    documents = [
        " ".join(rng.choice(words) for _ in range(n)).encode() for n in range(40) for _ in range(40)
    ]
    _levels_both_ways(documents)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(alphabet=ASCII_PRINTABLE, max_size=300)
        | st.lists(st.text(alphabet="aZ09", min_size=1, max_size=40), max_size=30).map(" ".join),
        max_size=12,
    )
)
def test_ascii_documents_read_by_words_give_the_character_values(texts: list[str]) -> None:
    _ascii_compare([t.encode() for t in texts])


def test_ascii_words_across_every_boundary_give_the_character_values() -> None:
    """Words of 1 to 40 letters and digits, mixed case, starting at each offset around the
    8-byte chunks and 64-bit bitmap words, and documents ending inside a word."""
    rng = random.Random(9)
    alphabet = "abcXYZ0189"
    documents = []
    for offset in range(0, 140):
        for length in (1, 7, 8, 9, 16, 17, 40):
            word = "".join(rng.choice(alphabet) for _ in range(length))
            documents.append(("." * offset + word + " tail words here now").encode())
            documents.append(("-" * offset + word).encode())  # ends inside the word
    documents += [b"", b" ", b"A", b"a b c d", b"one two three four five six", b"x" * 5000]
    _ascii_compare(documents)


def test_every_ascii_byte_is_a_word_character_or_not_alike() -> None:
    """Each of the 128 ASCII bytes inside a word, between words and at the ends (the vector
    path finds letters as (byte | 0x20) - 'a' <= 25, which the bytes around the letters,
    '@', '[', '`' and '{', must not pass), with words crossing a 64-byte bitmap block."""
    documents = []
    for c in range(128):
        ch = chr(c)
        documents.append(f"{ch}alpha{ch}Beta{ch}{ch}gamma9 delta{ch}".encode())
        documents.append(("q" * 60 + ch + "R" * 10 + ch + "s" * 70).encode())
    _ascii_compare(documents)


def test_mixed_text_read_by_runs_gives_the_normalised_levels() -> None:
    """Text with some non-ASCII characters is read by runs (letters, digits and non-ASCII bytes):
    the ASCII runs hashed 8 at a time, the others code point by code point. A non-ASCII
    character (accented, a dash that is no word character, a Japanese one that is a token of its
    own, a Cyrillic word) at every offset around the 64-byte bitmap words and the 8-byte
    gathers, runs crossing bitmap words, and texts ending just after it, with and without the
    vector path, against normalise + numpy."""
    assert overlap._native is not None
    rng = random.Random(11)
    words = ["alpha", "Beta", "g4mma", "delta", "epsilonzeta99", "x"]
    documents = []
    for inserted in ("é", "—", "日", "жук", "Ünïcödé", "a日b—c"):
        for offset in range(0, 140, 3):
            head = " ".join(rng.choice(words) for _ in range(30))[:offset]
            tail = " ".join(rng.choice(words) for _ in range(rng.randrange(0, 12)))
            documents.append((head + inserted + tail).encode())
            documents.append((head + " " + inserted).encode())
            documents.append((inserted + head).encode())
    _levels_both_ways(documents)
