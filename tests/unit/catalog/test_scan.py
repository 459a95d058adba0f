"""Scanning folders: names, hidden files, symlinks, clashes, and names that are unsafe."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

from catalog import IngestError, ingest_file, scan, validate_name
from tests.unit.catalog.corpora import write_bytes, write_jsonl


def names(path: Path | list[Path]) -> list[str]:
    return [s.name for s in scan(path)]


def test_names_are_relative_with_slashes_and_sorted(tmp_path: Path) -> None:
    write_bytes(tmp_path / "b" / "c" / "x.txt", b"x")
    write_bytes(tmp_path / "a.txt", b"a")
    write_bytes(tmp_path / "b" / "y.jsonl", b"")
    assert names(tmp_path) == ["a.txt", "b/c/x.txt", "b/y.jsonl"]
    source = scan(tmp_path)[0]
    assert (source.size, source.media_type) == (1, "text/plain")


def test_hidden_entries_are_skipped(tmp_path: Path) -> None:
    write_bytes(tmp_path / ".DS_Store", b"junk")
    write_bytes(tmp_path / ".git" / "config.txt", b"junk")
    write_bytes(tmp_path / "a.txt", b"a")
    assert names(tmp_path) == ["a.txt"]


def test_files_given_directly_are_named_by_base_name(tmp_path: Path) -> None:
    a = write_bytes(tmp_path / "x" / "a.txt", b"a")
    b = write_bytes(tmp_path / "y" / "b.jsonl", b"")
    assert names([a, b]) == ["a.txt", "b.jsonl"]


def test_unknown_extension(tmp_path: Path) -> None:
    write_bytes(tmp_path / "README.md", b"# hi")
    with pytest.raises(IngestError) as info:
        scan(tmp_path)
    assert info.value.file == "README.md" and "unknown file type" in info.value.reason


def test_exact_duplicate_names(tmp_path: Path) -> None:
    a = write_bytes(tmp_path / "x" / "a.txt", b"a")
    b = write_bytes(tmp_path / "y" / "a.txt", b"b")
    with pytest.raises(IngestError, match="two files have this name") as info:
        scan([a, b])
    assert info.value.file == "a.txt"


@pytest.mark.parametrize(
    ("first", "second"),
    [("a.jsonl", "A.JSONL"), ("a.jsonl", "a.jsonl.gz"), ("a.txt.gz", "a.txt.zst")],
)
def test_clashing_names(tmp_path: Path, first: str, second: str) -> None:
    write_bytes(tmp_path / "one" / first, b"")
    write_bytes(tmp_path / "two" / second, b"")
    with pytest.raises(IngestError, match="clashes with"):
        scan([tmp_path / "one" / first, tmp_path / "two" / second])


def test_file_and_folder_with_one_name(tmp_path: Path) -> None:
    write_bytes(tmp_path / "one" / "a.txt", b"")
    write_bytes(tmp_path / "two" / "a.txt" / "b.txt", b"")
    with pytest.raises(IngestError, match="both a file and a folder"):
        scan([tmp_path / "one" / "a.txt", tmp_path / "two"])


def test_symlink_inside_the_folder_is_followed(tmp_path: Path) -> None:
    write_bytes(tmp_path / "data" / "real.txt", b"a\nb\n")
    os.symlink("real.txt", tmp_path / "data" / "link.txt")
    sources = scan(tmp_path / "data")
    assert [s.name for s in sources] == ["link.txt", "real.txt"]
    assert sources[0].size == 4


def test_symlink_outside_the_folder_is_refused(tmp_path: Path) -> None:
    write_bytes(tmp_path / "secret.txt", b"secret")
    write_bytes(tmp_path / "data" / "ok.txt", b"ok")
    os.symlink(tmp_path / "secret.txt", tmp_path / "data" / "evil.txt")
    with pytest.raises(IngestError, match="outside the folder") as info:
        scan(tmp_path / "data")
    assert info.value.file == "evil.txt"
    os.remove(tmp_path / "data" / "evil.txt")
    os.symlink("../secret.txt", tmp_path / "data" / "evil.txt")
    with pytest.raises(IngestError, match="outside the folder"):
        scan(tmp_path / "data")


def test_symlinked_folder_and_broken_symlink(tmp_path: Path) -> None:
    write_bytes(tmp_path / "data" / "sub" / "a.txt", b"a")
    os.symlink("sub", tmp_path / "data" / "loop")
    with pytest.raises(IngestError, match="symlink to a folder"):
        scan(tmp_path / "data")
    os.remove(tmp_path / "data" / "loop")
    os.symlink("missing.txt", tmp_path / "data" / "broken.txt")
    with pytest.raises(IngestError, match="broken symlink"):
        scan(tmp_path / "data")


def test_non_regular_file_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    with pytest.raises(IngestError, match="not a regular file") as info:
        scan(tmp_path)
    assert info.value.file == "pipe.txt"
    with pytest.raises(IngestError, match="not a regular file"):
        scan(tmp_path / "pipe.txt")


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="cannot read"):
        scan(tmp_path / "nope")


def test_names_are_nfc(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "café.txt")
    write_bytes(tmp_path / decomposed, b"x")
    assert names(tmp_path) == [unicodedata.normalize("NFC", "café.txt")]


def test_undecodable_name_is_refused(tmp_path: Path) -> None:
    os.close(os.open(os.path.join(os.fsencode(tmp_path), b"bad\xff.txt"), os.O_CREAT | os.O_WRONLY))
    with pytest.raises(IngestError, match="not valid UTF-8"):
        scan(tmp_path)


@pytest.mark.parametrize(
    "name",
    [
        "../a.txt",
        "a/../../b.txt",
        "/etc/a.txt",
        "a//b.txt",
        "./a.txt",
        "a\\b.txt",
        "a\nb.txt",
        "a\x00.txt",
        "",
        "x" * 300 + ".txt",
        unicodedata.normalize("NFD", "café.txt"),
    ],
)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(IngestError):
        validate_name(name)


def test_ingest_file_refuses_a_traversing_name(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "x"}])
    with pytest.raises(IngestError, match="path traversal"):
        ingest_file(path, name="../../etc/a.jsonl")


def test_safe_names() -> None:
    for name in ("a.txt", "dir/sub dir/ünïcode 文件.jsonl.zst", "a..b.txt", "...txt"):
        assert validate_name(name) == name
