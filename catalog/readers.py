"""Readers that turn a stored file into batches of documents, one per record format.

Each reader is an iterable of :class:`Batch` and knows the file's schema once exhausted. Readers
apply the document definition of :mod:`catalog.documents` and refuse bad records with an
:class:`IngestError` naming the file, the record (its 0-based index among the file's documents)
and, for line formats, the 1-based line. When several records are bad, the first one in file
order is reported.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from catalog import native
from catalog.documents import Buffer, Format, IngestOptions, SourceKind
from catalog.errors import IngestError
from catalog.manifest import SchemaField
from catalog.streams import (
    UTF8_BOM,
    LongLineError,
    StoredFile,
    decompressed_chunks,
    file_line_blocks,
    line_blocks,
)

__all__ = ["Batch", "DocumentReader", "open_reader"]

PARQUET_BATCH_ROWS = 65_536
PARQUET_BATCH_BYTES = 32 << 20
"""Parquet is read in batches of at most 65 536 rows and, by the footer's sizes, about 32 MiB of
text, whichever is smaller."""
MAX_SCHEMA_FIELDS = 1024
"""A JSON Lines schema lists at most this many member names: the smallest, in code point order."""


@dataclass(slots=True)
class Batch:
    """Consecutive documents of a file: ``documents[i]`` is record ``start + i``.

    ``nbytes`` is their total length and ``characters`` their total count of Unicode code points.
    """

    start: int
    documents: list[Buffer]
    nbytes: int
    characters: int
    digests: list[bytes] | None = None
    """The documents' SHA-256, once ingestion has computed them (observers reuse them)."""


class DocumentReader(Protocol):
    def __iter__(self) -> Generator[Batch, None, None]: ...

    def schema(self) -> tuple[SchemaField, ...]:
        """The file's fields; complete only once the reader is exhausted."""
        ...


def open_reader(stored: StoredFile, kind: SourceKind, options: IngestOptions) -> DocumentReader:
    if kind.format is Format.PARQUET:
        return ParquetReader(stored, options)
    if kind.format is Format.JSONL:
        return JsonLinesReader(stored, kind, options)
    if options.text_unit == "file":
        return WholeTextReader(stored, kind, options)
    return TextLinesReader(stored, kind, options)


# -- JSON Lines --------------------------------------------------------------------------------

_native_jsonl = native.load("_jsonl")  # compiled inner loops, or None: see catalog.native
_native_text = native.load("_text")  # UTF-8 checks and counts, splitting at offsets


def _utf8_length(data: Buffer) -> int | None:
    """The code points of ``data`` if it is valid UTF-8 and the compiled check exists, else None
    (then the caller decodes it, which counts, or raises the exact error)."""
    return _native_text.utf8_length(data) if _native_text is not None else None


def _check_utf8(data: Buffer) -> bool:
    """True if ``data`` is valid UTF-8; if it is not, False, or the decoder's
    UnicodeDecodeError where the compiled check is missing."""
    if _native_text is not None:
        return _native_text.utf8_length(data) is not None
    str(data, "utf-8")
    return True


class _RecordError(ValueError):
    """A JSON value that parses but breaks a rule of ours (duplicate key, NaN)."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RecordError(f"duplicate member name {key!r}")
            seen.add(key)
    return result


def _no_constant(name: str) -> None:
    raise _RecordError(f"{name} is not a JSON number")


# Numbers become floats: only their kind matters here, and int() would refuse > 4300 digits.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_members, parse_constant=_no_constant, parse_int=float
)
_JSON_KINDS: dict[type, str] = {
    str: "string",
    float: "number",
    bool: "boolean",
    type(None): "null",
    dict: "object",
    list: "array",
}
_JSON_BLANK = " \t\r"
_MAX_SIGNATURES = 4096
_MAX_SHAPES = 1 << 16


def _kind_name(value: object) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


class _LineReader:
    """Shared by the line formats: blocks of whole lines, the running line and record counts,
    and the refusal of over-long lines with both numbers filled in."""

    def __init__(self, stored: StoredFile, kind: SourceKind, max_line: int) -> None:
        self._name = stored.name
        self._max_line = max_line
        self._blocks: Iterator[Buffer] = (
            line_blocks(
                decompressed_chunks(stored, kind.compression), name=stored.name, max_line=max_line
            )
            if kind.compression is not None
            else file_line_blocks(stored, max_line=max_line)
        )
        self._line = 1  # number of the next block's first line
        self._records = 0

    def __iter__(self) -> Generator[Batch, None, None]:
        try:
            for block in self._blocks:
                yield self._block(block)
        except LongLineError:
            raise self._long_line(self._records, self._line) from None

    def _block(self, data: Buffer) -> Batch:
        raise NotImplementedError

    def _error(self, reason: str, record: int, line: int) -> IngestError:
        self._records = record
        return IngestError(reason, file=self._name, record=record, line=line)

    def _long_line(self, record: int, line: int) -> IngestError:
        return self._error(f"line is longer than the limit of {self._max_line} bytes", record, line)

    def _utf8_error(self, data: bytes, exc: UnicodeDecodeError) -> IngestError:
        """The error for the line holding ``exc``, once the lines before it have been read."""
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        return self._error(
            f"invalid UTF-8 at byte {exc.start - line_start} of the line", self._records, self._line
        )


class JsonLinesReader(_LineReader):
    """One JSON object per line; blank lines (only space, tab, CR) are skipped.

    Strict JSON (RFC 8259): UTF-8, no NaN/Infinity, no duplicate member names, one value per line.
    """

    def __init__(self, stored: StoredFile, kind: SourceKind, options: IngestOptions) -> None:
        super().__init__(stored, kind, options.max_document_bytes)
        self._field = options.text_field
        # Each distinct record shape, (*member names, *value types), folded into _fields.
        self._signatures: set[tuple[str | type, ...]] = set()
        self._fields: dict[str, set[str]] = {}
        self._field_bytes = self._field.encode("utf-8", "surrogatepass")
        self._shapes: dict[bytes, tuple[str | type, ...]] = {}  # the fast path's shapes seen

    def schema(self) -> tuple[SchemaField, ...]:
        self._fold_signatures()
        fields = []
        for name in sorted(self._fields):
            kinds = self._fields[name]
            shown = sorted(kinds - {"null"}) or ["null"]
            fields.append(SchemaField(name, "|".join(shown)))
        return tuple(fields)

    def _fold_signatures(self) -> None:
        fields = self._fields
        for signature in self._signatures:
            half = len(signature) // 2
            for name, value_type in zip(signature[:half], signature[half:], strict=True):
                assert isinstance(name, str) and isinstance(value_type, type)
                fields.setdefault(name, set()).add(_JSON_KINDS.get(value_type, value_type.__name__))
        self._signatures.clear()
        if len(fields) > MAX_SCHEMA_FIELDS:
            # Keep the smallest names: a dropped name can never come back, so this is exactly
            # "the MAX_SCHEMA_FIELDS smallest member names of the file", in bounded memory.
            for name in sorted(fields)[MAX_SCHEMA_FIELDS:]:
                del fields[name]

    def _block(self, data: Buffer) -> Batch:
        if _native_jsonl is not None:
            try:
                valid = _check_utf8(data)  # what the fast path relies on
            except UnicodeDecodeError:
                valid = False  # decoded again below, for the exact error
            if valid:
                batch = self._scan(data)
                if batch is not None:
                    return batch
        data = bytes(data)  # the block may be a view of the reader's buffer
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            # Parse the good lines before the bad one first, so that an earlier error wins.
            good = data[: data.rfind(b"\n", 0, exc.start) + 1]
            self._parse(good.decode("utf-8"), good)
            raise self._utf8_error(data, exc) from None
        return self._parse(text, data)

    def _parse(self, text: str, data: bytes) -> Batch:
        start = self._records
        lines = text.split("\n")
        if len(data) > self._max_line:
            limit = self._max_line
            for offset, line in enumerate(data.split(b"\n")):
                if len(line) > limit:
                    self._parse_lines(lines[:offset], start)
                    raise self._long_line(self._records, self._line + offset)
        documents, characters = self._parse_lines(lines, start)
        self._line += len(lines) - 1
        return Batch(start, documents, sum(map(len, documents)), characters)

    def _scan(self, data: Buffer) -> Batch | None:
        """The compiled fast path (catalog/_jsonl.c) over a block of valid UTF-8, or None: it
        declines any block with a record it does not handle itself (an error among them), and
        :meth:`_parse` then reads the block, giving the same records or the exact error."""
        assert _native_jsonl is not None
        if len(data) > self._max_line:
            return None  # the line lengths are checked by _parse
        found = _native_jsonl.scan(data, self._field_bytes, self._shapes)
        if found is None:
            return None
        documents, nbytes, characters, records, shapes, newlines = found
        start = self._records
        if shapes:
            self._signatures.update(shapes)
            if len(self._signatures) > _MAX_SIGNATURES:
                self._fold_signatures()
            if len(self._shapes) > _MAX_SHAPES:
                self._shapes.clear()  # only a cache of shapes already in _fields
        self._records = start + records
        self._line += newlines
        return Batch(start, documents, nbytes, characters)

    def _parse_lines(self, lines: list[str], start: int) -> tuple[list[Buffer], int]:
        documents: list[Buffer] = []
        append = documents.append
        characters = 0
        scan = _SCAN
        field = self._field
        signatures = self._signatures
        add_signature = signatures.add
        for offset, line in enumerate(lines):
            try:
                # The C scanner directly: json.loads is this plus two Python frames per line.
                record, end = scan(line, 0)
                if end != len(line) and line[end:].strip(_JSON_BLANK):
                    raise ValueError("extra data")
            except (StopIteration, ValueError, RecursionError):
                record = self._slow_parse(line, start + len(documents), offset)
                if record is _BLANK:
                    continue
            if type(record) is not dict:
                raise self._error(
                    f"a record must be a JSON object, found {_kind_name(record)}",
                    start + len(documents),
                    self._line + offset,
                )
            value = record.get(field, _MISSING)
            if type(value) is not str:
                reason = (
                    f"no member {field!r}"
                    if value is _MISSING
                    else f"member {field!r} must be a string, found {_kind_name(value)}"
                )
                raise self._error(reason, start + len(documents), self._line + offset)
            try:
                document = value.encode("utf-8")
            except UnicodeEncodeError:
                raise self._error(
                    f"member {field!r} contains a lone surrogate escape, which is not Unicode",
                    start + len(documents),
                    self._line + offset,
                ) from None
            append(document)
            characters += len(value)
            add_signature((*record, *map(type, record.values())))
        if len(signatures) > _MAX_SIGNATURES:
            self._fold_signatures()
        self._records = start + len(documents)
        return documents, characters

    def _slow_parse(self, line: str, record: int, offset: int) -> Any:
        """The full decoder, for what the fast path refused: blank lines, leading whitespace,
        and errors, which it words exactly."""
        if not line.strip(_JSON_BLANK):
            return _BLANK
        try:
            return _DECODER.decode(line)
        except (ValueError, RecursionError) as exc:
            raise self._error(
                f"not valid JSON: {_json_reason(exc)}", record, self._line + offset
            ) from None


_MISSING: Any = object()
_BLANK: Any = object()
# The decoder's C scanner (typeshed does not declare the attribute).
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _json_reason(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


# -- plain text --------------------------------------------------------------------------------


class TextLinesReader(_LineReader):
    """Every non-empty line is a document (LF and a CR before it are not part of it)."""

    def __init__(self, stored: StoredFile, kind: SourceKind, options: IngestOptions) -> None:
        # A document of the maximum size may still be followed by a CR.
        super().__init__(stored, kind, options.max_document_bytes + 1)
        self._max = options.max_document_bytes

    def schema(self) -> tuple[SchemaField, ...]:
        return ()

    def _long_line(self, record: int, line: int) -> IngestError:
        return self._error(f"document is longer than the limit of {self._max} bytes", record, line)

    def _block(self, data: Buffer) -> Batch:
        data = bytes(data)  # split into lines below: bytes, not a view of the reader's buffer
        characters = _utf8_length(data)
        if characters is not None:
            return self._split(data, characters)
        try:
            characters = len(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            # The lines before the bad one first: an earlier error wins, and the counts advance.
            self._split(data[: data.rfind(b"\n", 0, exc.start) + 1], 0)
            raise self._utf8_error(data, exc) from None
        return self._split(data, characters)

    def _split(self, data: bytes, characters: int) -> Batch:
        lines, stripped = _lines(data)
        start = self._records
        if len(data) > self._max:
            record = start
            for offset, line in enumerate(lines):
                if len(line) > self._max:
                    raise self._long_line(record, self._line + offset)
                if line:
                    record += 1
        documents: list[Buffer] = [line for line in lines if line]
        self._records = start + len(documents)
        newlines = data.count(b"\n")
        self._line += newlines
        separators = newlines + stripped  # one byte and one character each
        return Batch(start, documents, len(data) - separators, characters - separators)


def _lines(data: bytes) -> tuple[list[bytes], int]:
    """Lines of a block without LF and without one CR before it; also how many CRs went."""
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    if b"\r" not in data:
        return lines, 0
    stripped = 0
    for i, line in enumerate(lines):
        if line.endswith(b"\r"):
            lines[i] = line[:-1]
            stripped += 1
    return lines, stripped


class WholeTextReader:
    """The whole (decompressed) file is one document; an empty file has none."""

    def __init__(self, stored: StoredFile, kind: SourceKind, options: IngestOptions) -> None:
        self._stored = stored
        self._kind = kind
        self._max = options.max_document_bytes

    def schema(self) -> tuple[SchemaField, ...]:
        return ()

    def __iter__(self) -> Generator[Batch, None, None]:
        parts: list[bytes] = []
        total = 0
        for chunk in decompressed_chunks(self._stored, self._kind.compression):
            parts.append(chunk)
            total += len(chunk)
            if total > self._max + len(UTF8_BOM):
                break
        data = b"".join(parts).removeprefix(UTF8_BOM)
        if len(data) > self._max:
            raise IngestError(
                f"document is longer than the limit of {self._max} bytes (text_unit=file)",
                file=self._stored.name,
                record=0,
            )
        if not data:
            return
        characters = _utf8_length(data)
        if characters is None:
            try:
                characters = len(data.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise IngestError(
                    f"invalid UTF-8 at byte {exc.start}",
                    file=self._stored.name,
                    record=0,
                    line=1 + data.count(b"\n", 0, exc.start),
                ) from None
        yield Batch(0, [data], len(data), characters)


# -- Parquet -----------------------------------------------------------------------------------


class ParquetReader:
    """Rows of a Parquet file; only the text column is decoded."""

    def __init__(self, stored: StoredFile, options: IngestOptions) -> None:
        self._stored = stored
        self._name = stored.name
        self._field = options.text_field
        self._max = options.max_document_bytes
        try:
            # pre_buffer coalesces the reads of a row group's column chunk into few large ones.
            self._file = pq.ParquetFile(stored.file, pre_buffer=True)
            arrow_schema = self._file.schema_arrow
            self._rows = self._file.metadata.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise IngestError(f"not a valid Parquet file: {exc}", file=self._name) from None
        self._schema = tuple(SchemaField(f.name, arrow_type_name(f.type)) for f in arrow_schema)
        matches = [f for f in arrow_schema if f.name == self._field]
        if not matches:
            columns = ", ".join(repr(n) for n in arrow_schema.names[:20])
            raise IngestError(
                f"no column {self._field!r} (columns: {columns or 'none'})", file=self._name
            )
        if len(matches) > 1:
            raise IngestError(f"column {self._field!r} appears more than once", file=self._name)
        if not _is_text_type(matches[0].type):
            raise IngestError(
                f"column {self._field!r} must hold strings, not {arrow_type_name(matches[0].type)}",
                file=self._name,
            )

    def schema(self) -> tuple[SchemaField, ...]:
        return self._schema

    def __iter__(self) -> Generator[Batch, None, None]:
        start = 0
        size = self._stored.size
        try:
            # One column: Arrow's threads would only add hand-offs (and compete with the other
            # ingestion processes for the cores).
            batches = self._file.iter_batches(
                batch_size=self._batch_rows(), columns=[self._field], use_threads=False
            )
            for record_batch in batches:
                batch = self._batch(start, record_batch.column(0))
                start += len(batch.documents)
                # Hash the stored bytes alongside, in proportion, for steady progress.
                self._stored.hash_until(size * start // max(self._rows, 1))
                yield batch
        except (pa.ArrowException, OSError) as exc:
            raise IngestError(
                f"corrupt Parquet data near record {start}: {exc}", file=self._name
            ) from None
        if start != self._rows:
            raise IngestError(
                f"Parquet metadata promises {self._rows} rows, the row groups hold {start}",
                file=self._name,
            )

    def _batch_rows(self) -> int:
        """Rows per batch: a batch of long documents stays near PARQUET_BATCH_BYTES."""
        metadata = self._file.metadata
        leaves = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
        if self._field not in leaves:
            return PARQUET_BATCH_ROWS
        column = leaves.index(self._field)
        widest = 1
        for group in range(metadata.num_row_groups):
            chunk = metadata.row_group(group).column(column)
            widest = max(widest, chunk.total_uncompressed_size // max(chunk.num_values, 1))
        return max(1, min(PARQUET_BATCH_ROWS, PARQUET_BATCH_BYTES // widest))

    def _batch(self, start: int, array: Any) -> Batch:
        array = _plain_strings(array)
        if array.null_count:
            index = pc.index(array.is_null(), True).as_py()
            raise IngestError(
                f"column {self._field!r} is null", file=self._name, record=start + index
            )
        documents, values = _arrow_documents(array)
        try:
            array.validate(full=True)
        except pa.ArrowInvalid:
            raise IngestError(
                f"column {self._field!r} is not valid UTF-8",
                file=self._name,
                record=start + _first_invalid_utf8(documents),
            ) from None
        nbytes = len(values)
        if nbytes > self._max:
            for index, document in enumerate(documents):
                if len(document) > self._max:
                    raise IngestError(
                        f"document is longer than the limit of {self._max} bytes",
                        file=self._name,
                        record=start + index,
                    )
        characters = _utf8_length(values)
        if characters is None:
            characters = pc.sum(pc.utf8_length(array)).as_py() or 0
        return Batch(start, documents, nbytes, characters)


def _is_text_type(arrow_type: Any) -> bool:
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return bool(
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_string_view(arrow_type)
    )


def _plain_strings(array: Any) -> Any:
    """The column as a string or large_string array (dictionary and view layouts unpacked)."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_string_view(array.type):
        array = array.cast(pa.large_string())
    return array


def _arrow_documents(array: Any) -> tuple[list[Buffer], memoryview]:
    """Each value as bytes, and the part of the array's data buffer that holds the values.
    Compiled, one bytes object per value straight from the buffer; otherwise by slicing one
    copy of that part (slicing bytes costs ~40% of making a memoryview per value, copy
    included)."""
    width = 4 if pa.types.is_string(array.type) else 8
    _, offsets_buffer, data_buffer = array.buffers()
    first = array.offset * width
    offsets = memoryview(offsets_buffer).cast("B")[first : first + (len(array) + 1) * width]
    data = memoryview(data_buffer).cast("B") if data_buffer is not None else memoryview(b"")
    numbers = offsets.cast("i" if width == 4 else "q")
    base = numbers[0]
    values = data[base : numbers[-1]]
    if _native_text is not None:
        return _native_text.split(values, offsets, width), values
    local = [o - base for o in numbers.tolist()]
    text = values.tobytes()
    return [text[a:b] for a, b in itertools.pairwise(local)], values


def _first_invalid_utf8(documents: list[Buffer]) -> int:
    for index, document in enumerate(documents):
        try:
            bytes(document).decode("utf-8")
        except UnicodeDecodeError:
            return index
    return 0


_SIMPLE_TYPES = {
    "string": "string",
    "large_string": "string",
    "string_view": "string",
    "binary": "binary",
    "large_binary": "binary",
    "binary_view": "binary",
    "bool": "bool",
    "null": "null",
    "date32[day]": "date",
    "date64[ms]": "date",
}


def arrow_type_name(arrow_type: Any) -> str:
    """A stable name for an Arrow type: string layouts are ``string``, lists ``list<T>``, structs
    ``struct<a: T, ...>``, maps ``map<K, V>``, dictionaries their value type; others as Arrow
    prints them (``int64``, ``double``, ``timestamp[us, tz=UTC]``, ``decimal128(10, 2)``)."""
    t = pa.types
    if t.is_dictionary(arrow_type):
        return arrow_type_name(arrow_type.value_type)
    if t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_list_view(arrow_type):
        return f"list<{arrow_type_name(arrow_type.value_type)}>"
    if t.is_large_list_view(arrow_type) or t.is_fixed_size_list(arrow_type):
        return f"list<{arrow_type_name(arrow_type.value_type)}>"
    if t.is_map(arrow_type):
        key, item = arrow_type.key_type, arrow_type.item_type
        return f"map<{arrow_type_name(key)}, {arrow_type_name(item)}>"
    if t.is_struct(arrow_type):
        inner = ", ".join(
            f"{arrow_type.field(i).name}: {arrow_type_name(arrow_type.field(i).type)}"
            for i in range(arrow_type.num_fields)
        )
        return f"struct<{inner}>"
    text = str(arrow_type)
    return _SIMPLE_TYPES.get(text, text)
