"""The overlap index's in-memory entries: sorted runs, merged, looked up (against brute force)."""

from __future__ import annotations

import random
import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.overlap_index import _equal, _Run, _words

EXTREMES = [-(2**63), -1, 0, 1, 2**63 - 1]


def segment(rng: random.Random, pool: list[bytes], keys: list[int]) -> tuple[bytes, bytes]:
    """A segment drawing documents from ``pool`` and band keys from ``keys`` (so that versions
    share entries), both sorted as the index stores them."""
    documents = sorted(set(rng.sample(pool, rng.randint(0, min(len(pool), 40)))))
    pairs = sorted((rng.choice(keys), rng.randint(0, 10**12)) for _ in range(rng.randint(0, 60)))
    return b"".join(documents), b"".join(struct.pack("<qq", k, r) for k, r in pairs)


def brute_documents(
    parts: list[tuple[int, bytes, bytes]], query: list[bytes]
) -> set[tuple[int, int]]:
    return {
        (position, owner)
        for position, digest in enumerate(query)
        for owner, documents, _ in parts
        if any(documents[i : i + 32] == digest for i in range(0, len(documents), 32))
    }


def brute_bands(
    parts: list[tuple[int, bytes, bytes]], query: list[int]
) -> list[tuple[int, int, int]]:
    return sorted(
        (position, owner, record)
        for position, key in enumerate(query)
        for owner, _, bands in parts
        for band, record in struct.iter_unpack("<qq", bands)
        if band == key
    )


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), loads=st.integers(1, 6))
def test_runs_find_what_brute_force_finds(seed: int, loads: int) -> None:
    rng = random.Random(seed)
    # Hashes that share their first 64 bits with another (the rest decides) and extreme keys.
    pool = [rng.randbytes(32) for _ in range(30)]
    pool += [pool[i][:8] + rng.randbytes(24) for i in range(5)]
    keys = EXTREMES + [rng.randint(-(2**63), 2**63 - 1) for _ in range(20)]
    parts: list[tuple[int, bytes, bytes]] = []
    runs: list[_Run] = []
    for _ in range(loads):  # as _Entries loads: a run per load, merged while not much smaller
        batch = [(len(parts) + i, *segment(rng, pool, keys)) for i in range(rng.randint(1, 3))]
        parts += batch
        run = _Run.of(batch)
        while runs and runs[-1].size < 2 * run.size:
            run = runs.pop().merged(run)
        runs.append(run)
    assert sum(r.size for r in runs) == sum(len(d) // 32 + len(b) // 16 for _, d, b in parts)
    for run in runs:
        first, band_keys = run.words[:, 0], run.band_keys  # unsigned: compared, not subtracted
        assert np.all(first[1:] >= first[:-1]) and np.all(band_keys[1:] >= band_keys[:-1])

    query = [*rng.sample(pool, 20), rng.randbytes(32)]
    words = _words(b"".join(query))
    found: list[tuple[int, int]] = []
    for run in runs:
        positions, owners = run.documents(words)
        found += zip(positions.tolist(), owners.tolist(), strict=True)
    assert len(found) == len(set(found))
    assert set(found) == brute_documents(parts, query)

    asked = [*(rng.choice(keys) for _ in range(15)), 12345]
    bands: list[tuple[int, int, int]] = []
    for run in runs:
        positions, owners, records = run.bands(np.array(asked, dtype=np.int64))
        bands += zip(positions.tolist(), owners.tolist(), records.tolist(), strict=True)
    assert sorted(bands) == brute_bands(parts, asked)


def test_equal_pairs_every_equal_value() -> None:
    keys = np.array([1, 3, 3, 3, 7, 9, 9], dtype=np.int64)
    query = np.array([9, 0, 3, 10, 1, 3], dtype=np.int64)
    asked, found = _equal(keys, query)
    assert sorted(zip(asked.tolist(), found.tolist(), strict=True)) == [
        (0, 5),
        (0, 6),
        (2, 1),
        (2, 2),
        (2, 3),
        (4, 0),
        (5, 1),
        (5, 2),
        (5, 3),
    ]
    empty = np.empty(0, dtype=np.int64)
    for a, b in ((keys, empty), (empty, query), (keys, np.array([2, 8], dtype=np.int64))):
        asked, found = _equal(a, b)
        assert len(asked) == len(found) == 0


def test_an_empty_run_finds_nothing() -> None:
    run = _Run.of([(0, b"", b"")])
    assert run.size == 0
    positions, owners = run.documents(_words(bytes(64)))
    assert len(positions) == len(owners) == 0
