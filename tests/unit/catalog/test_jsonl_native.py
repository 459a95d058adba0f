"""The JSON Lines reader's compiled fast path (catalog/_jsonl.c) against the decoder.

The fast path either reads a block exactly as the standard library's decoder does — the same
documents, character counts, schema and record numbering — or declines it, and the decoder then
gives the records or the exact error. So for any bytes at all, ingesting with and without it
must give the same manifest, or the same error. The lines below are generated to reach both
sides of every rule: escapes (surrogate pairs, lone surrogates), duplicate names at any depth,
nesting, numbers of every shape, blank and whitespace-padded lines, non-objects, a text member
that is missing or not a string, wide records.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog import readers
from catalog.documents import IngestOptions
from catalog.errors import IngestError
from catalog.ingest import ingest_file

FRAGMENTS = [
    '"text"',
    '"id"',
    '"meta"',
    '"tëxt"',
    ":",
    ",",
    "{",
    "}",
    "[",
    "]",
    " ",
    "\t",
    "\r",
    '"a"',
    '"b\\"c"',
    '"\\u00e9"',
    '"\\ud83d\\ude00"',
    '"\\ud800"',
    '"\\udc00x"',
    '"\\n\\t\\/"',
    '"\\x"',
    '"\x01"',
    "0",
    "-0",
    "1.5e3",
    "01",
    "1.",
    "-",
    "1e+",
    "true",
    "false",
    "null",
    "nul",
    "NaN",
    "Infinity",
    '"日本語"',
    '"é"',
]


def test_the_compiled_module_is_built() -> None:
    """The project's install builds it (setup.py); without it every other test here would
    compare the decoder with itself."""
    assert readers._native_jsonl is not None


def _outcome(path: Path, field: str) -> object:
    try:
        manifest = ingest_file(path, name="part.jsonl", options=IngestOptions(text_field=field))
    except IngestError as exc:
        return ("error", str(exc))
    return manifest.entry, manifest.stats, manifest.schema


def _compare(tmp_path: Path, lines: list[str], field: str = "text") -> None:
    path = tmp_path / "part.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    native = _outcome(path, field)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readers, "_native_jsonl", None)
        assert _outcome(path, field) == native


values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"text": st.text(max_size=30)}, optional={"id": values, "meta": values}
        ),
        min_size=1,
        max_size=8,
    ),
    st.booleans(),
)
def test_valid_records_read_alike(
    tmp_path: Path, records: list[dict[str, object]], ascii: bool
) -> None:
    _compare(tmp_path, [json.dumps(r, ensure_ascii=ascii) for r in records])


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join), max_size=5))
def test_arbitrary_lines_read_or_fail_alike(tmp_path: Path, lines: list[str]) -> None:
    _compare(tmp_path, ['{"text": "ok"}', *lines, '{"text": "last"}'])


@pytest.mark.parametrize(
    "line",
    [
        '{"text": "a", "text": "b"}',
        '{"text": "a", "meta": {"k": 1, "k": 2}}',
        '{"text": "\\ud800"}',
        '{"text": "\\udc00"}',
        '{"text": "\\ud800\\u0041"}',
        '{"text": 5}',
        '{"id": 1}',
        "[1, 2]",
        '  {"text": "leading blanks"}  \r',
        '{"text": "trailing"} x',
        '{"text": "x", "n": NaN}',
        '{"text": "ctrl\x01"}',
        "{" + ", ".join(f'"k{i}": {i}' for i in range(100)) + ', "text": "wide"}',
        '{"text": "deep", "d": ' + "[" * 100 + "]" * 100 + "}",
        '{"te\\u0078t": "escaped name"}',
        '{"text": "pair \\ud83d\\ude00 and \\u00e9 and \\\\ \\" \\/ \\b\\f\\n\\r\\t"}',
        "",
        " \t ",
    ],
)
def test_each_rule_reads_or_fails_alike(tmp_path: Path, line: str) -> None:
    _compare(tmp_path, ['{"text": "first"}', line, '{"text": "after", "extra": [1, {"a": null}]}'])


def test_another_text_member_reads_alike(tmp_path: Path) -> None:
    _compare(tmp_path, ['{"body": "x", "text": 1}', '{"body": "é\\u00e9"}'], field="body")
    _compare(tmp_path, ['{"tëxt": "non-ASCII member name"}'], field="tëxt")


def test_ordinary_records_take_the_fast_path() -> None:
    """What corpora hold is read by the compiled scanner itself, not handed back."""
    assert readers._native_jsonl is not None
    lines = [
        '{"id": 1, "text": "plain", "url": "https://example.org/1"}',
        '{"id": 2.5e3, "text": "esc\\u00e9 \\ud83d\\ude00 \\"q\\"", '
        '"meta": {"lang": "fr", "ok": true}}',
        "",
        '{"text": "日本語", "tags": ["a", null, [1, -0.5]]}\r',
    ]
    seen: dict[bytes, tuple[str | type, ...]] = {}
    found = readers._native_jsonl.scan("\n".join(lines).encode(), b"text", seen)
    assert found is not None
    documents, nbytes, characters, records, shapes, newlines = found
    assert newlines == 3
    assert documents == [b"plain", 'esc\u00e9 \U0001f600 "q"'.encode(), "日本語".encode()]
    assert (nbytes, records) == (sum(map(len, documents)), 3)
    assert characters == sum(len(d.decode()) for d in documents) == 5 + 10 + 3
    assert shapes == [
        ("id", "text", "url", float, str, str),
        ("id", "text", "meta", float, str, dict),
        ("text", "tags", str, list),
    ]
    assert len(seen) == 3
    for block in (b"", b"\n", b'{"text": "a"}\n', b'\n\n{"text": "a"}\n\n \n'):
        again = readers._native_jsonl.scan(block, b"text", {})
        assert again is not None and again[5] == block.count(b"\n")
    # A block it declines adds no shape to what it has seen.
    assert (
        readers._native_jsonl.scan(b'{"text": "new", "n": 1}\n{"text": 1}', b"text", seen) is None
    )
    assert len(seen) == 3


def test_line_numbers_after_many_fast_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scanner counts the blocks' lines (blank ones too): an error after many blocks read by
    it names the same line as the decoder does."""
    from catalog import streams

    monkeypatch.setattr(streams, "BLOCK_SIZE", 64)
    lines = []
    for i in range(300):
        lines.append(f'{{"text": "record {i}"}}')
        if i % 7 == 0:
            lines += ["", "  \t"]
    lines.append('{"text": "broken"')
    _compare(tmp_path, lines)
    outcome = _outcome(tmp_path / "part.jsonl", "text")
    assert isinstance(outcome, tuple) and outcome[0] == "error"
    assert f"line {len(lines)}" in str(outcome[1])


@pytest.mark.parametrize("length", [4079, 4080, 4081, 4096, 8160, 8177, 65_536 + 5])
def test_character_counts_of_long_texts(tmp_path: Path, length: int) -> None:
    """Code points are counted 16 bytes at a time into byte counters that are added up every
    255 steps (4,080 bytes): texts around and past those bounds, with 2-, 3- and 4-byte
    characters at the edges, count as the decoder counts them."""
    text = ("é" + "a" * 13 + "日" + "😀" + "b" * 7)[: length % 23] + "x" * length + "é😀"
    path = tmp_path / "part.jsonl"
    path.write_text(json.dumps({"text": text}, ensure_ascii=False) + "\n", encoding="utf-8")
    manifest = ingest_file(path, name="part.jsonl")
    assert manifest.stats.characters == len(text)
    _compare(tmp_path, [json.dumps({"text": text}, ensure_ascii=False)])
