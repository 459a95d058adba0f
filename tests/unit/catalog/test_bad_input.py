"""Every kind of bad input is refused with an IngestError that names the file (and record)."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog import FileChangedError, IngestError, IngestOptions, ingest, ingest_file, scan
from catalog.streams import BLOCK_SIZE
from tests.unit.catalog.corpora import (
    compress,
    jsonl_bytes,
    write_bytes,
    write_jsonl,
    write_parquet,
)


def refuse(path: Path, name: str | None = None, **options: object) -> IngestError:
    name = name or path.name
    with pytest.raises(IngestError) as info:
        ingest_file(path, name=name, options=IngestOptions(**options))  # type: ignore[arg-type]
    assert info.value.file == name
    assert str(info.value).startswith(f"{name}: ")
    return info.value


# -- Parquet -----------------------------------------------------------------------------------


@pytest.fixture
def parquet_bytes(tmp_path: Path) -> bytes:
    path = write_parquet(tmp_path / "ok.parquet", {"text": [f"doc {i}" for i in range(1000)]})
    return path.read_bytes()


def test_truncated_parquet(tmp_path: Path, parquet_bytes: bytes) -> None:
    path = write_bytes(tmp_path / "a.parquet", parquet_bytes[:-100])
    assert "Parquet" in refuse(path).reason


def test_not_parquet(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.parquet", [{"text": "hello"}])
    assert "not a valid Parquet file" in refuse(path).reason
    empty = write_bytes(tmp_path / "b.parquet", b"")
    assert "not a valid Parquet file" in refuse(empty).reason


def test_parquet_with_corrupt_pages(tmp_path: Path, parquet_bytes: bytes) -> None:
    damaged = bytearray(parquet_bytes)
    for i in range(8, 200):
        damaged[i] ^= 0x5A
    path = write_bytes(tmp_path / "a.parquet", bytes(damaged))
    refuse(path)


def test_parquet_missing_text_column(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "a.parquet", {"body": ["x"], "id": [1]})
    error = refuse(path)
    assert "no column 'text'" in error.reason and "'body'" in error.reason


def test_parquet_text_column_not_strings(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "a.parquet", {"text": [1, 2]})
    assert "must hold strings, not int64" in refuse(path).reason
    binary = write_parquet(tmp_path / "b.parquet", {"text": pa.array([b"x"], pa.binary())})
    assert "not binary" in refuse(binary).reason


def test_parquet_null_text_names_the_record(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "a.parquet", {"text": ["a"] * 70000 + [None] + ["b"]}, row_group_size=50000
    )
    error = refuse(path)
    assert error.record == 70000 and "null" in error.reason


def test_parquet_invalid_utf8_names_the_record(tmp_path: Path) -> None:
    values = [b"fine", b"also fine", b"bad \xff\xfe", b"ok"]
    offsets = pa.array([0, 4, 13, 19, 21], pa.int32()).buffers()[1]
    data = pa.py_buffer(b"".join(values))
    array = pa.StringArray.from_buffers(4, offsets, data)
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": array}), path)
    error = refuse(path)
    assert error.record == 2 and "UTF-8" in error.reason


def test_parquet_document_over_the_limit(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "a.parquet", {"text": ["x" * 10, "y" * 101, "z"]})
    error = refuse(path, max_document_bytes=100)
    assert error.record == 1 and "limit of 100 bytes" in error.reason


# -- JSON Lines --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'["text", "array"]', "must be a JSON object, found array"),
        (b'"just a string"', "must be a JSON object, found string"),
        (b'{"other": "x"}', "no member 'text'"),
        (b'{"text": 42}', "must be a string, found number"),
        (b'{"text": null}', "must be a string, found null"),
        (b'{"text": ["a"]}', "must be a string, found array"),
        (b'{"text": "a",}', "not valid JSON"),
        (b'{"text": "a"', "not valid JSON"),
        (b'{"text": "a"} {"text": "b"}', "Extra data"),
        (b'{"text": "a", "score": NaN}', "NaN is not a JSON number"),
        (b'{"text": "a", "score": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"text": "a", "text": "b"}', "duplicate member name 'text'"),
        (b'{"text": "a", "m": {"k": 1, "k": 2}}', "duplicate member name 'k'"),
        (b'{"text": "lone \\ud800 surrogate"}', "lone surrogate"),
        (b'{"text": "raw \t tab"}', "not valid JSON"),
        (b'{"text": "x", "deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    ],
)
def test_bad_jsonl_record_names_record_and_line(tmp_path: Path, line: bytes, reason: str) -> None:
    data = jsonl_bytes([{"text": "first"}, {"text": "second"}]) + b"\n" + line + b"\n"
    path = write_bytes(tmp_path / "a.jsonl", data)
    error = refuse(path)
    assert (error.record, error.line) == (2, 4)
    assert reason in error.reason


def test_jsonl_invalid_utf8_names_record_and_line(tmp_path: Path) -> None:
    data = b'{"text": "ok"}\n\n{"text": "ok"}\n{"text": "bad \xc3\x28"}\n{"text": "x"}\n'
    error = refuse(write_bytes(tmp_path / "a.jsonl", data))
    assert (error.record, error.line) == (2, 4) and "invalid UTF-8" in error.reason


def test_jsonl_earliest_error_wins(tmp_path: Path) -> None:
    # A bad record before a UTF-8 error in the same block is the one reported.
    data = b'{"text": 1}\n{"text": "\xff"}\n'
    error = refuse(write_bytes(tmp_path / "a.jsonl", data))
    assert (error.record, error.line) == (0, 1) and "must be a string" in error.reason


def test_jsonl_utf8_error_in_a_later_block(tmp_path: Path) -> None:
    good = jsonl_bytes({"text": "y" * 1000} for _ in range(9000))
    assert len(good) > BLOCK_SIZE
    error = refuse(write_bytes(tmp_path / "a.jsonl.gz", good + b'{"text": "\xff"}\n', "gzip"))
    assert (error.record, error.line) == (9000, 9001)


def test_jsonl_text_field_option_names_the_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "x"}])
    assert "no member 'content'" in refuse(path, text_field="content").reason


def test_jsonl_line_over_the_limit_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    huge = b'{"text": "' + b"x" * (3 * BLOCK_SIZE) + b'"}\n'
    data = jsonl_bytes([{"text": "a"}, {"text": "b"}]) + huge + b'{"text": "after"}\n'
    path = write_bytes(tmp_path / "a.jsonl", data)
    read: list[int] = []
    with pytest.raises(IngestError) as info:
        ingest_file(
            path,
            name="a.jsonl",
            options=IngestOptions(max_document_bytes=1 << 20),
            progress=read.append,
        )
    error = info.value
    assert (error.file, error.record, error.line) == ("a.jsonl", 2, 3)
    assert "longer than the limit" in error.reason
    assert sum(read) < len(data) // 2  # stopped long before the end of the line


def test_default_limit_refuses_a_line_over_64_mib(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    with path.open("wb") as out:
        out.write(b"short\n")
        out.write(b"z" * ((64 << 20) + 10))
    error = refuse(path)
    assert (error.record, error.line) == (1, 2) and "67108864 bytes" in error.reason


def test_line_over_the_limit_inside_a_block(tmp_path: Path) -> None:
    data = b'{"text": "ok"}\n' + b'{"text": "' + b"q" * 200 + b'"}\n' + b'{"text": "x"}\n'
    error = refuse(write_bytes(tmp_path / "a.jsonl", data), max_document_bytes=100)
    assert (error.record, error.line) == (1, 2)


# -- plain text --------------------------------------------------------------------------------


def test_text_invalid_utf8_names_record_and_line(tmp_path: Path) -> None:
    data = b"one\n\ntwo\r\nbad \xed\xa0\x80 surrogate\nfour\n"
    error = refuse(write_bytes(tmp_path / "a.txt", data))
    assert (error.record, error.line) == (2, 4) and "invalid UTF-8" in error.reason


def test_text_line_over_the_limit(tmp_path: Path) -> None:
    data = b"one\n" + b"w" * 50 + b"\r\nthree\n"
    error = refuse(write_bytes(tmp_path / "a.txt", data), max_document_bytes=49)
    assert (error.record, error.line) == (1, 2)
    # 50 bytes plus CR fits a limit of 50: the CR is not part of the document.
    ingest_file(tmp_path / "a.txt", name="a.txt", options=IngestOptions(max_document_bytes=50))


def test_whole_text_file_over_the_limit(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "a.txt", b"x" * 101)
    error = refuse(path, text_unit="file", max_document_bytes=100)
    assert error.record == 0 and "limit" in error.reason
    bad = write_bytes(tmp_path / "b.txt", b"ok\n\xff")
    error = refuse(bad, text_unit="file")
    assert (error.record, error.line) == (0, 2)


# -- compression -------------------------------------------------------------------------------


def test_corrupt_and_truncated_gzip(tmp_path: Path) -> None:
    good = gzip.compress(jsonl_bytes({"text": str(i)} for i in range(5000)))
    assert "gzip" in refuse(write_bytes(tmp_path / "a.jsonl.gz", b"plain text")).reason
    assert "truncated" in refuse(write_bytes(tmp_path / "b.jsonl.gz", good[:-20])).reason
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0xFF
    assert "gzip" in refuse(write_bytes(tmp_path / "c.jsonl.gz", bytes(damaged))).reason
    assert "gzip" in refuse(write_bytes(tmp_path / "d.jsonl.gz", good + b"garbage")).reason


def test_corrupt_and_truncated_zstd(tmp_path: Path) -> None:
    good = compress(b"line\n" * 10000, "zstd")
    assert "zstd" in refuse(write_bytes(tmp_path / "a.txt.zst", b"not zstd at all")).reason
    assert "truncated" in refuse(write_bytes(tmp_path / "b.txt.zst", good[:-5])).reason
    assert "zstd" in refuse(write_bytes(tmp_path / "c.txt.zst", good + b"garbage!")).reason
    assert "empty file" in refuse(write_bytes(tmp_path / "d.txt.zst", b"")).reason
    assert "empty file" in refuse(write_bytes(tmp_path / "e.txt.gz", b"")).reason


# -- whole corpora -----------------------------------------------------------------------------


def test_empty_corpus(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="no files"):
        ingest(tmp_path / "empty")
    write_bytes(tmp_path / "blank" / "a.jsonl", b"\n")
    write_bytes(tmp_path / "blank" / "b.txt", b"")
    with pytest.raises(IngestError, match="none of the 2 files holds a document"):
        ingest(tmp_path / "blank")
    with pytest.raises(IngestError, match="no files"):
        ingest([])


@pytest.mark.parametrize("workers", [1, 2])
def test_bad_file_in_a_corpus_is_named(tmp_path: Path, workers: int) -> None:
    for i in range(4):
        write_jsonl(tmp_path / f"good-{i}.jsonl", [{"text": f"doc {j}"} for j in range(2000)])
    write_bytes(tmp_path / "sub" / "bad.jsonl.zst", b'{"text": "a"}\n{"txt": "b"}\n', "zstd")
    with pytest.raises(IngestError) as info:
        ingest(tmp_path, workers=workers)
    error = info.value
    assert (error.file, error.record, error.line) == ("sub/bad.jsonl.zst", 1, 2)


def test_ingest_error_pickles_with_its_fields() -> None:
    error = FileChangedError("changed", file="a.txt", record=3, line=4)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is FileChangedError
    assert (again.file, again.record, again.line, str(again)) == ("a.txt", 3, 4, str(error))


# -- files that change -------------------------------------------------------------------------


def test_file_growing_while_read(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "x" * 1000} for _ in range(4000)])

    def append(_: int) -> None:
        with path.open("ab") as out:
            out.write(b'{"text": "late"}\n')

    with pytest.raises(FileChangedError) as info:
        ingest_file(path, name="a.jsonl", progress=append)
    assert info.value.file == "a.jsonl" and "changed while read" in str(info.value)


def test_file_rewritten_while_read(tmp_path: Path) -> None:
    texts = [f"document {i} " + os.urandom(40).hex() for i in range(50000)]
    path = write_parquet(tmp_path / "a.parquet", {"text": texts}, row_group_size=5000)
    assert path.stat().st_size > 4 << 20

    def rewrite(_: int) -> None:
        # Same size, other content: the times (restored, even) and the ctime tell.
        before = path.stat()
        data = bytearray(path.read_bytes())
        data[100] ^= 1
        with path.open("r+b") as out:
            out.write(bytes(data))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

    with pytest.raises(FileChangedError, match="ctime_ns"):
        ingest_file(path, name="a.parquet", progress=rewrite)


def test_file_changed_since_scan(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"text": "x"}])
    scanned = scan(tmp_path)
    write_jsonl(tmp_path / "a.jsonl", [{"text": "x"}, {"text": "y"}])
    with pytest.raises(FileChangedError, match="changed since it was scanned"):
        ingest(scanned, workers=1)


def test_file_replaced_since_scan(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"text": "x"}])
    scanned = scan(tmp_path)
    replacement = write_jsonl(tmp_path / "new.tmp", [{"text": "x"}])
    os.replace(replacement, tmp_path / "a.jsonl")
    with pytest.raises(FileChangedError, match="inode"):
        ingest(scanned, workers=1)


def test_fifo_in_place_of_a_file_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "a.jsonl")
    with pytest.raises(IngestError, match="not a regular file"):
        ingest_file(tmp_path / "a.jsonl", name="a.jsonl")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="cannot open") as info:
        ingest_file(tmp_path / "gone.jsonl", name="gone.jsonl")
    assert info.value.file == "gone.jsonl"
