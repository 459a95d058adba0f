"""The compiled UTF-8 check and column split (catalog/_text.c) against Python's own.

The readers trust ``utf8_length`` instead of decoding a block: it must accept exactly what
Python's strict decoder accepts, and count what ``len(decoded)`` counts. ``split`` replaces
slicing a Parquet column's values at its offsets: it must give the same bytes, and refuse
offsets that would read outside its buffer.
"""

from __future__ import annotations

import itertools
import random

import pyarrow as pa  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog import readers

_text = readers._native_text


def test_the_compiled_module_is_built() -> None:
    """The project's install builds it (setup.py); without it the readers decode instead, and
    the other tests here fail on a None."""
    assert _text is not None


def _python_length(data: bytes) -> int | None:
    try:
        return len(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def _check(data: bytes) -> None:
    assert _text is not None
    assert _text.utf8_length(data) == _python_length(data), data


def test_every_sequence_of_up_to_four_bytes_around_the_boundaries() -> None:
    """Every lead byte, followed by every byte that matters to it (the edges of each range the
    table of well-formed sequences names), cut off at every length: overlong forms, surrogates,
    code points above U+10FFFF, stray continuation bytes and truncated sequences."""
    edges = sorted({0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xFF})
    for lead in range(256):
        _check(bytes([lead]))
        for second, third in itertools.product(edges, repeat=2):
            for fourth in (0x80, 0xBF, 0x41):
                sequence = bytes([lead, second, third, fourth])
                for cut in range(2, 5):
                    _check(sequence[:cut])
                    _check(b"abc" + sequence[:cut] + b"xyz")


def test_every_code_point_is_counted_once() -> None:
    """All of Unicode but the surrogates, encoded, in one block and one by one at every offset
    around the 16-byte steps of the ASCII fast path."""
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    _check(every.encode())
    for c in (0x7F, 0x80, 0x7FF, 0x800, 0xFFFF, 0x10000, 0x10FFFF):
        for offset in range(40):
            _check(b"a" * offset + chr(c).encode() + b"b" * 20)
            _check((b"a" * offset + chr(c).encode())[:-1])


def test_a_bad_byte_at_every_offset_of_ascii_text() -> None:
    for bad in (0x80, 0xC3, 0xED, 0xF4, 0xFF):
        for offset in range(70):
            data = bytearray(b"x" * 70)
            data[offset] = bad
            _check(bytes(data))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.integers(0, 199), st.integers(0, 255))
def test_text_with_one_byte_changed(text: str, where: int, value: int) -> None:
    data = bytearray(text.encode())
    if data:
        data[where % len(data)] = value
    _check(bytes(data))


def test_any_buffer_is_read() -> None:
    assert _text is not None
    data = "é日本語 and more".encode()
    assert _text.utf8_length(memoryview(data)[2:]) == len(data[2:].decode())
    assert _text.utf8_length(bytearray(data)) == len(data.decode())
    assert _text.utf8_length(b"") == 0


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_split_gives_the_values_of_an_arrow_column(kind: pa.DataType) -> None:
    """The reader's documents, compiled and sliced in Python, for whole and sliced arrays (whose
    offsets do not start at 0)."""
    rng = random.Random(11)
    values = ["".join(rng.choice("ab é日\n") for _ in range(rng.randrange(40))) for _ in range(500)]
    array = pa.array(values, type=kind)
    for piece in (array, array.slice(0, 0), array.slice(7, 300), array.slice(499)):
        documents, part = readers._arrow_documents(piece)
        expected = [v.as_py().encode() for v in piece]
        assert documents == expected
        assert bytes(part) == b"".join(expected)
        assert all(type(d) is bytes for d in documents)


def test_split_refuses_offsets_outside_the_data() -> None:
    assert _text is not None
    offsets = (0).to_bytes(4, "little") + (3).to_bytes(4, "little") + (9).to_bytes(4, "little")
    assert _text.split(b"abcdefghi", offsets, 4) == [b"abc", b"defghi"]
    with pytest.raises(ValueError, match="past the data"):
        _text.split(b"abcdefgh", offsets, 4)
    backwards = (5).to_bytes(8, "little") + (2).to_bytes(8, "little")
    with pytest.raises(ValueError, match="out of order"):
        _text.split(b"abcdefgh", backwards, 8)
    with pytest.raises(ValueError, match="4 or 8"):
        _text.split(b"abc", offsets, 2)
    with pytest.raises(ValueError, match="4 or 8"):
        _text.split(b"abc", b"", 4)
    with pytest.raises(ValueError, match="4 or 8"):
        _text.split(b"abc", offsets[:-1], 8)
    assert _text.split(b"", (0).to_bytes(4, "little"), 4) == []
