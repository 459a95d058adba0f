"""Overlap sketches: shingles, MinHash, LSH, content sampling, the collector, the report policy."""

from __future__ import annotations

import hashlib
import pickle
import random
from pathlib import Path

import numpy as np
import pytest

from catalog import overlap
from catalog.documents import Buffer
from catalog.errors import ManifestError
from catalog.ingest import ingest_file
from catalog.overlap import (
    BANDS,
    MAX_SAMPLE_LEVEL,
    MIN_DOCUMENT_BYTES,
    PERMUTATIONS,
    FileSketch,
    IndexedVersion,
    OverlapPolicy,
    OverlapReport,
    VersionMatches,
    VersionSketch,
    build_report,
    collision_probability,
    estimate_jaccard,
    normalise,
    shingle_hashes,
    signature,
    sketch_document,
)
from catalog.readers import Batch
from tests.unit.catalog.corpora import write_jsonl

_RNG = random.Random(20261129)
VOCABULARY = [
    "".join(_RNG.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(_RNG.randint(2, 10)))
    for _ in range(5000)
]
VERSION_A = "sha256:" + "a" * 64
VERSION_B = "sha256:" + "b" * 64


def article(rng: random.Random, words: int = 150) -> str:
    return " ".join(rng.choice(VOCABULARY) for _ in range(words)) + "."


def edited(text: str, rng: random.Random, edits: int) -> str:
    """The same text with ``edits`` words replaced by others."""
    words = text.split(" ")
    for position in rng.sample(range(len(words)), edits):
        words[position] = rng.choice(VOCABULARY)
    return " ".join(words)


def jaccard(a: str, b: str) -> float:
    x = set(shingle_hashes(normalise(a.encode())).tolist())
    y = set(shingle_hashes(normalise(b.encode())).tolist())
    return len(x & y) / len(x | y)


def keys(text: str) -> set[int]:
    return set(sketch_document(text.encode()).band_keys)


# -- shingles ----------------------------------------------------------------------------------


def test_normalisation_ignores_case_punctuation_spacing_and_compatibility_forms() -> None:
    variants = [
        "The quick brown fox jumps over the lazy dog",
        "the QUICK brown fox -- jumps, over the lazy dog!!",
        "  The\tquick\nbrown   fox jumps over the lazy dog.  ",
        "Ｔｈｅ ｑｕｉｃｋ brown fox jumps over the lazy dog",  # noqa: RUF001 - full-width on purpose
    ]
    hashes = [shingle_hashes(normalise(v.encode())).tolist() for v in variants]
    assert len(hashes[0]) == 9 - 5 + 1
    assert all(h == hashes[0] for h in hashes)
    assert (
        shingle_hashes(normalise(b"The quick brown fox jumps over the lazy cat")).tolist()
        != (hashes[0])
    )


def test_word_order_matters_and_tokens_do_not_run_together() -> None:
    a = shingle_hashes("one two three four five")
    assert shingle_hashes("five four three two one").tolist() != a.tolist()
    assert shingle_hashes("onetwo three four five six").tolist() != a.tolist()


def test_unspaced_scripts_are_shingled_by_character() -> None:
    chinese = normalise("敏捷的棕色狐狸跳过了懒狗。".encode())
    assert len(shingle_hashes(chinese)) == 12 - 5 + 1
    japanese = normalise("素早い茶色の狐がのろまな犬を飛び越えた".encode())
    assert len(shingle_hashes(japanese)) == 19 - 5 + 1
    # A spaced script with combining marks keeps its words whole.
    hindi = normalise("यह एक छोटा सा वाक्य है जो हिन्दी में है".encode())
    assert len(shingle_hashes(hindi)) == 10 - 5 + 1


def test_short_texts_have_one_shingle_and_empty_ones_none() -> None:
    assert len(shingle_hashes("")) == 0
    assert len(shingle_hashes("!!! ... ???")) == 0
    for text in ("one", "one two", "one two three four"):
        assert len(shingle_hashes(text)) == 1
    assert shingle_hashes("one two").tolist() != shingle_hashes("two one").tolist()
    assert signature("") is None


def test_many_texts_hash_as_each_alone_whatever_the_grouping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(1)
    texts = [article(rng, rng.randint(0, 40)) for _ in range(60)] + ["", "a b", "敏捷的棕色狐狸跳"]
    alone = [shingle_hashes(t).tolist() for t in texts]
    monkeypatch.setattr(overlap, "_GROUP_CHARACTERS", 300)
    hashes, bounds = overlap._shingles(texts)
    assert [hashes[bounds[i] : bounds[i + 1]].tolist() for i in range(len(texts))] == alone


def test_ascii_documents_hash_as_bytes_exactly_as_their_normalised_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast path (ASCII bytes, lower-cased, a byte per character) is the same function."""
    rng = random.Random(11)
    documents = [article(rng, rng.randint(0, 60)).encode() for _ in range(80)]
    documents += [b"MiXeD CaSe, Punct-uation!! and\ttabs", b"", b"a b", "Café au lait".encode()]
    documents += ["敏捷的棕色狐狸跳 over the DOG".encode(), "ﬁne ligature".encode()]
    rng.shuffle(documents)
    fast = [overlap._normalised(d) for d in documents]
    assert {type(t) for t in fast} == {bytes, str}  # both paths are exercised
    assert [t.decode() if isinstance(t, bytes) else t for t in fast] == [
        normalise(d) for d in documents
    ]
    slow = [normalise(d) for d in documents]
    for group in (overlap._GROUP_CHARACTERS, 200):
        monkeypatch.setattr(overlap, "_GROUP_CHARACTERS", group)
        hashes, bounds = overlap._shingles(fast)
        expected, expected_bounds = overlap._shingles(slow)
        assert bounds.tolist() == expected_bounds.tolist()
        assert hashes.tolist() == expected.tolist()


def test_file_sketches_round_trip_through_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overlap, "SAMPLE_TARGET", 30)
    rng = random.Random(12)
    documents = [article(rng, 30).encode() for _ in range(200)] + [b"short", b""]
    original = feed("a.txt", documents, 17)
    data = original.to_bytes()
    again = FileSketch.from_bytes(data, name="b.txt")
    assert again.name == "b.txt" and again.records == original.records
    assert again.to_bytes() == data
    one, two = VersionSketch.from_files([original]), VersionSketch.from_files([again])
    assert one.documents == two.documents and one.sample_level == two.sample_level > 0
    assert one.sample_hashes == two.sample_hashes
    assert one.sample_keys.tolist() == two.sample_keys.tolist()
    assert one.sample_occurrences.tolist() == two.sample_occurrences.tolist()
    for broken in (data[:-1], data + b"\x00", b"", b"x" * len(data)):
        with pytest.raises(ManifestError):
            FileSketch.from_bytes(broken, name="a.txt")


def test_a_loaded_file_sketch_goes_on_like_the_original(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sketch read back from bytes keeps its samples as rows until something needs them by
    hash: fed more documents (some repeating earlier ones), it ends as the original does, and
    merging loaded sketches gives the version the fresh ones give."""
    monkeypatch.setattr(overlap, "SAMPLE_TARGET", 30)
    rng = random.Random(5)
    first = [article(rng, 30).encode() for _ in range(150)]
    more = [article(rng, 30).encode() for _ in range(120)] + first[:40]
    original = feed("a.txt", first, 13)
    loaded = FileSketch.from_bytes(original.to_bytes(), name="a.txt")
    for sketch in (original, loaded):
        sketch(Batch(len(first), list(more), 0, 0), [])
    assert loaded.to_bytes() == original.to_bytes()
    other = feed("b.txt", more[100:] + first[:20], 9)
    fresh = VersionSketch.from_files([original, other])
    again = VersionSketch.from_files(
        [FileSketch.from_bytes(s.to_bytes(), name=s.name) for s in (other, original)]
    )
    assert again.documents == fresh.documents
    assert again.first_records.tolist() == fresh.first_records.tolist()
    assert again.sample_level == fresh.sample_level > 0
    assert again.sample_hashes == fresh.sample_hashes
    assert again.sample_records.tolist() == fresh.sample_records.tolist()
    assert again.sample_occurrences.tolist() == fresh.sample_occurrences.tolist()
    assert again.sample_keys.tolist() == fresh.sample_keys.tolist()


def test_sketches_are_pinned() -> None:
    """The index keeps sketches for years: any change here is a new SKETCH_SCHEME."""
    text = "The quick brown fox jumps over the lazy dog, and that is the end of it."
    sketch = sketch_document(text.encode())
    assert sketch.sha256 == hashlib.sha256(text.encode()).digest()
    assert len(sketch.band_keys) == BANDS
    assert sketch.level == 0
    assert sketch.band_keys[:3] == PINNED_KEYS
    assert int(shingle_hashes(normalise(text.encode()))[0]) == PINNED_SHINGLE


PINNED_KEYS = (5456195493509947538, -5140460910181372003, -1765874022363770983)
PINNED_SHINGLE = 2620227520719840060


# -- MinHash and LSH ---------------------------------------------------------------------------


def test_signature_agreement_estimates_jaccard() -> None:
    rng = random.Random(2)
    errors = []
    for _ in range(60):
        a = article(rng, 200)
        b = edited(a, rng, rng.randint(0, 60))
        sa, sb = signature(normalise(a.encode())), signature(normalise(b.encode()))
        assert sa is not None and sb is not None and len(sa) == PERMUTATIONS
        errors.append(estimate_jaccard(sa, sb) - jaccard(a, b))
    # 100 permutations: standard error <= 0.05 per pair; the mean error is far smaller.
    assert abs(float(np.mean(errors))) < 0.02
    assert float(np.std(errors)) < 0.07


def test_near_duplicates_share_a_band_key() -> None:
    rng = random.Random(3)
    shared = 0
    for _ in range(200):
        a = article(rng)
        b = edited(a, rng, 3)  # Jaccard ~0.8: collision probability 0.996
        shared += bool(keys(a) & keys(b))
    assert shared >= 195


def test_unrelated_texts_share_no_band_key() -> None:
    rng = random.Random(4)
    documents = [article(rng) for _ in range(300)]
    seen: dict[int, int] = {}
    collisions = 0
    for i, document in enumerate(documents):
        for key in keys(document):
            collisions += key in seen and seen[key] != i
            seen[key] = i
    assert collisions == 0


def test_the_s_curve() -> None:
    assert collision_probability(0.0) == 0.0
    assert collision_probability(1.0) == 1.0
    assert 0.45 < collision_probability(0.51) < 0.55
    assert collision_probability(0.8) > 0.99
    assert collision_probability(0.3) < 0.05


def test_sketches_are_deterministic_and_short_documents_are_not_sketched() -> None:
    text = article(random.Random(5)).encode()
    assert sketch_document(text) == sketch_document(bytes(text))
    assert sketch_document(memoryview(text)) == sketch_document(text)
    short = b"x" * (MIN_DOCUMENT_BYTES - 1)
    assert sketch_document(short).band_keys == ()
    assert sketch_document(short).level == -1


def test_levels_are_geometric_and_shared_by_near_duplicates() -> None:
    rng = random.Random(6)
    texts = [article(rng) for _ in range(1600)]
    levels = [sketch_document(t.encode()).level for t in texts]
    counts = np.bincount(levels, minlength=MAX_SAMPLE_LEVEL + 1)
    assert 700 < counts[0] < 900  # half
    assert 50 < counts[MAX_SAMPLE_LEVEL] < 150  # one in 16
    same = sum(
        sketch_document(edited(t, rng, 3).encode()).level == level
        for t, level in zip(texts[:200], levels, strict=False)
    )
    assert same >= 150  # at least Jaccard (~0.8) of the time


# -- the collector -----------------------------------------------------------------------------


def feed(name: str, documents: list[bytes], batch: int = 7) -> FileSketch:
    sketch = FileSketch(name)
    for start in range(0, len(documents), batch):
        part: list[Buffer] = list(documents[start : start + batch])
        sketch(Batch(start, part, 0, 0), [])
    return sketch


def test_collector_over_a_real_ingestion(tmp_path: Path) -> None:
    rng = random.Random(7)
    texts = [article(rng, rng.randint(8, 80)) for _ in range(120)]
    texts[10] = texts[3]  # a duplicate
    texts[20] = "too short"
    texts[21] = ""
    path = write_jsonl(tmp_path / "web.jsonl", [{"text": t} for t in texts])
    observer = FileSketch("web.jsonl")
    manifest = ingest_file(path, name="web.jsonl", observer=observer)
    sketch = VersionSketch.from_files([pickle.loads(pickle.dumps(observer))])  # from a worker

    documents = [t.encode() for t in texts]
    long = [d for d in documents if len(d) >= MIN_DOCUMENT_BYTES]
    assert sketch.records == manifest.entry.records == 120
    assert sketch.indexed_records == len(long) == 118
    assert list(sketch.documents) == sorted({hashlib.sha256(d).digest() for d in long})
    first: dict[bytes, int] = {}
    for record, document in enumerate(documents):
        first.setdefault(hashlib.sha256(document).digest(), record)
    assert sketch.first_records.tolist() == [first[d] for d in sketch.documents]
    assert sorted(sketch.occurrences.tolist()) == [1] * 116 + [2]
    # A small version is sampled whole, each document once, with its own sketch.
    assert sketch.sample_level == 0
    assert len(sketch.sample_hashes) == 117
    for i, record in enumerate(sketch.sample_records.tolist()):
        alone = sketch_document(documents[record])
        assert sketch.sample_hashes[i] == alone.sha256
        assert tuple(sketch.sample_keys[i].tolist()) == alone.band_keys
        assert sketch.sample_levels[i] == alone.level
        assert sketch.sample_occurrences[i] == (2 if record == 3 else 1)
    assert sum(sketch.level_counts()) == 117
    assert sketch.locate(5) == ("web.jsonl", 5)


def test_version_sketch_is_independent_of_batches_and_file_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(overlap, "SAMPLE_TARGET", 40)
    rng = random.Random(8)
    a = [article(rng, 30).encode() for _ in range(300)]
    b = [article(rng, 30).encode() for _ in range(200)] + a[:50]
    one = VersionSketch.from_files([feed("b.txt", b, 300), feed("a.txt", a, 300)])
    two = VersionSketch.from_files([feed("a.txt", a, 3), feed("b.txt", b, 11)])
    assert one.files == two.files == (("a.txt", 300), ("b.txt", 250))
    assert one.documents == two.documents
    assert one.first_records.tolist() == two.first_records.tolist()
    assert one.sample_level == two.sample_level
    assert one.sample_hashes == two.sample_hashes
    assert one.sample_keys.tolist() == two.sample_keys.tolist()
    assert one.sample_occurrences.tolist() == two.sample_occurrences.tolist()
    assert two.locate(310) == ("b.txt", 10)

    # The level is the smallest leaving at most SAMPLE_TARGET distinct documents.
    levels = {hashlib.sha256(d).digest(): sketch_document(d).level for d in a + b}
    at_least = [sum(v >= level for v in levels.values()) for level in range(6)]
    expected = next(level for level in range(MAX_SAMPLE_LEVEL + 1) if at_least[level] <= 40)
    assert one.sample_level == expected > 0
    assert len(one.sample_hashes) == at_least[expected]
    assert set(one.sample_hashes) == {d for d, v in levels.items() if v >= expected}
    # The 50 documents of a.txt repeated in b.txt count twice, and point at a.txt.
    repeated = {hashlib.sha256(d).digest() for d in a[:50]}
    for i, digest in enumerate(one.sample_hashes):
        assert one.sample_occurrences[i] == (2 if digest in repeated else 1)
        assert one.sample_records[i] < 300 or digest not in repeated


def test_large_versions_are_sampled_one_in_sixteen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overlap, "SAMPLE_TARGET", 10)
    rng = random.Random(9)
    sketch = VersionSketch.from_files([feed("x.txt", [article(rng).encode() for _ in range(800)])])
    assert sketch.sample_level == MAX_SAMPLE_LEVEL
    assert 20 < len(sketch.sample_hashes) < 90
    assert set(sketch.sample_levels.tolist()) == {MAX_SAMPLE_LEVEL}


# -- the report --------------------------------------------------------------------------------


def indexed(
    version: str, *, documents: int, level: int = 0, counts: tuple[int, ...] = ()
) -> IndexedVersion:
    return IndexedVersion(
        version=version,
        provider="bob",
        dataset="bobs-corpus",
        label="v1",
        documents=documents,
        sample_level=level,
        level_counts=counts or (documents, 0, 0, 0, 0),
    )


@pytest.fixture
def sketch() -> VersionSketch:
    rng = random.Random(10)
    documents = [article(rng, 20).encode() for _ in range(100)]
    return VersionSketch.from_files([feed("a.txt", documents + documents[:10])])


def test_exact_copies_decide_by_the_share_of_records(sketch: VersionSketch) -> None:
    assert sketch.indexed_records == 110 and len(sketch.documents) == 100
    positions = {d: i for i, d in enumerate(sketch.documents)}
    copied = [positions[sketch.sample_hashes[i]] for i in range(5)]  # the 5 first, repeated
    found = {VERSION_B: VersionMatches(exact=copied)}
    report = build_report(
        sketch, found, {VERSION_B: indexed(VERSION_B, documents=1000)}, policy=OverlapPolicy()
    )
    (overlap_b,) = report.overlaps
    assert overlap_b.exact_documents == 5
    assert overlap_b.exact_records == 10
    assert overlap_b.exact_fraction == pytest.approx(10 / 110, abs=1e-6)
    assert overlap_b.exact_fraction_of_other == pytest.approx(0.005)
    assert not overlap_b.substantial and report.substantial == ()
    assert [r for r, _ in overlap_b.exact_examples] == [0, 1, 2]
    assert overlap_b.exact_examples[0][1] == sketch.sample_hashes[0].hex()

    strict = OverlapPolicy(exact_fraction=0.09)
    report = build_report(
        sketch, found, {VERSION_B: indexed(VERSION_B, documents=1000)}, policy=strict
    )
    assert report.overlaps[0].substantial
    assert "exact copies" in report.overlaps[0].reasons[0]
    # A small other version: the same 5 documents are half of it.
    report = build_report(
        sketch, found, {VERSION_B: indexed(VERSION_B, documents=10)}, policy=OverlapPolicy()
    )
    assert report.overlaps[0].exact_fraction_of_other == 0.5
    assert report.overlaps[0].substantial


def test_near_duplicates_decide_on_the_compared_sample(sketch: VersionSketch) -> None:
    near = [(i, 1000 + i) for i in range(40)] + [(0, 5)]  # 40 of 100 samples, one twice
    found = {VERSION_B: VersionMatches(near=near)}
    versions = {VERSION_B: indexed(VERSION_B, documents=400)}
    overlap_b = build_report(sketch, found, versions, policy=OverlapPolicy()).overlaps[0]
    assert overlap_b.compared_level == 0
    assert overlap_b.near_sample == 110
    samples_hit = sketch.sample_occurrences[:40].sum()
    assert overlap_b.near_records == samples_hit
    assert overlap_b.near_fraction == pytest.approx(samples_hit / 110, abs=1e-6)
    assert overlap_b.other_sample == 400 and overlap_b.other_matched == 41
    assert overlap_b.near_examples == ((0, 5), (0, 1000), (1, 1001))
    assert overlap_b.substantial and "near-duplicate" in overlap_b.reasons[0]

    # Against a version sampled at level 2, only our documents of level >= 2 are compared,
    # and an estimate from fewer than min_near_sample documents is not trusted.
    versions = {VERSION_B: indexed(VERSION_B, documents=4000, level=2, counts=(0, 0, 150, 50, 40))}
    overlap_b = build_report(sketch, found, versions, policy=OverlapPolicy()).overlaps[0]
    compared = sketch.sample_levels >= 2
    hit = compared[:40]
    assert overlap_b.compared_level == 2
    assert overlap_b.near_sample == sketch.sample_occurrences[compared].sum() < 110
    assert overlap_b.near_records == sketch.sample_occurrences[:40][hit].sum()
    assert overlap_b.other_sample == 240
    assert overlap_b.other_matched == hit.sum() + int(compared[0])
    assert overlap_b.substantial
    wary = OverlapPolicy(min_near_sample=overlap_b.near_sample + 1)
    assert not build_report(sketch, found, versions, policy=wary).overlaps[0].substantial


def test_reports_round_trip_through_json(sketch: VersionSketch) -> None:
    positions = {d: i for i, d in enumerate(sketch.documents)}
    found = {
        VERSION_A: VersionMatches(exact=[positions[sketch.sample_hashes[0]]]),
        VERSION_B: VersionMatches(exact=list(range(30)), near=[(i, i) for i in range(50)]),
    }
    versions = {
        VERSION_A: indexed(VERSION_A, documents=3),
        VERSION_B: indexed(VERSION_B, documents=70),
    }
    report = build_report(sketch, found, versions, policy=OverlapPolicy(near_fraction=0.5))
    assert [o.version for o in report.overlaps] == [VERSION_B, VERSION_A]  # larger first
    again = OverlapReport.from_bytes(report.to_bytes())
    assert again == report
    assert again.to_bytes() == report.to_bytes()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda j: j.update(format="other"),
        lambda j: j.pop("policy"),
        lambda j: j["policy"].update(exact_fraction=2),
        lambda j: j["overlaps"][0].update(substantial=False),
        lambda j: j["overlaps"][0]["exact"].update(fraction=-0.5),
        lambda j: j["overlaps"][0]["exact"].update(examples=[[1, "zz"]]),
        lambda j: j["overlaps"][0].update(version="v1"),
        lambda j: j.update(records=True),
    ],
)
def test_malformed_reports_are_refused(sketch: VersionSketch, mutate: object) -> None:
    found = {VERSION_B: VersionMatches(exact=list(range(30)))}
    report = build_report(
        sketch, found, {VERSION_B: indexed(VERSION_B, documents=30)}, policy=OverlapPolicy()
    )
    data = report.to_json()
    assert callable(mutate)
    mutate(data)
    with pytest.raises(ManifestError):
        OverlapReport.from_json(data)


@pytest.mark.parametrize("size", [0, 1, 2, 1000])
def test_unique_hashes_is_numpys_unique(size: int) -> None:
    """The faster unique of a version's document hashes gives exactly numpy's answer, also when
    two different hashes share their first 8 bytes (the order is then settled by the rest)."""
    rng = np.random.default_rng(size)
    hashes = rng.integers(0, 256, size=(size, 32), dtype=np.uint8).view("V32").ravel()
    cases = [hashes, np.concatenate((hashes, hashes[: size // 3])), hashes[::2]]  # strided
    if size >= 2:
        tie = hashes.copy()
        tie[1] = np.frombuffer(tie[0].tobytes()[:8] + tie[1].tobytes()[8:], dtype="V32")[0]
        cases += [tie, np.concatenate((tie, tie[:2], hashes[-1:]))]  # ties among copies too
    for case in cases:
        got = overlap._unique_hashes(case)
        expected = np.unique(case, return_index=True, return_counts=True)
        for a, b in zip(got, expected, strict=True):
            assert np.array_equal(a, b)


def test_a_versions_documents_are_its_sorted_hashes_joined() -> None:
    """DocumentHashes: one bytes object, read as the sorted tuple of 32-byte hashes it replaced
    (the overlap index stores and looks up ``joined`` as it is), also where two hashes share
    their first 8 bytes."""
    rng = np.random.default_rng(7)
    hashes = [bytes(h) for h in rng.integers(0, 256, size=(300, 32), dtype=np.uint8)]
    hashes.append(hashes[0][:8] + bytes(24))  # a tie on the prefix the sort looks at first
    found = overlap._unique_hashes(np.frombuffer(b"".join(hashes), dtype="V32"))[0]
    documents = overlap.DocumentHashes(found.tobytes())
    expected = sorted(set(hashes))
    assert list(documents) == expected and len(documents) == len(expected)
    assert documents[0] == expected[0] and documents[-1] == expected[-1]
    assert documents.joined == b"".join(expected)
    assert documents == overlap.DocumentHashes(b"".join(expected))
    with pytest.raises(IndexError):
        documents[len(expected)]
    with pytest.raises(ValueError, match="32 bytes"):
        overlap.DocumentHashes(b"x" * 33)
