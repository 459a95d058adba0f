"""The overlap index on both databases: indexing, lookups, other providers only, the verdict."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import struct
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session
from sqlmodel import select as select_model

from catalog.documents import Buffer
from catalog.errors import CatalogError, IndexDamaged
from catalog.models import Dataset, DatasetVersion
from catalog.overlap import FileSketch, OverlapPolicy, OverlapReport, VersionSketch
from catalog.overlap_index import (
    OverlapSegment,
    OverlapVersion,
    find_overlaps,
    index_version,
    versions_with_documents,
)
from catalog.readers import Batch
from exchange.db import make_engine
from exchange.models import Member
from tests.unit.catalog.test_overlap import article, edited

NOW = datetime(2026, 11, 29, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    with Session(engine) as session:
        for member in ("alice", "bob", "carol"):
            session.add(
                Member(
                    id=member,
                    display_name=member,
                    roles="provider",
                    registered_seq=0,
                    created_at=NOW,
                )
            )
        session.commit()
    yield engine
    engine.dispose()


def publish(session: Session, provider: str, slug: str, label: str) -> str:
    """Minimal catalogue rows for a version (what the joins need); returns its id."""
    dataset = session.exec(select_model(Dataset).where(Dataset.slug == slug)).first()
    if dataset is None:
        dataset = Dataset(slug=slug, provider=provider, title=slug, created_at=NOW, updated_at=NOW)
        session.add(dataset)
        session.flush()
    version_id = "sha256:" + hashlib.sha256(f"{slug}/{label}".encode()).hexdigest()
    assert dataset.id is not None
    session.add(
        DatasetVersion(
            id=version_id,
            dataset_id=dataset.id,
            label=label,
            manifest=b"{}",
            manifest_root="0" * 64,
            record_count=0,
            size_bytes=0,
            published_seq=0,
            created_at=NOW,
        )
    )
    session.flush()
    return version_id


def sketch_of(documents: list[bytes], name: str = "part-0.jsonl") -> VersionSketch:
    observer = FileSketch(name)
    for start in range(0, len(documents), 100):
        part: list[Buffer] = list(documents[start : start + 100])
        observer(Batch(start, part, 0, 0), [])
    return VersionSketch.from_files([observer])


def count(session: Session, model: type) -> int:
    return int(session.connection().execute(select(func.count()).select_from(model)).scalar_one())


def test_a_copying_version_is_found_and_named(engine: Engine) -> None:
    rng = random.Random(11)
    bobs = [article(rng, 60).encode() for _ in range(400)]
    alices_old = [article(rng, 60).encode() for _ in range(200)]
    carols = [article(rng, 60).encode() for _ in range(300)]
    copied_exactly = bobs[:60]
    copied_nearly = [edited(d.decode(), rng, 2).encode() for d in bobs[100:200]]
    new = (
        copied_exactly
        + copied_nearly
        + alices_old[:100]
        + [article(rng, 60).encode() for _ in range(140)]
    )
    with Session(engine) as session:
        bob_v1 = publish(session, "bob", "bobs-news", "v1")
        alice_v1 = publish(session, "alice", "alices-news", "v1")
        carol_v1 = publish(session, "carol", "carols-news", "v1")
        index_version(session, bob_v1, sketch_of(bobs))
        index_version(session, alice_v1, sketch_of(alices_old))
        index_version(session, carol_v1, sketch_of(carols))
        session.commit()

    sketch = sketch_of(new)
    with Session(engine) as session:
        report = find_overlaps(session, sketch, exclude_provider="alice")
        assert count(session, OverlapVersion) == count(session, OverlapSegment) == 3

    assert report.records == report.indexed_records == report.documents == 400
    assert report.sample_level == 0 and report.sampled == 400
    (bob,) = report.overlaps  # alice's own version does not count, carol shares nothing
    assert (bob.version, bob.provider, bob.dataset, bob.label) == (
        bob_v1,
        "bob",
        "bobs-news",
        "v1",
    )
    assert bob.exact_documents == bob.exact_records == 60
    assert bob.exact_fraction == 60 / 400
    assert bob.exact_fraction_of_other == 60 / 400
    assert bob.exact_examples == tuple((r, hashlib.sha256(bobs[r]).hexdigest()) for r in range(3))
    # Every exact copy is a near-duplicate too; the edited ones nearly all collide.
    assert bob.compared_level == 0 and bob.near_sample == 400
    assert 60 + 90 <= bob.near_records <= 160
    assert bob.other_sample == 400 and 150 <= bob.other_matched <= 160
    assert bob.near_examples[0] == (0, 0)
    assert bob.substantial and report.substantial == (bob,)
    assert OverlapReport.from_bytes(report.to_bytes()) == report

    lenient = OverlapPolicy(exact_fraction=0.5, near_fraction=0.5)
    with Session(engine) as session:
        assert not find_overlaps(
            session, sketch, exclude_provider="alice", policy=lenient
        ).substantial
        # Seen from bob, alice's old version is someone else's.
        as_bob = find_overlaps(session, sketch, exclude_provider="bob")
    assert [o.provider for o in as_bob.overlaps] == ["alice"]
    assert as_bob.overlaps[0].exact_records == 100


def test_the_segment_is_the_sketch(engine: Engine) -> None:
    """Every document hash and every (band key, record), exactly, including the extreme 64-bit
    keys, sorted, and named by their digest."""
    rng = random.Random(15)
    sketch = sketch_of([article(rng, 40).encode() for _ in range(300)])
    keys = sketch.sample_keys.copy()
    keys[0, :3] = [-(2**63), 2**63 - 1, 0]
    keys[1, :2] = [-1, 1]
    sketch = dataclasses.replace(sketch, sample_keys=keys)
    with Session(engine) as session:
        version = publish(session, "bob", "bobs-news", "v1")
        key = index_version(session, version, sketch)
        segment = session.get(OverlapSegment, key)
        assert segment is not None
        documents, bands = bytes(segment.documents), bytes(segment.bands)
    assert [documents[i : i + 32] for i in range(0, len(documents), 32)] == sorted(sketch.documents)
    expected = [
        (int(band), int(record))
        for row, record in zip(keys, sketch.sample_records, strict=True)
        for band in row
    ]
    assert list(struct.iter_unpack("<qq", bands)) == sorted(expected)
    assert (
        segment.digest
        == hashlib.sha256(len(documents).to_bytes(8, "big") + documents + bands).hexdigest()
    )


def test_an_empty_version_has_an_empty_segment(engine: Engine) -> None:
    sketch = sketch_of([b"short"])
    with Session(engine) as session:
        version = publish(session, "bob", "bobs-news", "v1")
        key = index_version(session, version, sketch)
        segment = session.get(OverlapSegment, key)
        assert segment is not None and segment.documents == segment.bands == b""
        assert count(session, OverlapVersion) == 1
        report = find_overlaps(session, sketch_of([b"short"]), exclude_provider="alice")
    assert report.overlaps == ()


def test_a_version_is_indexed_once(engine: Engine) -> None:
    rng = random.Random(12)
    sketch = sketch_of([article(rng, 40).encode() for _ in range(30)])
    with Session(engine) as session:
        version = publish(session, "bob", "bobs-news", "v1")
        index_version(session, version, sketch)
        with pytest.raises(CatalogError, match="already in the overlap index"):
            index_version(session, version, sketch)


def test_nothing_indexed_nothing_found(engine: Engine) -> None:
    rng = random.Random(13)
    sketch = sketch_of([article(rng, 40).encode() for _ in range(10)])
    with Session(engine) as session:
        report = find_overlaps(session, sketch, exclude_provider="alice")
    assert report.overlaps == () and report.documents == 10


def test_a_large_version_is_compared_on_its_sample(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from catalog import overlap

    monkeypatch.setattr(overlap, "SAMPLE_TARGET", 50)
    rng = random.Random(14)
    bobs = [article(rng, 40).encode() for _ in range(1600)]
    new = bobs[:800] + [article(rng, 40).encode() for _ in range(800)]
    with Session(engine) as session:
        bob_v1 = publish(session, "bob", "bobs-news", "v1")
        bobs_sketch = sketch_of(bobs)
        assert bobs_sketch.sample_level == 4
        segment = session.get(OverlapSegment, index_version(session, bob_v1, bobs_sketch))
        assert segment is not None
        assert len(segment.bands) == 16 * 20 * len(bobs_sketch.sample_hashes) < 16 * 20 * 200
        report = find_overlaps(session, sketch_of(new), exclude_provider="alice")
    (bob,) = report.overlaps
    assert bob.exact_records == 800 and bob.exact_fraction == 0.5
    assert bob.compared_level == 4
    assert 0.3 < bob.near_fraction < 0.7  # an estimate from ~100 sampled documents
    assert 0.3 < bob.near_fraction_of_other < 0.7


def test_versions_indexed_after_a_lookup_are_found_and_rolled_back_ones_are_not(
    engine: Engine,
) -> None:
    """Lookups keep loaded entries in memory; what counts is still what the database holds."""
    rng = random.Random(16)
    bobs = [article(rng, 40).encode() for _ in range(50)]
    carols = [article(rng, 40).encode() for _ in range(50)]
    daves = [article(rng, 40).encode() for _ in range(50)]
    new = bobs[:20] + carols[:20] + daves[:20]
    with Session(engine) as session:
        index_version(session, publish(session, "bob", "bobs-news", "v1"), sketch_of(bobs))
        session.commit()
        assert [
            o.provider
            for o in find_overlaps(session, sketch_of(new), exclude_provider="alice").overlaps
        ] == ["bob"]
        index_version(session, publish(session, "carol", "carols-news", "v1"), sketch_of(carols))
        session.commit()
    with Session(engine) as session:
        index_version(session, publish(session, "carol", "daves-news", "v1"), sketch_of(daves))
        report = find_overlaps(session, sketch_of(new), exclude_provider="alice")
        assert sorted((o.dataset, o.exact_documents) for o in report.overlaps) == [
            ("bobs-news", 20),
            ("carols-news", 20),
            ("daves-news", 20),
        ]
        session.rollback()
    with Session(engine) as session:
        report = find_overlaps(session, sketch_of(new), exclude_provider="alice")
    assert sorted(o.dataset for o in report.overlaps) == ["bobs-news", "carols-news"]


def test_versions_with_the_same_entries_are_each_reported(engine: Engine) -> None:
    rng = random.Random(17)
    documents = [article(rng, 40).encode() for _ in range(40)]
    with Session(engine) as session:
        bob_v1 = publish(session, "bob", "bobs-news", "v1")
        carol_v1 = publish(session, "carol", "carols-news", "v1")
        index_version(session, bob_v1, sketch_of(documents))
        index_version(session, carol_v1, sketch_of(documents))
        report = find_overlaps(session, sketch_of(documents[:10]), exclude_provider="alice")
        found = versions_with_documents(session, [hashlib.sha256(documents[0]).digest()])
    assert sorted((o.version, o.exact_documents) for o in report.overlaps) == sorted(
        [(bob_v1, 10), (carol_v1, 10)]
    )
    assert found == {hashlib.sha256(documents[0]).digest(): sorted([bob_v1, carol_v1])}


def test_versions_with_documents_names_every_version_holding_a_hash(engine: Engine) -> None:
    rng = random.Random(18)
    bobs = [article(rng, 40).encode() for _ in range(30)]
    alices = bobs[:5] + [article(rng, 40).encode() for _ in range(30)]
    digest = hashlib.sha256
    with Session(engine) as session:
        bob_v1 = publish(session, "bob", "bobs-news", "v1")
        alice_v1 = publish(session, "alice", "alices-news", "v1")
        index_version(session, bob_v1, sketch_of(bobs))
        index_version(session, alice_v1, sketch_of(alices))
        near_miss = digest(bobs[9]).digest()[:16] + bytes(16)  # same first 128 bits only
        asked = [digest(bobs[0]).digest(), digest(bobs[9]).digest(), near_miss, bytes(32)]
        found = versions_with_documents(session, asked)
    assert found == {
        asked[0]: sorted([bob_v1, alice_v1]),
        asked[1]: [bob_v1],
    }


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE overlap_segment SET bands = documents",
        "DELETE FROM overlap_segment",
    ],
)
def test_a_damaged_segment_is_refused(engine: Engine, damage: str) -> None:
    rng = random.Random(19)
    bobs = [article(rng, 40).encode() for _ in range(30)]
    with Session(engine) as session:
        index_version(session, publish(session, "bob", "bobs-news", "v1"), sketch_of(bobs))
        session.connection().exec_driver_sql(damage)
        with pytest.raises(IndexDamaged, match="the overlap index is damaged"):
            find_overlaps(session, sketch_of(bobs[:5]), exclude_provider="alice")
