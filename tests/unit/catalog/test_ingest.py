"""Ingestion of good corpora: records, roots, statistics, schema, determinism, parallelism."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog import (
    ClaimMismatchError,
    IngestOptions,
    IngestProgress,
    ingest,
    ingest_file,
    scan,
    verify_file,
)
from catalog.manifest import FileManifest, estimate_tokens
from tests.unit.catalog.corpora import (
    compress,
    jsonl_bytes,
    jsonl_documents,
    root_of,
    text_documents,
    texts,
    write_bytes,
    write_jsonl,
    write_parquet,
)


def build_corpus(root: Path) -> Path:
    """A corpus with every format and compression."""
    write_jsonl(
        root / "web" / "part-0.jsonl", [{"id": i, "text": t} for i, t in enumerate(texts(700))]
    )
    write_jsonl(
        root / "web" / "part-1.jsonl.gz", [{"text": t, "url": None} for t in texts(300)], "gzip"
    )
    write_jsonl(root / "web" / "part-2.jsonl.zst", [{"text": t} for t in texts(5)], "zstd")
    write_parquet(
        root / "books.parquet", {"text": texts(2500), "n": list(range(2500))}, row_group_size=600
    )
    write_bytes(root / "lines.txt", b"one\r\ntwo\n\nthree\n")
    write_bytes(root / "more.txt.gz", "\n".join(texts(50)).encode(), "gzip")
    return root


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return build_corpus(tmp_path / "corpus")


def test_records_and_roots_match_an_independent_reading(corpus: Path) -> None:
    manifest = ingest(corpus, workers=1)
    files = {f.name: f for f in manifest.files}
    assert sorted(files) == [
        "books.parquet",
        "lines.txt",
        "more.txt.gz",
        "web/part-0.jsonl",
        "web/part-1.jsonl.gz",
        "web/part-2.jsonl.zst",
    ]
    part0 = (corpus / "web/part-0.jsonl").read_bytes()
    expected = {
        "web/part-0.jsonl": jsonl_documents(part0),
        "web/part-1.jsonl.gz": [t.encode() for t in texts(300)],
        "web/part-2.jsonl.zst": [t.encode() for t in texts(5)],
        "books.parquet": [
            t.encode() for t in pq.read_table(corpus / "books.parquet").column("text").to_pylist()
        ],
        "lines.txt": [b"one", b"two", b"three"],
        "more.txt.gz": text_documents("\n".join(texts(50)).encode()),
    }
    for name, documents in expected.items():
        f = files[name]
        assert f.records == len(documents), name
        assert f.document_root == root_of(documents), name
        assert f.stats.document_bytes == sum(map(len, documents)), name
        assert f.stats.characters == sum(len(d.decode()) for d in documents), name
        assert f.stats.estimated_tokens == estimate_tokens(f.stats.document_bytes)
    assert manifest.records == sum(len(d) for d in expected.values())


def test_blob_digest_and_size_are_over_the_stored_bytes(corpus: Path) -> None:
    import hashlib

    manifest = ingest(corpus, workers=1)
    for f in manifest.files:
        stored = (corpus / f.name).read_bytes()
        assert f.size == len(stored)
        assert f.sha256 == hashlib.sha256(stored).hexdigest()


def test_media_types(corpus: Path) -> None:
    manifest = ingest(corpus, workers=1)
    assert {f.name: f.media_type for f in manifest.files} == {
        "books.parquet": "application/x-parquet",
        "lines.txt": "text/plain",
        "more.txt.gz": "text/plain+gzip",
        "web/part-0.jsonl": "application/jsonl",
        "web/part-1.jsonl.gz": "application/jsonl+gzip",
        "web/part-2.jsonl.zst": "application/jsonl+zstd",
    }


def test_same_documents_same_root_whatever_the_container(tmp_path: Path) -> None:
    documents = texts(1200)
    records = [{"text": t} for t in documents]
    write_jsonl(tmp_path / "a.jsonl", records)
    write_jsonl(tmp_path / "b.jsonl.gz", records, "gzip")
    write_jsonl(tmp_path / "c.jsonl.zst", records, "zstd")
    write_parquet(tmp_path / "d.parquet", {"text": documents}, row_group_size=100)
    write_parquet(tmp_path / "e.parquet", {"text": pa.array(documents, pa.large_string())})
    write_bytes(tmp_path / "f.txt", "\n".join(d for d in documents if d).encode())
    manifest = ingest(tmp_path, workers=1)
    non_empty = [d.encode() for d in documents if d]
    for f in manifest.files:
        expected = non_empty if f.name == "f.txt" else [d.encode() for d in documents]
        assert f.document_root == root_of(expected), f.name


def test_deterministic_version_id(tmp_path: Path) -> None:
    first = build_corpus(tmp_path / "one")
    second = build_corpus(tmp_path / "two")
    a = ingest(first, workers=1)
    b = ingest(second, workers=1)
    assert a.version_id == b.version_id
    assert a.canonical == b.canonical
    assert a.version_id.startswith("sha256:") and len(a.version_id) == 71
    # Touching a file's times changes nothing; changing a byte changes the id.
    os.utime(second / "lines.txt", (1, 1))
    assert ingest(second, workers=1).version_id == a.version_id
    write_bytes(second / "lines.txt", b"one\ntwo\n")
    assert ingest(second, workers=1).version_id != a.version_id


def test_parallel_equals_sequential(corpus: Path) -> None:
    sequential = ingest(corpus, workers=1)
    parallel = ingest(corpus, workers=2)
    assert parallel == sequential
    assert parallel.version_id == sequential.version_id


def test_progress_counts_every_stored_byte_once(corpus: Path) -> None:
    for workers in (1, 2):
        events: list[IngestProgress] = []
        manifest = ingest(corpus, workers=workers, progress=events.append)
        last = events[-1]
        assert last.bytes_done == last.bytes_total == manifest.size
        assert last.files_done == last.files_total == len(manifest.files)
        done = [e.bytes_done for e in events]
        assert done == sorted(done)


def test_each_file_is_reported_once_as_soon_as_it_is_done(corpus: Path) -> None:
    for workers in (1, 2):
        done: list[FileManifest] = []
        manifest = ingest(corpus, workers=workers, on_file=done.append)
        assert sorted(done, key=lambda f: f.name) == list(manifest.files)


def test_ingest_accepts_scanned_files_and_lists_of_paths(corpus: Path) -> None:
    expected = ingest(corpus, workers=1)
    assert ingest(scan(corpus), workers=1) == expected
    assert ingest([corpus], workers=1) == expected


def test_statistics_and_languages(tmp_path: Path) -> None:
    english = ["the cat is in the house and it was happy with the dog"] * 100
    german = ["der Hund ist nicht in dem Haus und die Katze auch nicht"] * 100
    write_jsonl(tmp_path / "en.jsonl", [{"text": t} for t in english])
    write_jsonl(tmp_path / "de.jsonl", [{"text": t} for t in german])
    write_bytes(tmp_path / "ru.txt", "\n".join(["и это не то, что он на самом деле"] * 70).encode())
    manifest = ingest(tmp_path, workers=1)
    en, de, ru = (manifest.file(n) for n in ("en.jsonl", "de.jsonl", "ru.txt"))
    # Sample: records 0..63, and documents whose hash starts with nine zero bits (none here).
    assert en.stats.language_counts == {"en": 64}
    assert de.stats.language_counts == {"de": 64}
    assert ru.stats.language_counts == {"ru": 64}
    assert en.stats.language_sample == 64
    assert en.stats.characters == sum(len(t) for t in english)
    assert ru.stats.characters == 70 * len("и это не то, что он на самом деле")
    assert ru.stats.document_bytes == 70 * len("и это не то, что он на самом деле".encode())


def test_jsonl_schema_lists_kinds_of_every_member(tmp_path: Path) -> None:
    records = [
        {"text": "a", "id": 1, "meta": {"k": 1}, "tags": ["x"]},
        {"text": "b", "id": 2.5, "score": None, "flag": True},
        {"text": "c", "id": "three", "score": None},
    ]
    write_jsonl(tmp_path / "a.jsonl", records)
    f = ingest_file(tmp_path / "a.jsonl", name="a.jsonl")
    assert {s.name: s.type for s in f.schema} == {
        "flag": "boolean",
        "id": "number|string",
        "meta": "object",
        "score": "null",
        "tags": "array",
        "text": "string",
    }


def test_parquet_schema_uses_stable_type_names(tmp_path: Path) -> None:
    table = pa.table(
        {
            "text": pa.array(["a", "b"], pa.large_string()),
            "n": pa.array([1, 2], pa.int32()),
            "tags": pa.array([["x"], []], pa.list_(pa.string())),
            "meta": pa.array([{"k": 1.5}, {"k": None}]),
            "cat": pa.array(["x", "y"]).dictionary_encode(),
        }
    )
    pq.write_table(table, tmp_path / "a.parquet")
    f = ingest_file(tmp_path / "a.parquet", name="a.parquet")
    assert [(s.name, s.type) for s in f.schema] == [
        ("text", "string"),
        ("n", "int32"),
        ("tags", "list<string>"),
        ("meta", "struct<k: double>"),
        ("cat", "string"),
    ]
    assert f.records == 2


def test_parquet_dictionary_text_column(tmp_path: Path) -> None:
    documents = ["x", "y", "x", "z"]
    table = pa.table({"text": pa.array(documents).dictionary_encode()})
    pq.write_table(table, tmp_path / "a.parquet")
    f = ingest_file(tmp_path / "a.parquet", name="a.parquet")
    assert f.document_root == root_of([d.encode() for d in documents])


def test_text_field_option(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"body": "x", "text": 1}, {"body": "y"}])
    write_parquet(tmp_path / "b.parquet", {"body": ["p", "q", "r"]})
    manifest = ingest(tmp_path, options=IngestOptions(text_field="body"), workers=1)
    a, b = manifest.files
    assert (a.records, a.document_rule) == (2, "field:body")
    assert a.document_root == root_of([b"x", b"y"])
    assert (b.records, b.document_root) == (3, root_of([b"p", b"q", b"r"]))


def test_text_unit_file(tmp_path: Path) -> None:
    content = "\ufeffA whole book.\n\nChapter two.\r\n".encode()
    write_bytes(tmp_path / "book.txt", content)
    write_bytes(tmp_path / "empty.txt", b"")
    manifest = ingest(tmp_path, options=IngestOptions(text_unit="file"), workers=1)
    book, empty = manifest.files
    body = content[3:]  # without the byte order mark
    assert (book.records, book.document_rule) == (1, "file")
    assert book.document_root == root_of([body])
    assert book.stats.characters == len(body.decode())
    assert empty.records == 0 and empty.document_root == root_of([])


def test_text_lines_crlf_blank_lines_and_bom(tmp_path: Path) -> None:
    data = "\ufeffalpha\r\n\r\n  \nbeta\rgamma\n\nlast".encode()
    write_bytes(tmp_path / "a.txt", data)
    f = ingest_file(tmp_path / "a.txt", name="a.txt")
    documents = [b"alpha", b"  ", b"beta\rgamma", b"last"]
    assert f.records == 4
    assert f.document_root == root_of(documents)
    assert f.stats.document_bytes == sum(map(len, documents))
    assert f.stats.characters == sum(map(len, documents))


def test_jsonl_blank_lines_crlf_bom_and_escapes(tmp_path: Path) -> None:
    data = (
        b'\xef\xbb\xbf{"text": "caf\\u00e9 \\ud83d\\ude00"}\r\n'
        b"\n"
        b"   \t\r\n"
        b'{"text": "line\\nbreak", "n": 1e400}\n'
        b'  {"text": ""}  '
    )
    write_bytes(tmp_path / "a.jsonl", data)
    f = ingest_file(tmp_path / "a.jsonl", name="a.jsonl")
    documents = ["café 😀".encode(), b"line\nbreak", b""]
    assert f.records == 3
    assert f.document_root == root_of(documents)
    assert f.stats.characters == len("café 😀") + len("line\nbreak")


def test_empty_and_blank_files_have_no_documents(tmp_path: Path) -> None:
    write_bytes(tmp_path / "a.jsonl", b"")
    write_bytes(tmp_path / "b.jsonl.gz", b"\n\n", "gzip")
    write_bytes(tmp_path / "c.txt", b"\n\r\n")
    write_jsonl(tmp_path / "d.jsonl", [{"text": "only"}])
    manifest = ingest(tmp_path, workers=1)
    assert [f.records for f in manifest.files] == [0, 0, 0, 1]
    assert manifest.files[0].document_root == root_of([])


def test_large_jsonl_crosses_block_boundaries(tmp_path: Path) -> None:
    # > 8 MiB, so the reader cuts line blocks inside the file (and gzip output in chunks).
    documents = [f"{i:08d} " + "x" * 1000 for i in range(9000)]
    data = jsonl_bytes({"text": d} for d in documents)
    assert len(data) > 8 << 20
    write_bytes(tmp_path / "a.jsonl", data)
    write_bytes(tmp_path / "b.jsonl.gz", data, "gzip")
    write_bytes(tmp_path / "c.txt.zst", "\n".join(documents).encode(), "zstd")
    manifest = ingest(tmp_path, workers=1)
    expected = root_of([d.encode() for d in documents])
    assert {f.document_root for f in manifest.files} == {expected}
    assert {f.records for f in manifest.files} == {9000}


def test_concatenated_gzip_members(tmp_path: Path) -> None:
    import gzip

    one = jsonl_bytes([{"text": "a"}, {"text": "b"}])
    two = jsonl_bytes([{"text": "c"}])
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(one) + gzip.compress(two))
    f = ingest_file(tmp_path / "a.jsonl.gz", name="a.jsonl.gz")
    assert f.document_root == root_of([b"a", b"b", b"c"])


def test_concatenated_zstd_frames(tmp_path: Path) -> None:
    one = compress(b"a\nb\n", "zstd")
    two = compress(b"c\n", "zstd")
    (tmp_path / "a.txt.zst").write_bytes(one + two)
    f = ingest_file(tmp_path / "a.txt.zst", name="a.txt.zst")
    assert f.document_root == root_of([b"a", b"b", b"c"])


def test_verify_file_accepts_the_truth_and_names_each_lie(corpus: Path) -> None:
    manifest = ingest(corpus, workers=1)
    claimed = manifest.file("web/part-0.jsonl")
    assert verify_file(corpus / "web/part-0.jsonl", claimed=claimed) == claimed
    data = claimed.to_json()
    data["records"] += 1
    data["stats"]["characters"] -= 1
    forged = FileManifest.from_json(data)
    with pytest.raises(ClaimMismatchError) as info:
        verify_file(corpus / "web/part-0.jsonl", claimed=forged)
    assert set(info.value.differences) == {"records", "stats"}
    assert info.value.differences["records"] == (claimed.records + 1, claimed.records)


def test_verify_file_uses_the_claimed_rule(tmp_path: Path) -> None:
    write_bytes(tmp_path / "book.txt", b"one\ntwo\n")
    claimed = ingest(tmp_path, options=IngestOptions(text_unit="file"), workers=1).files[0]
    assert verify_file(tmp_path / "book.txt", claimed=claimed).records == 1


def test_manifest_json_round_trip(corpus: Path) -> None:
    from catalog import VersionManifest

    manifest = ingest(corpus, workers=1)
    again = VersionManifest.from_bytes(json.dumps(manifest.to_json()).encode())
    assert again == manifest
    assert again.version_id == manifest.version_id
    assert again.manifest_root == manifest.manifest_root


def test_copied_corpus_same_manifest(tmp_path: Path) -> None:
    original = build_corpus(tmp_path / "a")
    copy = tmp_path / "b"
    shutil.copytree(original, copy)
    assert ingest(copy, workers=1).version_id == ingest(original, workers=1).version_id


def test_jsonl_schema_keeps_the_smallest_member_names(tmp_path: Path) -> None:
    from catalog.readers import MAX_SCHEMA_FIELDS

    records = [{"text": "x", f"k{i:05d}": i} for i in range(3000, -1, -1)]
    write_jsonl(tmp_path / "a.jsonl", records)
    f = ingest_file(tmp_path / "a.jsonl", name="a.jsonl")
    names = [s.name for s in f.schema]
    assert len(names) == MAX_SCHEMA_FIELDS
    assert names == sorted([f"k{i:05d}" for i in range(3001)] + ["text"])[:MAX_SCHEMA_FIELDS]


def test_parquet_long_documents_after_nested_columns(tmp_path: Path) -> None:
    documents = [f"{i} " + "long text " * 20_000 for i in range(60)]
    table = pa.table(
        {
            "meta": pa.array([{"a": [1, 2], "b": "x"}] * 60),
            "tags": pa.array([["t"]] * 60),
            "text": documents,
        }
    )
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=25)
    f = ingest_file(tmp_path / "a.parquet", name="a.parquet")
    assert f.records == 60
    assert f.document_root == root_of([d.encode() for d in documents])


def test_under_a_deep_temp_dir_workers_are_spawned_and_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fork server's socket would not fit in a Unix socket path there (a server with a deep
    TMPDIR failed every upload with 'AF_UNIX path too long')."""
    import tempfile
    from concurrent.futures import ProcessPoolExecutor

    from catalog.ingest import pool_context

    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    context = pool_context()
    assert context.get_start_method() == "spawn"
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        assert pool.submit(len, "abc").result(timeout=120) == 3


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_parquet_values_of_a_sliced_array(kind: pa.DataType) -> None:
    """The reader's documents are the values' bytes, also for an array that starts inside its
    buffers (an Arrow slice: offsets that do not start at 0)."""
    from catalog.readers import _arrow_documents

    values = ["alpha", "béta", "", "gamma delta", "日本語"] * 3
    array = pa.array(values, type=kind).slice(6, 7)
    documents, part = _arrow_documents(array)
    assert documents == [v.encode() for v in values[6:13]]
    assert bytes(part) == "".join(values[6:13]).encode()


FORKSERVER_PROBE = """
import sys
from concurrent.futures import ProcessPoolExecutor
from catalog.ingest import pool_context

if __name__ == "__main__":
    with ProcessPoolExecutor(1, mp_context=pool_context()) as pool:
        print(pool.submit(eval, "'catalog.forkserver_exit' in __import__('sys').modules").result())
"""

TEARDOWN_PROBE = """
import sys
if sys.argv[1] == "quick":
    import catalog.forkserver_exit

class Noted:
    def __del__(self):
        print("torn down", flush=True)

kept = Noted()
print("done", flush=True)
"""


def test_the_fork_server_ends_without_tearing_its_interpreter_down(tmp_path: Path) -> None:
    """The fork server (where workers come from, so they show what it imported) preloads
    catalog.forkserver_exit, which ends a process at its exit handlers: a module's objects are
    then never torn down (the fork server's took ~0.1 s while it held the command's output)."""
    script = tmp_path / "probe.py"
    script.write_text(FORKSERVER_PROBE)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True"]
    outputs: dict[str, list[str]] = {}
    for mode in ("quick", "normal"):
        ran = subprocess.run(
            [sys.executable, "-c", TEARDOWN_PROBE, mode], capture_output=True, text=True, timeout=60
        )
        assert ran.returncode == 0, ran.stderr
        outputs[mode] = ran.stdout.split("\n")
    assert outputs == {"quick": ["done", ""], "normal": ["done", "torn down", ""]}
