"""Reading with ``drop_cache`` (the exchange's reads of its own blobs): the same manifest as
without, and the page cache told to drop every byte read, window by window."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from catalog import ingest_file, streams
from catalog.derivation import derive_file
from tests.unit.catalog.corpora import texts, write_jsonl, write_parquet


@pytest.fixture
def advice(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Every posix_fadvise call made while reading: (offset, length, advice)."""
    calls: list[tuple[int, int, int]] = []
    real = os.posix_fadvise

    def spy(fd: int, offset: int, length: int, what: int) -> None:
        calls.append((offset, length, what))
        real(fd, offset, length, what)

    monkeypatch.setattr(os, "posix_fadvise", spy)
    monkeypatch.setattr(streams, "DROP_WINDOW", 64 << 10)
    return calls


def _corpus(tmp_path: Path, kind: str) -> Path:
    rng = random.Random(7)  # ~1.2 KB each, hardly compressible: ~1 MiB, gzip too
    documents = [f"{text} {rng.randbytes(600).hex()}" for text in texts(900)]
    records = [{"id": i, "text": t} for i, t in enumerate(documents)]
    if kind == "jsonl":
        return write_jsonl(tmp_path / "part.jsonl", records)
    if kind == "jsonl.gz":
        return write_jsonl(tmp_path / "part.jsonl.gz", records, "gzip")
    return write_parquet(
        tmp_path / "part.parquet",
        {"id": list(range(len(documents))), "text": documents},
        row_group_size=100,
    )


@pytest.mark.parametrize("kind", ["jsonl", "jsonl.gz", "parquet"])
def test_dropping_the_cache_changes_nothing_read(
    tmp_path: Path, advice: list[tuple[int, int, int]], kind: str
) -> None:
    path = _corpus(tmp_path, kind)
    kept = ingest_file(path, name=path.name)
    assert advice == []  # the client's reads leave the cache alone
    dropped = ingest_file(path, name=path.name, drop_cache=True)
    assert dropped == kept

    size = path.stat().st_size
    assert size > 2 * streams.DROP_WINDOW
    assert {what for _, _, what in advice} == {os.POSIX_FADV_DONTNEED}
    *windows, last = advice
    assert last[:2] == (0, 0)  # the whole file, on close
    # The windows follow each other from the start, each at least DROP_WINDOW long.
    offset = 0
    for start, length, _ in windows:
        assert start == offset and length >= streams.DROP_WINDOW
        offset += length
    assert size - offset < streams.DROP_WINDOW


def test_the_exchange_drops_the_blobs_it_derives(
    tmp_path: Path, advice: list[tuple[int, int, int]]
) -> None:
    path = _corpus(tmp_path, "jsonl")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    derive_file(str(path), digest, path.name, "field:text")
    assert advice and advice[-1] == (0, 0, os.POSIX_FADV_DONTNEED)
