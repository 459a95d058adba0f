"""Overlap sketches: what a version shares with other corpora, exactly and nearly.

Pure computing, no database (``catalog.overlap_index`` stores and queries the sketches);
``docs/overlap.md`` explains the method, the parameters and the costs. In short:

- **Exact overlap.** Every document of at least :data:`MIN_DOCUMENT_BYTES` bytes is known by
  its SHA-256. Shorter ones ("Thank you!", "}") are shared by unrelated corpora and are no one's
  property: they are counted but neither indexed nor matched.
- **Shingles.** A document's first :data:`MAX_SKETCH_BYTES` bytes, decoded, NFKC-normalised and
  lower-cased, are cut into tokens: runs of letters, marks and digits (Unicode categories L, M,
  N), except that each character of a script written without spaces (Han, kana, Thai, Lao,
  Khmer, Myanmar) is a token of its own. The shingles are the runs of :data:`SHINGLE_TOKENS`
  consecutive tokens (word 5-grams; character 5-grams in Chinese and Japanese); a document with
  fewer tokens has one shingle, all of them. Punctuation, case, spacing and Unicode
  compatibility forms therefore change nothing.
- **MinHash.** Each shingle gets a 64-bit hash; the signature holds, for each of
  :data:`PERMUTATIONS` hash functions ``h_i(x) = a_i * x + b_i mod 2^64``, the minimum over the
  shingles. Two documents agree in one position with probability ~ their Jaccard similarity.
- **LSH.** The signature is cut into :data:`BANDS` bands of :data:`ROWS` rows; each band is
  hashed to one signed 64-bit *band key*. Two documents of Jaccard similarity ``J`` share at least
  one key with probability ``1 - (1 - J^ROWS)^BANDS`` (:func:`collision_probability`): 0.5 at
  J = 0.51, 0.92 at 0.65, 0.996 at 0.8; 0.047 at 0.3 and 0.0002 at 0.1.
- **Sampling by content.** Only a sample of documents is sketched and indexed, chosen by content
  so that two near-duplicates are chosen together: a document's *level* is the number of
  trailing zero bits (at most :data:`MAX_SAMPLE_LEVEL`) of a hash of its minimum shingle under a
  separate hash function, so near-duplicates of Jaccard ``J`` have the same level with
  probability at least ``J``. A version keeps the documents of level >= its *sample level*: the
  smallest level leaving at most :data:`SAMPLE_TARGET` distinct documents, but no more than
  :data:`MAX_SAMPLE_LEVEL`. Small versions are sampled whole; large ones 1 document in 16.
  Levels nest, so two versions are compared on the documents of level >= the larger of their
  two sample levels.

:class:`FileSketch` is an ingest observer for one file (``ingest_file(..., observer=sketch)``):
it sees every document once, on the ingestion's single read. :meth:`VersionSketch.from_files`
combines the files of a version (in manifest order) into what is indexed and looked up.
:class:`OverlapReport` is the result of a lookup; :class:`OverlapPolicy` says when an overlap is
substantial.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import struct
import sys
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from catalog import native
from catalog.documents import Buffer
from catalog.errors import ManifestError
from catalog.manifest import is_version_id
from catalog.readers import Batch
from ledger.canonical import canonical_bytes, parse_json
from ledger.errors import FormatError

_native = native.load("_sketch")  # compiled inner loops, or None: see catalog.native

__all__ = [
    "BANDS",
    "MAX_SAMPLE_LEVEL",
    "MAX_SKETCH_BYTES",
    "MIN_DOCUMENT_BYTES",
    "PERMUTATIONS",
    "REPORT_FORMAT",
    "ROWS",
    "SAMPLE_TARGET",
    "SHINGLE_TOKENS",
    "SKETCH_SCHEME",
    "DocumentSketch",
    "FileSketch",
    "IndexedVersion",
    "OverlapPolicy",
    "OverlapReport",
    "VersionMatches",
    "VersionOverlap",
    "VersionSketch",
    "build_report",
    "collision_probability",
    "estimate_jaccard",
    "normalise",
    "shingle_hashes",
    "signature",
    "sketch_document",
]

SKETCH_SCHEME = "corpusx/overlap-sketch@v1"
"""Names every choice below; sketches of different schemes are not comparable."""
REPORT_FORMAT = "corpusx/overlap-report@v1"

MIN_DOCUMENT_BYTES = 32
MAX_SKETCH_BYTES = 1 << 20
SHINGLE_TOKENS = 5
BANDS = 20
ROWS = 5
PERMUTATIONS = BANDS * ROWS
SAMPLE_TARGET = 4096
MAX_SAMPLE_LEVEL = 4

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

# -- constants, derived from the scheme name so that every machine has the same ones -----------


def _constant(label: str, index: int = 0) -> int:
    digest = hashlib.blake2b(
        f"{SKETCH_SCHEME}/{label}/{index}".encode(), digest_size=8, person=b"corpusx-ovl"
    ).digest()
    return int.from_bytes(digest, "little")


def _constants(label: str, count: int, *, odd: bool = False) -> U64:
    return np.array([_constant(label, i) | int(odd) for i in range(count)], dtype=np.uint64)


_MASK64 = (1 << 64) - 1
_BASE = _constant("token-base") | 1
_TOKEN_WEIGHTS = _constants("shingle-weight", SHINGLE_TOKENS, odd=True)
_PERM_A = _constants("permutation-a", PERMUTATIONS, odd=True)
_PERM_B = _constants("permutation-b", PERMUTATIONS)
_ROW_WEIGHTS = _constants("row-weight", ROWS, odd=True)
_BAND_SALTS = _constants("band-salt", BANDS)
_SAMPLE_SEED = np.uint64(_constant("sample-seed"))
_LEVEL_SEED = np.uint64(_constant("level-seed"))
_FMIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_SHIFT = np.uint64(33)

_GROUP_CHARACTERS = 1 << 17
"""Texts are hashed in groups of about this many code points: the group's temporary arrays
(8 bytes per character) then stay in the processor's caches. A longer text is a group alone."""
_MAX_TEXT_CHARACTERS = 1 << 20
_SIGNATURE_ROWS = 4096
"""Shingles per step of the signature computation (a step's array is this x PERMUTATIONS)."""
_LEVEL_MASK = (1 << MAX_SAMPLE_LEVEL) - 1
_LEVEL_OF_LOW_BITS = np.array(
    [MAX_SAMPLE_LEVEL if v == 0 else (v & -v).bit_length() - 1 for v in range(_LEVEL_MASK + 1)],
    dtype=np.int8,
)

# Scripts written without spaces between words: each character is a token.
_UNSPACED_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3FFFF),  # CJK extensions B and later (planes 2 and 3)
)
_CLASS_LIMIT = 0x40000
"""Code points from here on (unassigned planes, tags, private use) are not word characters."""
_NOT_WORD, _SPACED, _UNSPACED = 0, 1, 2


def _fmix(x: U64) -> U64:
    """MurmurHash3's 64-bit finaliser: every input bit reaches every output bit.

    Works in place (``x`` is overwritten and returned): callers pass arrays they just made, and
    one scratch array instead of five temporaries halves the memory traffic."""
    shifted = np.right_shift(x, _SHIFT)
    x ^= shifted
    x *= _FMIX_1
    np.right_shift(x, _SHIFT, out=shifted)
    x ^= shifted
    x *= _FMIX_2
    np.right_shift(x, _SHIFT, out=shifted)
    x ^= shifted
    return x


@functools.cache
def _character_classes() -> npt.NDArray[np.uint8]:
    """Word class of every code point (those from _CLASS_LIMIT on are not word characters)."""
    classes = np.zeros(sys.maxunicode + 1, dtype=np.uint8)
    category = unicodedata.category
    for code in range(_CLASS_LIMIT):
        if category(chr(code))[0] in "LMN":
            classes[code] = _SPACED
    for low, high in _UNSPACED_RANGES:
        block = classes[low : high + 1]
        block[block == _SPACED] = _UNSPACED
    return classes


@functools.cache
def _powers() -> tuple[U64, U64]:
    """Powers of the token base and of its inverse mod 2^64, one per position in a group
    (a group holds at most one text beyond _GROUP_CHARACTERS, of at most 2^20 characters)."""
    count = _GROUP_CHARACTERS + _MAX_TEXT_CHARACTERS + 2
    up = np.full(count, _BASE, dtype=np.uint64)
    down = np.full(count, pow(_BASE, -1, 1 << 64), dtype=np.uint64)
    up[0] = down[0] = 1
    return np.cumprod(up, dtype=np.uint64), np.cumprod(down, dtype=np.uint64)


# -- one document ------------------------------------------------------------------------------


def normalise(document: Buffer) -> str:
    """The text that is shingled: the first MAX_SKETCH_BYTES bytes, NFKC, lower case, at most
    2^20 characters. A character cut at the end, or any byte that is not UTF-8, is dropped.
    """
    head = bytes(document[:MAX_SKETCH_BYTES])
    text = unicodedata.normalize("NFKC", head.decode("utf-8", "ignore")).lower()
    return text[:_MAX_TEXT_CHARACTERS]  # compatibility forms can expand 18-fold


def _normalised(document: Buffer) -> str | bytes:
    """:func:`normalise`, or for a document of ASCII only the same text as lower-case bytes:
    NFKC leaves ASCII as it is, so only the case changes, and the bytes go to numpy as they are.
    """
    head = bytes(document[:MAX_SKETCH_BYTES])
    return head.lower() if head.isascii() else normalise(head)


def shingle_hashes(text: str) -> U64:
    """The 64-bit hashes of a normalised text's shingles, in text order (not deduplicated)."""
    hashes, bounds = _shingles([text])
    return hashes[bounds[0] : bounds[1]]


def signature(text: str) -> U64 | None:
    """The MinHash signature (PERMUTATIONS values) of a normalised text; None without tokens."""
    hashes, bounds = _shingles([text])
    if bounds[1] == bounds[0]:
        return None
    (only,) = _signatures(hashes, bounds, np.array([0]))
    result: U64 = only
    return result


def estimate_jaccard(a: U64, b: U64) -> float:
    """The share of positions where two signatures agree: an estimate of Jaccard similarity."""
    return float(np.count_nonzero(a == b)) / len(a)


def collision_probability(jaccard: float, *, bands: int = BANDS, rows: int = ROWS) -> float:
    """Probability that two documents of this Jaccard similarity share a band key (S-curve)."""
    return 1.0 - (1.0 - jaccard**rows) ** bands


@dataclass(frozen=True, slots=True)
class DocumentSketch:
    """One document, as the overlap index sees it. ``level`` is -1 without tokens (no keys)."""

    sha256: bytes
    level: int
    band_keys: tuple[int, ...]


def sketch_document(document: Buffer) -> DocumentSketch:
    """The sketch of one document, whatever its level (for tests and inspection)."""
    sha256 = hashlib.sha256(document).digest()
    if len(document) < MIN_DOCUMENT_BYTES:
        return DocumentSketch(sha256, -1, ())
    hashes, bounds = _shingles([normalise(document)])
    (level,) = _levels(hashes, bounds).tolist()
    if level < 0:
        return DocumentSketch(sha256, -1, ())
    (keys,) = _band_keys(_signatures(hashes, bounds, np.array([0]))).tolist()
    return DocumentSketch(sha256, level, tuple(keys))


# -- many documents at once (the hot path: one numpy pass per group of texts) ------------------


def _shingles(texts: Sequence[str | bytes]) -> tuple[U64, npt.NDArray[np.intp]]:
    """Shingle hashes of all texts, concatenated, and ``bounds``: text i has
    ``hashes[bounds[i]:bounds[i + 1]]``. A text given as bytes is normalised ASCII (see
    :func:`_normalised`); put those together, they are hashed a byte per character."""
    parts: list[U64] = []
    counts: list[npt.NDArray[np.intp]] = []
    for group in _groups(texts):
        hashes, per_text = _group_shingles(group)
        parts.append(hashes)
        counts.append(per_text)
    bounds = np.zeros(len(texts) + 1, dtype=np.intp)
    if texts:
        np.cumsum(np.concatenate(counts), out=bounds[1:])
    joined = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
    return joined, bounds


def _groups(texts: Sequence[str | bytes]) -> Iterable[Sequence[str | bytes]]:
    start, size = 0, 0
    kind: type = str
    for i, text in enumerate(texts):
        if size and (size + len(text) + 1 > _GROUP_CHARACTERS or type(text) is not kind):
            yield texts[start:i]
            start, size = i, 0
        kind = type(text)
        size += len(text) + 1
    if start < len(texts) or not texts:
        yield texts[start:]


def _group_shingles(texts: Sequence[str | bytes]) -> tuple[U64, npt.NDArray[np.intp]]:
    """Shingle hashes of a few texts joined by a non-word separator, and the count per text."""
    codes: npt.NDArray[np.uint8] | npt.NDArray[np.uint32]
    if all(type(text) is bytes for text in texts):  # normalised ASCII: a byte per character
        codes = np.frombuffer(b"\x00".join(texts), dtype=np.uint8)  # type: ignore[arg-type]
    else:
        joined = "\x00".join(t if type(t) is str else t.decode("ascii") for t in texts)  # type: ignore[union-attr]
        if joined.isascii():
            codes = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
        else:
            codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    if not len(codes):
        return np.empty(0, dtype=np.uint64), np.zeros(len(texts), dtype=np.intp)
    if _native is not None:
        return _native_shingles(codes, texts)
    starts, ends = _token_spans(codes)
    tokens = _span_hashes(codes, starts, ends)
    lengths = np.fromiter((len(t) + 1 for t in texts), dtype=np.intp, count=len(texts))
    text_starts = np.cumsum(lengths) - lengths
    owner = np.searchsorted(text_starts, starts, side="right") - 1
    return _combine(tokens, owner, len(texts))


def _native_shingles(
    codes: npt.NDArray[np.uint8] | npt.NDArray[np.uint32], texts: Sequence[str | bytes]
) -> tuple[U64, npt.NDArray[np.intp]]:
    """What the rest of _group_shingles computes, in one compiled pass (catalog/_sketch.c)."""
    assert _native is not None
    lengths = np.fromiter((len(t) for t in texts), dtype=np.intp, count=len(texts))
    out = np.empty(len(codes), dtype=np.uint64)  # at most one shingle per code point
    counts = np.empty(len(texts), dtype=np.intp)
    table = _character_classes()
    written = _native.shingles(
        codes, codes.itemsize, lengths, table, _TOKEN_WEIGHTS, _BASE, out, counts
    )
    return out[:written], counts


_UNFOLDED = 0xFFFFFFFF
_HANGUL = ((0x1100, 0x11FF), (0xA960, 0xA97F), (0xAC00, 0xD7FF))
"""Jamo compose algorithmically (not by decomposition mappings), syllables with trailing jamo."""


@functools.cache
def _fold_table() -> npt.NDArray[np.uint32]:
    """For each code point of the Basic Multilingual Plane, its lower-case form if NFKC leaves it
    as it is in every text made only of such code points, else _UNFOLDED.

    Such a code point is its own NFKC form, is not combining, and neither it nor the first code
    point of its canonical decomposition (é is e + U+0301) is the second half of a canonical
    composition. NFKC decomposes the text code point by code point, reorders only combining
    marks within one code point's decomposition, and recomposes each decomposition into its
    code point: nothing joins across two of them, since what follows is never a second half.
    Its lower case is one code point, and it is not Σ (whose lower case depends on its
    neighbours). For a text of such code points, :func:`normalise` is only lower-casing, one
    code point at a time: what the compiled sketch does (tests check every code point of the
    table against unicodedata, and texts of them against :func:`normalise`).
    """
    seconds: set[int] = set()
    for code in range(sys.maxunicode + 1):
        mapping = unicodedata.decomposition(chr(code))
        if mapping and not mapping.startswith("<"):
            parts = mapping.split()
            if len(parts) == 2:
                seconds.add(int(parts[1], 16))
    table = np.full(0x10000, _UNFOLDED, dtype=np.uint32)
    for code in range(0x10000):
        character = chr(code)
        if (
            0xD800 <= code < 0xE000
            or code == 0x03A3
            or any(low <= code <= high for low, high in _HANGUL)
            or unicodedata.normalize("NFKC", character) != character
        ):
            continue
        first = unicodedata.normalize("NFD", character)[0]
        if code in seconds or ord(first) in seconds or unicodedata.combining(first):
            continue
        lower = character.lower()
        if len(lower) == 1:
            table[code] = ord(lower)
    return table


def warm_tables() -> None:
    """Build the lookup tables that sketching every document needs (once per process; a
    process forked afterwards inherits them: catalog.derivation_preload)."""
    _character_classes()
    if _native is not None:
        _fold_table()


class _NativeLevels:
    """A batch's new documents levelled in compiled code, in one pass that keeps no shingles:
    those the compiled code reads itself (ASCII, or BMP text that NFKC leaves as it is), and the
    others normalised here. :meth:`shingles` then gives the shingles of the chosen few."""

    def __init__(self, documents: list[Buffer]) -> None:
        assert _native is not None
        self.documents = documents
        levels, others = _native.folded_levels(
            documents,
            MAX_SKETCH_BYTES,
            _character_classes(),
            _fold_table(),
            _TOKEN_WEIGHTS,
            _BASE,
            int(_SAMPLE_SEED),
            int(_LEVEL_SEED),
            _LEVEL_MASK,
            _LEVEL_OF_LOW_BITS,
        )
        self.levels = np.frombuffer(levels, dtype=np.int8).copy()
        self.others = np.array(others, dtype=np.intp)
        self.other_hashes, self.other_bounds = _shingles([normalise(documents[j]) for j in others])
        if others:
            self.levels[self.others] = _levels(self.other_hashes, self.other_bounds)

    def shingles(
        self, chosen: npt.NDArray[np.intp]
    ) -> tuple[npt.NDArray[np.intp], U64, npt.NDArray[np.intp]]:
        """The chosen documents reordered (those read in compiled code first), with their
        shingles and bounds in that order."""
        assert _native is not None
        other = np.isin(chosen, self.others)
        folded, normalised = chosen[~other], chosen[other]
        hashes, counts, declined = _native.folded_shingles(
            [self.documents[j] for j in folded.tolist()],
            MAX_SKETCH_BYTES,
            _character_classes(),
            _fold_table(),
            _TOKEN_WEIGHTS,
            _BASE,
        )
        assert not declined, "folded_levels read these documents"
        parts = [np.frombuffer(hashes, dtype=np.uint64)]
        sizes = [np.frombuffer(counts, dtype=np.intp)]
        for j in np.searchsorted(self.others, normalised).tolist():
            start, end = self.other_bounds[j], self.other_bounds[j + 1]
            parts.append(self.other_hashes[start:end])
            sizes.append(np.array([end - start], dtype=np.intp))
        bounds = np.zeros(len(chosen) + 1, dtype=np.intp)
        np.cumsum(np.concatenate(sizes), out=bounds[1:])
        return np.concatenate((folded, normalised)), np.concatenate(parts), bounds


def _token_spans(
    codes: npt.NDArray[np.uint8] | npt.NDArray[np.uint32],
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    table = _character_classes()
    # Bytes index a 256-entry table: it stays in the first-level cache.
    classes = (table[:256] if codes.dtype == np.uint8 else table)[codes]
    spaced = (classes == _SPACED).view(np.int8)
    edges = np.diff(spaced, prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    if codes.dtype == np.uint8:
        return starts, ends  # no unspaced script below U+0100
    unspaced = np.flatnonzero(classes == _UNSPACED)
    if len(unspaced):
        starts = np.concatenate((starts, unspaced))
        ends = np.concatenate((ends, unspaced + 1))
        order = np.argsort(starts, kind="stable")
        starts, ends = starts[order], ends[order]
    return starts, ends


def _span_hashes(
    codes: npt.NDArray[np.uint8] | npt.NDArray[np.uint32],
    starts: npt.NDArray[np.intp],
    ends: npt.NDArray[np.intp],
) -> U64:
    """Polynomial hash of each span, sum(c_i * B^(end-1-i)) mod 2^64, from one prefix sum."""
    up, down = _powers()
    prefix = np.zeros(len(codes) + 1, dtype=np.uint64)
    np.multiply(codes, down[: len(codes)], out=prefix[1:])
    np.cumsum(prefix[1:], out=prefix[1:])
    return (prefix[ends] - prefix[starts]) * up[ends - 1]


def _combine(
    tokens: U64, owner: npt.NDArray[np.intp], text_count: int
) -> tuple[U64, npt.NDArray[np.intp]]:
    """Shingles from token hashes: runs of SHINGLE_TOKENS within one text, or all of a short
    text's tokens; returns them grouped by text, and the count per text."""
    k = SHINGLE_TOKENS
    per_text = np.bincount(owner, minlength=text_count)
    windows = max(len(tokens) - k + 1, 0)
    combined = np.zeros(windows, dtype=np.uint64)
    for j in range(k if windows else 0):
        combined += tokens[j : j + windows] * _TOKEN_WEIGHTS[j]
    whole = owner[:windows] == owner[k - 1 : k - 1 + windows]
    hashes, hash_owner = combined[whole], owner[:windows][whole]
    short = np.flatnonzero((per_text > 0) & (per_text < k))
    if len(short):
        first = np.searchsorted(owner, short)
        extra = np.zeros(len(short), dtype=np.uint64)
        for j in range(k - 1):
            present = per_text[short] > j
            extra[present] += tokens[first[present] + j] * _TOKEN_WEIGHTS[j]
        hashes = np.concatenate((hashes, extra))
        hash_owner = np.concatenate((hash_owner, short))
        order = np.argsort(hash_owner, kind="stable")
        hashes, hash_owner = hashes[order], hash_owner[order]
    counts = np.bincount(hash_owner, minlength=text_count).astype(np.intp)
    return _fmix(hashes), counts


def _levels(hashes: U64, bounds: npt.NDArray[np.intp]) -> npt.NDArray[np.int8]:
    """Each text's sample level, from its minimum shingle under the sampling hash (-1: none)."""
    levels = np.full(len(bounds) - 1, -1, dtype=np.int8)
    if _native is not None:
        _native.levels(
            np.ascontiguousarray(hashes),
            np.ascontiguousarray(bounds, dtype=np.intp),
            int(_SAMPLE_SEED),
            int(_LEVEL_SEED),
            _LEVEL_MASK,
            _LEVEL_OF_LOW_BITS,
            levels,
        )
        return levels
    present = np.flatnonzero(bounds[1:] > bounds[:-1])
    if len(present):
        anchors = np.minimum.reduceat(_fmix(hashes ^ _SAMPLE_SEED), bounds[present])
        low = _fmix(anchors ^ _LEVEL_SEED) & np.uint64(_LEVEL_MASK)
        levels[present] = _LEVEL_OF_LOW_BITS[low.astype(np.intp)]
    return levels


def _signatures(hashes: U64, bounds: npt.NDArray[np.intp], chosen: npt.NDArray[np.intp]) -> U64:
    """MinHash signatures of the chosen texts, in steps of _SIGNATURE_ROWS shingles."""
    out = np.full((len(chosen), PERMUTATIONS), _MASK64, dtype=np.uint64)
    if not len(chosen):
        return out
    if _native is not None:
        _native.signatures(
            np.ascontiguousarray(hashes),
            np.ascontiguousarray(bounds, dtype=np.intp),
            np.ascontiguousarray(chosen, dtype=np.intp),
            _PERM_A,
            _PERM_B,
            out,
        )
        return out
    sizes = bounds[chosen + 1] - bounds[chosen]
    row_text = np.repeat(np.arange(len(chosen)), sizes)
    row_offset = np.arange(len(row_text)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    rows = hashes[np.repeat(bounds[chosen], sizes) + row_offset]
    for step in range(0, len(rows), _SIGNATURE_ROWS):
        values = rows[step : step + _SIGNATURE_ROWS, None] * _PERM_A + _PERM_B
        texts = row_text[step : step + _SIGNATURE_ROWS]
        firsts = np.flatnonzero(np.diff(texts, prepend=-1))
        partial = np.minimum.reduceat(values, firsts, axis=0)
        targets = texts[firsts]
        out[targets] = np.minimum(out[targets], partial)
    return out


def _band_keys(signatures: U64) -> I64:
    """One signed 64-bit key per band: fmix(sum of row * weight + band salt)."""
    bands = signatures.reshape(len(signatures), BANDS, ROWS)
    mixed = _fmix((bands * _ROW_WEIGHTS).sum(axis=2, dtype=np.uint64) + _BAND_SALTS)
    return mixed.view(np.int64)


# -- collecting a version ----------------------------------------------------------------------


@dataclass(slots=True)
class _Sample:
    record: int
    count: int
    level: int
    keys: bytes


class FileSketch:
    """Ingest observer for one file: hashes every document, sketches the sampled ones.

    Use as ``ingest_file(path, name=name, observer=FileSketch(name))``; pickles, so workers can
    return it. Memory: 33 bytes per record plus ~350 bytes per sampled document.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.records = 0
        self._hashes = bytearray()
        self._short = bytearray()
        self._sample_dict: dict[bytes, _Sample] = {}
        self._rows: npt.NDArray[np.void] | None = None  # the samples as loaded, until changed
        self._level = 0

    @property
    def _samples(self) -> dict[bytes, _Sample]:
        """The samples by document hash (made from the loaded rows on first use)."""
        if self._rows is not None:
            fields = zip(
                self._rows["record"].tolist(),
                self._rows["count"].tolist(),
                self._rows["level"].tolist(),
                self._rows["keys"].tolist(),
                strict=True,
            )
            samples = itertools.starmap(_Sample, fields)
            self._sample_dict = dict(zip(self._rows["digest"].tolist(), samples, strict=True))
            self._rows = None
        return self._sample_dict

    def _sample_rows(self) -> npt.NDArray[np.void]:
        """The samples as _SAMPLE_ROW rows, in the order they were added."""
        if self._rows is not None:
            return self._rows
        return np.array(
            [(d, s.record, s.count, s.level, s.keys) for d, s in self._sample_dict.items()],
            dtype=_SAMPLE_ROW,
        )

    @property
    def level(self) -> int:
        return self._level

    def __call__(self, batch: Batch, leaves: list[bytes]) -> None:
        del leaves  # they hash the document hashes; the index keeps the document hashes
        documents = batch.documents
        digests = batch.digests  # ingestion hashed each document already
        if digests is None:
            digests = [hashlib.sha256(d).digest() for d in documents]
        self._hashes += b"".join(digests)
        short = np.fromiter(map(len, documents), np.intp, len(documents)) < MIN_DOCUMENT_BYTES
        self._short += short.astype(np.uint8).tobytes()
        indexes = np.flatnonzero(~short).tolist()
        long = [digests[i] for i in indexes]
        # first occurrence in this batch of a new document, and the later occurrences' count
        candidates: dict[bytes, int] = dict(zip(long, indexes, strict=True))
        repeats: dict[bytes, int] = {}
        if len(candidates) == len(long):  # no document twice in the batch: sets do the rest
            for digest in candidates.keys() & self._samples.keys():
                self._samples[digest].count += 1
                del candidates[digest]
        else:
            candidates = {}
            for i, digest in zip(indexes, long, strict=True):
                sample = self._samples.get(digest)
                if sample is not None:
                    sample.count += 1
                elif digest in candidates:
                    repeats[digest] = repeats.get(digest, 1) + 1
                else:
                    candidates[digest] = i
        if candidates:
            self._add(batch.start, candidates, repeats, documents)
        self.records = batch.start + len(documents)

    def _add(
        self,
        start: int,
        candidates: dict[bytes, int],
        repeats: dict[bytes, int],
        documents: list[Buffer],
    ) -> None:
        """Level the new documents, settle the sample level, then sketch only those kept."""
        digests = list(candidates)
        if _native is not None:
            native = _NativeLevels([documents[i] for i in candidates.values()])
            levels = native.levels
        else:
            texts = [_normalised(documents[i]) for i in candidates.values()]
            # ASCII texts first, so that they are hashed together a byte per character.
            order = sorted(range(len(texts)), key=lambda j: type(texts[j]) is str)
            hashes, bounds = _shingles([texts[j] for j in order])
            levels = np.empty(len(texts), dtype=np.int8)
            levels[order] = _levels(hashes, bounds)
        self._level = _settle(self._samples, self._level, arriving=levels)
        chosen = np.flatnonzero(levels >= self._level)
        if _native is not None:
            rows, hashes, bounds = native.shingles(chosen)
            keys = _band_keys(_signatures(hashes, bounds, np.arange(len(rows))))
        else:
            rows = chosen
            position = np.empty(len(texts), dtype=np.intp)
            position[order] = np.arange(len(texts))
            keys = _band_keys(_signatures(hashes, bounds, position[chosen]))
        # In document order, whichever code computed the keys: the sketch's bytes are the same.
        for row in np.argsort(rows, kind="stable").tolist():
            index = int(rows[row])
            digest = digests[index]
            self._samples[digest] = _Sample(
                start + candidates[digest],
                repeats.get(digest, 1),
                int(levels[index]),
                keys[row].tobytes(),
            )

    def to_bytes(self) -> bytes:
        """The sketch without its name, to keep with the file's verified derivation (the
        exchange caches it per blob): :meth:`from_bytes` gives back an equal sketch."""
        samples = self._sample_rows()
        header = _SKETCH_HEADER.pack(_SKETCH_MAGIC, self.records, self._level, len(samples))
        return b"".join((header, self._hashes, self._short, samples.tobytes()))

    @classmethod
    def from_bytes(cls, data: bytes, *, name: str) -> FileSketch:
        """The sketch :meth:`to_bytes` gave, named ``name`` (ManifestError if it is not one)."""
        size = _SKETCH_HEADER.size
        try:
            magic, records, level, count = _SKETCH_HEADER.unpack_from(data)
        except struct.error:
            raise ManifestError("not a file sketch: too short") from None
        expected = size + records * (HASH_BYTES + 1) + count * _SAMPLE_ROW.itemsize
        if magic != _SKETCH_MAGIC or len(data) != expected or not 0 <= level <= MAX_SAMPLE_LEVEL:
            raise ManifestError("not a file sketch of this scheme")
        sketch = cls(name)
        sketch.records, sketch._level = records, level
        hashes_end = size + records * HASH_BYTES
        view = memoryview(data)
        sketch._hashes = bytearray(view[size:hashes_end])
        sketch._short = bytearray(view[hashes_end : hashes_end + records])
        sketch._rows = np.frombuffer(data, dtype=_SAMPLE_ROW, offset=hashes_end + records)
        return sketch


HASH_BYTES = 32
_SKETCH_MAGIC = SKETCH_SCHEME.encode().ljust(32, b"\x00")
_SKETCH_HEADER = struct.Struct("<32sQBI")
_SAMPLE_ROW = np.dtype(
    [
        ("digest", "V32"),
        ("record", "<i8"),
        ("count", "<i8"),
        ("level", "i1"),
        ("keys", f"V{BANDS * 8}"),
    ]
)


def _settle(
    samples: dict[bytes, _Sample], level: int, *, arriving: npt.NDArray[np.int8] | None = None
) -> int:
    """The sample level once ``arriving`` levels join ``samples``: the smallest (from ``level``
    up, at most MAX_SAMPLE_LEVEL) leaving at most SAMPLE_TARGET distinct documents. Samples
    below it are dropped. The result depends on the set of documents only, not on the order.
    """
    if level == MAX_SAMPLE_LEVEL:
        return level  # every sample is at it already
    present = np.array([s.level for s in samples.values()], dtype=np.int8)
    if arriving is not None:
        present = np.concatenate((present, arriving[arriving >= 0]))
    level = _sample_level(present, level)
    for digest in [d for d, s in samples.items() if s.level < level]:
        del samples[digest]
    return level


def _sample_level(levels: npt.NDArray[np.int8], level: int) -> int:
    """The smallest sample level from ``level`` up (at most MAX_SAMPLE_LEVEL) that leaves at
    most SAMPLE_TARGET of the distinct documents of these ``levels``."""
    per_level = np.bincount(levels, minlength=MAX_SAMPLE_LEVEL + 1)
    at_least = np.cumsum(per_level[::-1])[::-1]
    while level < MAX_SAMPLE_LEVEL and at_least[level] > SAMPLE_TARGET:
        level += 1
    return level


def _merged_samples(rows: npt.NDArray[np.void]) -> npt.NDArray[np.void]:
    """One row per document hash: the first row of each (its record, level and keys), with the
    counts of all its rows summed (the same document sampled in several files)."""
    if len(rows) == 0:
        return rows
    _, first, inverse = np.unique(rows["digest"], return_index=True, return_inverse=True)
    counts = np.zeros(len(first), dtype=np.int64)
    np.add.at(counts, inverse.reshape(-1), rows["count"])
    merged = rows[first]
    merged["count"] = counts
    return merged


class DocumentHashes(Sequence[bytes]):
    """Sorted 32-byte document hashes, kept as the one bytes object they are joined in: a
    version's million hashes cost one allocation instead of a million bytes objects (and
    ``joined`` is what the overlap index stores and looks up)."""

    __slots__ = ("joined",)

    def __init__(self, joined: bytes) -> None:
        if len(joined) % HASH_BYTES:
            raise ValueError(f"document hashes are {HASH_BYTES} bytes each")
        self.joined = joined

    def __len__(self) -> int:
        return len(self.joined) // HASH_BYTES

    def __getitem__(self, index: int) -> bytes:  # type: ignore[override]
        if not -len(self) <= index < len(self):
            raise IndexError("document hash index out of range")
        start = (index % len(self)) * HASH_BYTES
        return self.joined[start : start + HASH_BYTES]

    def __iter__(self) -> Iterator[bytes]:
        joined = self.joined
        return (joined[i : i + HASH_BYTES] for i in range(0, len(joined), HASH_BYTES))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DocumentHashes):
            return NotImplemented
        return self.joined == other.joined

    def __hash__(self) -> int:
        return hash(self.joined)

    def __repr__(self) -> str:
        return f"DocumentHashes({len(self)} hashes)"


@dataclass(frozen=True, eq=False)
class VersionSketch:
    """A version's documents as the overlap index sees them. Record numbers are version-wide:
    files in manifest (name) order, then records within each file.

    ``documents`` are the distinct indexed document hashes, sorted (bytewise), with the version-wide
    record of each one's first occurrence and its number of occurrences. The samples are the
    distinct documents of level >= ``sample_level``, in record order.
    """

    files: tuple[tuple[str, int], ...]
    records: int
    documents: DocumentHashes
    first_records: I64
    occurrences: I64
    sample_level: int
    sample_hashes: tuple[bytes, ...]
    sample_records: I64
    sample_occurrences: I64
    sample_levels: npt.NDArray[np.int8]
    sample_keys: I64
    scheme: str = field(default=SKETCH_SCHEME)

    @property
    def indexed_records(self) -> int:
        """Records long enough to be indexed (MIN_DOCUMENT_BYTES), duplicates included."""
        return int(self.occurrences.sum())

    def level_counts(self) -> tuple[int, ...]:
        """Distinct sampled documents per level, for levels 0 .. MAX_SAMPLE_LEVEL."""
        counts = np.bincount(self.sample_levels, minlength=MAX_SAMPLE_LEVEL + 1)
        return tuple(int(c) for c in counts)

    def locate(self, record: int) -> tuple[str, int]:
        """The file name and in-file index of a version-wide record number."""
        offset = 0
        for name, count in self.files:
            if record < offset + count:
                return name, record - offset
            offset += count
        raise IndexError(f"record {record} is beyond the version's {self.records} records")

    @classmethod
    def from_files(cls, files: Iterable[FileSketch]) -> VersionSketch:
        ordered = sorted(files, key=lambda f: f.name)
        hashes = b"".join(sketch._hashes for sketch in ordered)
        short = b"".join(sketch._short for sketch in ordered)
        parts = []
        level, offset = 0, 0
        for sketch in ordered:
            level = max(level, sketch.level)
            rows = sketch._sample_rows().copy()
            rows["record"] += offset  # version-wide
            parts.append(rows)
            offset += sketch.records
        samples = _merged_samples(np.concatenate(parts) if parts else np.empty(0, _SAMPLE_ROW))
        samples = samples[samples["level"] >= level]
        if level < MAX_SAMPLE_LEVEL:
            level = _sample_level(samples["level"], level)
            samples = samples[samples["level"] >= level]
        return cls._build(ordered, offset, hashes, short, samples, level)

    @classmethod
    def _build(
        cls,
        files: Sequence[FileSketch],
        records: int,
        hashes: bytes,
        short: bytes,
        samples: npt.NDArray[np.void],
        level: int,
    ) -> VersionSketch:
        all_hashes = np.frombuffer(hashes, dtype="V32")
        long = np.flatnonzero(np.frombuffer(short, dtype=np.uint8) == 0)
        indexed = all_hashes if len(long) == len(all_hashes) else all_hashes[long]
        unique, first, counts = _unique_hashes(indexed)
        ordered = samples[np.argsort(samples["record"], kind="stable")]
        keys = np.frombuffer(ordered["keys"].tobytes(), dtype=np.int64)
        return cls(
            files=tuple((f.name, f.records) for f in files),
            records=records,
            documents=DocumentHashes(unique.tobytes()),
            first_records=long[first].astype(np.int64),
            occurrences=counts.astype(np.int64),
            sample_level=level,
            sample_hashes=tuple(ordered["digest"].tolist()),
            sample_records=ordered["record"].astype(np.int64),
            sample_occurrences=ordered["count"].astype(np.int64),
            sample_levels=ordered["level"].astype(np.int8),
            sample_keys=keys.reshape(len(ordered), BANDS),
        )


def _unique_hashes(
    hashes: npt.NDArray[np.void],
) -> tuple[npt.NDArray[np.void], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """``np.unique(hashes, return_index=True, return_counts=True)`` of 32-byte hashes, sorted by
    their first 8 bytes as an unsigned integer (the same order: big-endian): ~5x faster than
    numpy's sort of 32-byte values. Two different hashes that share 8 bytes (about one pair in
    10^7 among 10^6 hashes) make it sort them whole instead."""
    if len(hashes) == 0:
        return np.unique(hashes, return_index=True, return_counts=True)
    # Each hash's first 8 bytes, read in place (a strided view, no copy of the hashes).
    hashes = np.ascontiguousarray(hashes)
    first8 = np.ndarray((len(hashes),), dtype=">u8", buffer=hashes.data, strides=(32,))
    prefix = first8.astype(np.uint64)
    # Not a stable sort (~3.5x faster): a run's first occurrence is its least index, below.
    order = np.argsort(prefix)
    ordered, sorted_prefix = hashes[order], prefix[order]
    # A hash starts a run where it differs from the one before: where the prefixes differ, and,
    # among the few neighbours with equal prefixes (copies, mostly), where the whole hashes do
    # (comparing 32-byte values costs several times more than comparing 64-bit integers).
    changed = sorted_prefix[1:] != sorted_prefix[:-1]
    same = np.flatnonzero(~changed)
    changed[same] = ordered[same + 1] != ordered[same]
    starts = np.flatnonzero(np.concatenate(([True], changed)))
    distinct = sorted_prefix[starts]
    if len(distinct) > 1 and not np.all(distinct[1:] > distinct[:-1]):
        return np.unique(hashes, return_index=True, return_counts=True)
    if len(starts) == len(ordered):  # no hash twice (the usual case): nothing to reduce
        return ordered, order, np.ones(len(ordered), dtype=np.intp)
    counts = np.diff(np.append(starts, len(ordered)))
    return ordered[starts], np.minimum.reduceat(order, starts), counts


# -- reports -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OverlapPolicy:
    """When an overlap with another provider's version is *substantial*.

    Any one of these: at least ``exact_fraction`` of the new version's indexed records, or of
    the other version's indexed documents, are exactly shared; or at least ``near_fraction`` of
    the new version's compared sample, or of the other version's, has a near-duplicate in the
    other. A near-duplicate fraction counts only when its sample has ``min_near_sample``
    documents or is complete (both versions sampled whole, level 0).
    """

    exact_fraction: float = 0.10
    near_fraction: float = 0.30
    min_near_sample: int = 20

    def __post_init__(self) -> None:
        for name in ("exact_fraction", "near_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ManifestError(f"policy {name} must be a number")
            if not 0 < value <= 1:
                raise ManifestError(f"policy {name} must be in (0, 1], not {value}")
        _count(self.min_near_sample, "policy min_near_sample")

    def reasons(self, overlap: VersionOverlap) -> tuple[str, ...]:
        """Why ``overlap`` is substantial (empty: it is not)."""
        found: list[str] = []
        if overlap.exact_fraction >= self.exact_fraction:
            found.append(
                f"{overlap.exact_fraction:.1%} of the new version's records are exact copies"
            )
        if overlap.exact_fraction_of_other >= self.exact_fraction:
            found.append(
                f"{overlap.exact_fraction_of_other:.1%} of the other version's documents are "
                "copied exactly"
            )
        trusted = overlap.compared_level == 0 or overlap.near_sample >= self.min_near_sample
        if trusted and overlap.near_fraction >= self.near_fraction:
            found.append(
                f"~{overlap.near_fraction:.1%} of the new version's records have a "
                f"near-duplicate there (sample of {overlap.near_sample})"
            )
        trusted = overlap.compared_level == 0 or overlap.other_sample >= self.min_near_sample
        if trusted and overlap.near_fraction_of_other >= self.near_fraction:
            found.append(
                f"~{overlap.near_fraction_of_other:.1%} of the other version's documents have a "
                f"near-duplicate here (sample of {overlap.other_sample})"
            )
        return tuple(found)

    def to_json(self) -> dict[str, Any]:
        return {
            "exact_fraction": self.exact_fraction,
            "near_fraction": self.near_fraction,
            "min_near_sample": self.min_near_sample,
        }

    @classmethod
    def from_json(cls, value: object) -> OverlapPolicy:
        data = _object(value, ("exact_fraction", "near_fraction", "min_near_sample"), "policy")
        return cls(data["exact_fraction"], data["near_fraction"], data["min_near_sample"])


@dataclass(frozen=True, slots=True)
class IndexedVersion:
    """What the index knows of another version (and names it by)."""

    version: str
    provider: str
    dataset: str
    label: str
    documents: int
    sample_level: int
    level_counts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class VersionMatches:
    """What a lookup found in one other version: positions in ``VersionSketch.documents`` that
    it holds too, and (sample position, its record) pairs of band-key collisions."""

    exact: Sequence[int] = ()
    near: Sequence[tuple[int, int]] = ()


EXAMPLES = 3


@dataclass(frozen=True, slots=True)
class VersionOverlap:
    """How much the new version shares with one other version, and the verdict.

    Fractions of the new version count records (duplicates included), fractions of the other
    count its distinct documents. ``near_*`` compare the two samples at ``compared_level``.
    Examples are version-wide record numbers: ``(record, document sha256)`` for exact copies,
    ``(record here, record there)`` for near-duplicates.
    """

    version: str
    provider: str
    dataset: str
    label: str
    exact_documents: int
    exact_records: int
    exact_fraction: float
    exact_fraction_of_other: float
    compared_level: int
    near_sample: int
    near_records: int
    near_fraction: float
    other_sample: int
    other_matched: int
    near_fraction_of_other: float
    exact_examples: tuple[tuple[int, str], ...]
    near_examples: tuple[tuple[int, int], ...]
    reasons: tuple[str, ...]

    @property
    def substantial(self) -> bool:
        return bool(self.reasons)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "provider": self.provider,
            "dataset": self.dataset,
            "label": self.label,
            "exact": {
                "documents": self.exact_documents,
                "records": self.exact_records,
                "fraction": self.exact_fraction,
                "fraction_of_other": self.exact_fraction_of_other,
                "examples": [[r, h] for r, h in self.exact_examples],
            },
            "near": {
                "level": self.compared_level,
                "sample": self.near_sample,
                "records": self.near_records,
                "fraction": self.near_fraction,
                "other_sample": self.other_sample,
                "other_matched": self.other_matched,
                "fraction_of_other": self.near_fraction_of_other,
                "examples": [[r, o] for r, o in self.near_examples],
            },
            "substantial": self.substantial,
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_json(cls, value: object) -> VersionOverlap:
        keys = ("version", "provider", "dataset", "label", "exact", "near", "substantial")
        data = _object(value, (*keys, "reasons"), "overlap")
        exact = _object(
            data["exact"],
            ("documents", "records", "fraction", "fraction_of_other", "examples"),
            "exact",
        )
        near = _object(
            data["near"],
            (
                "level",
                "sample",
                "records",
                "fraction",
                "other_sample",
                "other_matched",
                "fraction_of_other",
                "examples",
            ),
            "near",
        )
        if not is_version_id(data["version"]):
            raise ManifestError(f"overlap version is not a version id: {data['version']!r}")
        reasons = _strings(data["reasons"], "reasons")
        if data["substantial"] is not bool(reasons):
            raise ManifestError("an overlap is substantial exactly when it has reasons")
        return cls(
            version=data["version"],
            provider=_string(data["provider"], "provider"),
            dataset=_string(data["dataset"], "dataset"),
            label=_string(data["label"], "label"),
            exact_documents=_count(exact["documents"], "exact documents"),
            exact_records=_count(exact["records"], "exact records"),
            exact_fraction=_fraction(exact["fraction"], "exact fraction"),
            exact_fraction_of_other=_fraction(exact["fraction_of_other"], "exact fraction"),
            exact_examples=tuple(
                (_count(r, "record"), _hex(h)) for r, h in _pairs(exact["examples"])
            ),
            compared_level=_count(near["level"], "near level"),
            near_sample=_count(near["sample"], "near sample"),
            near_records=_count(near["records"], "near records"),
            near_fraction=_fraction(near["fraction"], "near fraction"),
            other_sample=_count(near["other_sample"], "near other_sample"),
            other_matched=_count(near["other_matched"], "near other_matched"),
            near_fraction_of_other=_fraction(near["fraction_of_other"], "near fraction"),
            near_examples=tuple(
                (_count(r, "record"), _count(o, "record")) for r, o in _pairs(near["examples"])
            ),
            reasons=reasons,
        )


@dataclass(frozen=True, slots=True)
class OverlapReport:
    """A new version against the index: its counts, the policy, one entry per other version
    that shares anything (substantial ones first, then by the largest fraction)."""

    records: int
    indexed_records: int
    documents: int
    sample_level: int
    sampled: int
    policy: OverlapPolicy
    overlaps: tuple[VersionOverlap, ...]
    scheme: str = SKETCH_SCHEME

    @property
    def substantial(self) -> tuple[VersionOverlap, ...]:
        return tuple(o for o in self.overlaps if o.substantial)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "scheme": self.scheme,
            "records": self.records,
            "indexed_records": self.indexed_records,
            "documents": self.documents,
            "sample_level": self.sample_level,
            "sampled": self.sampled,
            "policy": self.policy.to_json(),
            "overlaps": [o.to_json() for o in self.overlaps],
        }

    def to_bytes(self) -> bytes:
        """Canonical (RFC 8785) JSON bytes."""
        return canonical_bytes(self.to_json())

    @classmethod
    def from_json(cls, value: object) -> OverlapReport:
        keys = ("format", "scheme", "records", "indexed_records", "documents", "sample_level")
        data = _object(value, (*keys, "sampled", "policy", "overlaps"), "overlap report")
        if data["format"] != REPORT_FORMAT:
            raise ManifestError(f"report format must be {REPORT_FORMAT!r}: {data['format']!r}")
        if not isinstance(data["overlaps"], list):
            raise ManifestError("overlaps must be a list")
        return cls(
            records=_count(data["records"], "records"),
            indexed_records=_count(data["indexed_records"], "indexed_records"),
            documents=_count(data["documents"], "documents"),
            sample_level=_count(data["sample_level"], "sample_level"),
            sampled=_count(data["sampled"], "sampled"),
            policy=OverlapPolicy.from_json(data["policy"]),
            overlaps=tuple(VersionOverlap.from_json(o) for o in data["overlaps"]),
            scheme=_string(data["scheme"], "scheme"),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> OverlapReport:
        try:
            return cls.from_json(parse_json(data, what="overlap report"))
        except FormatError as exc:
            raise ManifestError(str(exc)) from None


def build_report(
    sketch: VersionSketch,
    matches: Mapping[str, VersionMatches],
    versions: Mapping[str, IndexedVersion],
    *,
    policy: OverlapPolicy,
) -> OverlapReport:
    """The report for ``sketch`` given what a lookup found, by other version id."""
    overlaps = [
        _overlap(sketch, versions[version], found, policy) for version, found in matches.items()
    ]
    overlaps.sort(
        key=lambda o: (
            not o.substantial,
            -max(
                o.exact_fraction,
                o.exact_fraction_of_other,
                o.near_fraction,
                o.near_fraction_of_other,
            ),
            o.version,
        )
    )
    return OverlapReport(
        records=sketch.records,
        indexed_records=sketch.indexed_records,
        documents=len(sketch.documents),
        sample_level=sketch.sample_level,
        sampled=len(sketch.sample_hashes),
        policy=policy,
        overlaps=tuple(overlaps),
        scheme=sketch.scheme,
    )


def _overlap(
    sketch: VersionSketch, other: IndexedVersion, found: VersionMatches, policy: OverlapPolicy
) -> VersionOverlap:
    exact = np.unique(np.asarray(found.exact, dtype=np.intp))
    exact_records = int(sketch.occurrences[exact].sum())
    by_record = exact[np.argsort(sketch.first_records[exact], kind="stable")][:EXAMPLES]
    level = max(sketch.sample_level, other.sample_level)
    compared = sketch.sample_levels >= level
    near_pairs = sorted({(s, r) for s, r in found.near if compared[s]})
    hit = np.unique(np.array([s for s, _ in near_pairs], dtype=np.intp))
    near_sample = int(sketch.sample_occurrences[compared].sum())
    near_records = int(sketch.sample_occurrences[hit].sum())
    other_sample = sum(other.level_counts[level:])
    other_matched = len({r for _, r in near_pairs})
    overlap = VersionOverlap(
        version=other.version,
        provider=other.provider,
        dataset=other.dataset,
        label=other.label,
        exact_documents=len(exact),
        exact_records=exact_records,
        exact_fraction=_ratio(exact_records, sketch.indexed_records),
        exact_fraction_of_other=_ratio(len(exact), other.documents),
        exact_examples=tuple(
            (int(sketch.first_records[i]), sketch.documents[i].hex()) for i in by_record
        ),
        compared_level=level,
        near_sample=near_sample,
        near_records=near_records,
        near_fraction=_ratio(near_records, near_sample),
        other_sample=other_sample,
        other_matched=other_matched,
        near_fraction_of_other=_ratio(other_matched, other_sample),
        near_examples=tuple(
            (int(sketch.sample_records[s]), r)
            for s, r in sorted(near_pairs, key=lambda p: (int(sketch.sample_records[p[0]]), p[1]))
        )[:EXAMPLES],
        reasons=(),
    )
    return replace(overlap, reasons=policy.reasons(overlap))


def _ratio(part: int, whole: int) -> float:
    """part / whole, at most 1 (the other side's matches may include records of lower levels),
    rounded to 6 digits so that reports compare equal after a JSON round trip."""
    return round(min(1.0, part / whole), 6) if whole else 0.0


# -- strict JSON shapes ------------------------------------------------------------------------


def _object(value: object, keys: Sequence[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != set(keys):
        found = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise ManifestError(f"{what} must have exactly the fields {sorted(keys)}: {found}")
    return value


def _count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ManifestError(f"{what} must be a non-negative integer")
    return value


def _fraction(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ManifestError(f"{what} must be a number in [0, 1]")
    if isinstance(value, float) and math.isnan(value):
        raise ManifestError(f"{what} must be a number in [0, 1]")
    return float(value)


def _string(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ManifestError(f"{what} must be a string")
    return value


def _strings(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f"{what} must be a list of strings")
    return tuple(value)


def _pairs(value: object) -> list[tuple[object, object]]:
    if not isinstance(value, list) or len(value) > EXAMPLES:
        raise ManifestError(f"examples must be a list of at most {EXAMPLES} pairs")
    pairs: list[tuple[object, object]] = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise ManifestError("an example is a pair")
        pairs.append((item[0], item[1]))
    return pairs


def _hex(value: object) -> str:
    if not isinstance(value, str) or len(value) != 64 or value != value.lower():
        raise ManifestError("a document sha256 is 64 lowercase hex digits")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise ManifestError("a document sha256 is 64 lowercase hex digits") from None
    return value
