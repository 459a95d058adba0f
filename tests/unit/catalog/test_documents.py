"""The document definition: names to formats, leaves, and the streaming document tree."""

from __future__ import annotations

import hashlib

import pytest

from catalog.documents import (
    DocumentTree,
    Format,
    IngestOptions,
    classify_name,
    document_leaf,
    document_leaves,
    document_root,
    logical_name,
)
from catalog.errors import IngestError
from ledger.merkle import EMPTY_ROOT, leaf_hash, tree_root


def test_leaf_is_rfc6962_leaf_over_the_document_sha256() -> None:
    document = "naïve café".encode()
    digest = hashlib.sha256(document).digest()
    expected = hashlib.sha256(b"\x00" + digest).digest()
    assert document_leaf(digest) == expected == leaf_hash(digest)
    assert document_leaves([document]) == [expected]


def test_document_leaf_refuses_a_non_hash() -> None:
    with pytest.raises(IngestError):
        document_leaf(b"short")


@pytest.mark.parametrize(
    "size", [0, 1, 2, 3, 5, 1023, 1024, 1025, 2047, 2048, 3000, 4096 + 1024 + 7]
)
def test_document_tree_equals_ledger_tree_root(size: int) -> None:
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size)]
    expected = tree_root(leaves)
    tree = DocumentTree()
    # Uneven batches, so chunk boundaries fall inside them.
    for start in range(0, size, 777):
        tree.extend(leaves[start : start + 777])
    assert tree.size == size
    assert tree.root() == expected
    if size == 0:
        assert tree.root() == EMPTY_ROOT


def test_document_root_of_documents() -> None:
    documents = [b"a", b"", b"\xe2\x98\x83"]
    leaves = [leaf_hash(hashlib.sha256(d).digest()) for d in documents]
    assert document_root(documents) == tree_root(leaves)


@pytest.mark.parametrize(
    ("name", "fmt", "compression", "media_type"),
    [
        ("a.parquet", Format.PARQUET, None, "application/x-parquet"),
        ("d/a.jsonl", Format.JSONL, None, "application/jsonl"),
        ("a.NDJSON", Format.JSONL, None, "application/jsonl"),
        ("a.jsonl.gz", Format.JSONL, "gzip", "application/jsonl+gzip"),
        ("a.jsonl.zst", Format.JSONL, "zstd", "application/jsonl+zstd"),
        ("a.txt", Format.TEXT, None, "text/plain"),
        ("a.txt.gz", Format.TEXT, "gzip", "text/plain+gzip"),
        ("a.TXT.ZST", Format.TEXT, "zstd", "text/plain+zstd"),
    ],
)
def test_classify_name(name: str, fmt: Format, compression: str | None, media_type: str) -> None:
    kind = classify_name(name)
    assert (kind.format, kind.compression, kind.media_type) == (fmt, compression, media_type)


@pytest.mark.parametrize(
    "name", ["a.csv", "a.json", "a.gz", "a.parquet.gz", "a.parquet.zst", "parquet", ".txt", "a"]
)
def test_classify_name_refuses(name: str) -> None:
    with pytest.raises(IngestError) as info:
        classify_name(name)
    assert info.value.file == name


def test_logical_name_drops_compression_suffix() -> None:
    assert logical_name("x/a.jsonl.GZ") == "x/a.jsonl"
    assert logical_name("a.jsonl") == "a.jsonl"


def test_options_rules_round_trip() -> None:
    options = IngestOptions(text_field="content")
    assert options.document_rule(Format.JSONL) == "field:content"
    assert options.document_rule(Format.TEXT) == "line"
    assert IngestOptions.for_rule("field:content").text_field == "content"
    assert IngestOptions.for_rule("file").text_unit == "file"
    for bad in ("field:", "lines", ""):
        with pytest.raises(IngestError):
            IngestOptions.for_rule(bad)


def test_options_refuse_nonsense() -> None:
    with pytest.raises(IngestError):
        IngestOptions(text_field="")
    with pytest.raises(IngestError):
        IngestOptions(text_unit="paragraph")  # type: ignore[arg-type]
    with pytest.raises(IngestError):
        IngestOptions(max_document_bytes=0)
