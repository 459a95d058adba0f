"""Line blocks read straight from an uncompressed file (``file_line_blocks``) against the blocks
gathered from chunks (``line_blocks``, which compressed files still use), and whole files read
both ways (plain and gzip) into the same manifest."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog import IngestError, ingest_file, streams
from catalog.documents import IngestOptions
from catalog.streams import (
    UTF8_BOM,
    LongLineError,
    StoredFile,
    decompressed_chunks,
    file_line_blocks,
    line_blocks,
)

LINES = st.lists(st.binary(max_size=90).map(lambda b: b.replace(b"\n", b"")), max_size=40)


def _read(path: Path, max_line: int, *, direct: bool) -> tuple[list[bytes], str | None]:
    """The blocks (copied: a direct block is only valid until the next) and any error."""
    blocks: list[bytes] = []
    with StoredFile(path, name=path.name) as stored:
        source = (
            file_line_blocks(stored, max_line=max_line)
            if direct
            else line_blocks(decompressed_chunks(stored, None), name=path.name, max_line=max_line)
        )
        try:
            for block in source:
                blocks.append(bytes(block))
        except LongLineError as exc:
            return blocks, str(exc)
    return blocks, None


@settings(max_examples=300, deadline=None)
@given(lines=LINES, bom=st.booleans(), final_newline=st.booleans(), block=st.sampled_from([16, 64]))
def test_direct_blocks_hold_the_same_lines(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
    bom: bool,
    final_newline: bool,
    block: int,
) -> None:
    """Short lines (none over the limit): the same bytes, the byte order mark dropped, and every
    block but the last ends with LF; each block is about BLOCK_SIZE, never just a line."""
    data = (UTF8_BOM if bom else b"") + b"\n".join(lines) + (b"\n" if final_newline else b"")
    path = tmp_path_factory.mktemp("blocks") / "a.txt"
    path.write_bytes(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(streams, "BLOCK_SIZE", block)
        patch.setattr(streams, "CHUNK_SIZE", 7)
        direct, error = _read(path, 1000, direct=True)
        gathered, gathered_error = _read(path, 1000, direct=False)
    assert error is None and gathered_error is None
    expected = data.removeprefix(UTF8_BOM)
    assert b"".join(direct) == b"".join(gathered) == expected
    assert all(b.endswith(b"\n") for b in direct[:-1])
    assert all(direct)  # no empty block
    assert len(direct) <= len(expected) // (block // 2) + 2


@pytest.mark.parametrize("limit", [100, 300])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_long_unfinished_line_stops_the_reading(tmp_path: Path, where: str, limit: int) -> None:
    """A line over the limit raises once it is unfinished beyond the limit, after the complete
    lines before it were handed over, and long before the rest of it is read: within the block
    read (a limit below the block size) or the next one."""
    before = [b"short line %d" % i for i in range(5)] if where != "first" else []
    long = b"y" * 5000
    after = [] if where == "last" else [b"after"]
    path = tmp_path / "a.txt"
    path.write_bytes(b"\n".join([*before, long, *after]) + b"\n")
    read: list[int] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(streams, "BLOCK_SIZE", 256)
        with StoredFile(path, name="a.txt", progress=read.append) as stored:
            blocks: list[bytes] = []
            with pytest.raises(LongLineError, match=f"longer than the limit of {limit} bytes"):
                for block in file_line_blocks(stored, max_line=limit):
                    blocks.append(bytes(block))
    assert b"".join(blocks) == b"".join(line + b"\n" for line in before)
    assert sum(read) <= 256 * (2 if limit > 256 else 1)


def test_a_line_that_grows_the_buffer_is_read_whole(tmp_path: Path) -> None:
    """A line longer than a block, within the limit: the buffer grows around it."""
    lines = [b"a", b"b" * 1000, b"c", b"d" * 3000, b"e"]
    path = tmp_path / "a.txt"
    path.write_bytes(b"\n".join(lines))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(streams, "BLOCK_SIZE", 128)
        blocks, error = _read(path, 4000, direct=True)
    assert error is None and b"".join(blocks) == b"\n".join(lines)
    assert all(b.endswith(b"\n") for b in blocks[:-1])


@pytest.mark.parametrize("suffix", [".jsonl", ".txt"])
def test_plain_and_gzip_files_ingest_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """The plain file is read directly, its gzip copy through the chunks: the same documents,
    root, counts and statistics, with blocks far smaller than the file (and a BOM)."""
    monkeypatch.setattr(streams, "BLOCK_SIZE", 128)
    texts = [("é" if i % 5 == 0 else "") + f"doc {i} " + "word " * (i % 40) for i in range(400)]
    if suffix == ".jsonl":
        lines = [f'{{"text": "{t}", "n": {i}}}' for i, t in enumerate(texts)]
    else:
        lines = texts
    data = UTF8_BOM + "\n".join(lines).encode() + b"\n"
    plain = tmp_path / f"a{suffix}"
    plain.write_bytes(data)
    packed = tmp_path / f"a{suffix}.gz"
    packed.write_bytes(gzip.compress(data))
    one = ingest_file(plain, name=plain.name)
    other = ingest_file(packed, name=packed.name)
    assert one.entry.records == other.entry.records == len(texts)
    assert one.entry.document_root == other.entry.document_root
    assert one.stats == other.stats and one.schema == other.schema


def test_an_error_in_a_late_block_names_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invalid UTF-8 many blocks in: the record and line are counted across the blocks."""
    monkeypatch.setattr(streams, "BLOCK_SIZE", 64)
    lines = [b'{"text": "record %d"}' % i for i in range(200)]
    lines[150] = b'{"text": "bad \xff byte"}'
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(IngestError) as info:
        ingest_file(path, name="a.jsonl", options=IngestOptions())
    assert (info.value.record, info.value.line) == (150, 151)
    assert "invalid UTF-8" in info.value.reason
