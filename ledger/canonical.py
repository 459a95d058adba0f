"""RFC 8785 (JCS) canonical JSON: the only byte form the ledger hashes or signs.

Most ledger values are plain objects of strings, integers, booleans and nulls. For those,
Python's ``json.dumps`` with sorted keys and no whitespace produces exactly the JCS bytes (same
escapes, same integer form, and the same key order as long as no key holds a character beyond
U+FFFF, where UTF-16 and code-point order part ways), several times faster than the general
serialiser. Everything else — floats, huge integers, such keys — goes through ``rfc8785``.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from ledger.errors import FormatError

JSONValue = Any
MAX_SAFE_INTEGER = 2**53 - 1

_fast = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def _is_simple(value: object) -> bool:
    """True when ``json.dumps`` is guaranteed to give the JCS bytes of ``value``."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER  # type: ignore[operator]
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str or not (key.isascii() or max(key) <= "\uffff"):
                return False
            if not _is_simple(item):
                return False
        return True
    if kind is list:
        return all(_is_simple(item) for item in value)  # type: ignore[attr-defined]
    return False


def canonical_bytes(value: JSONValue) -> bytes:
    """Serialise ``value`` as RFC 8785 canonical JSON, or raise ``FormatError``."""
    try:
        if _is_simple(value):
            return _fast(value).encode("utf-8")
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError, UnicodeEncodeError) as exc:
        raise FormatError(f"value cannot be canonicalised as RFC 8785 JSON: {exc}") from None


def _parse_int(text: str) -> int | float:
    """JSON numbers are IEEE doubles (RFC 8785, I-JSON): an integer beyond 2^53 is read as the
    double it denotes, so that canonicalising what was parsed gives back the same bytes."""
    value = int(text)
    return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else float(value)


def parse_json(data: bytes | str, *, what: str = "JSON") -> JSONValue:
    """Parse JSON strictly: no NaN/Infinity, no duplicate keys."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, item in pairs:
            if key in result:
                raise FormatError(f"{what} has a duplicate key {key!r}")
            result[key] = item
        return result

    def no_constants(name: str) -> None:
        raise FormatError(f"{what} contains {name}, which JSON does not allow")

    try:
        return json.loads(
            data,
            object_pairs_hook=no_duplicates,
            parse_constant=no_constants,
            parse_int=_parse_int,
        )
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise FormatError(f"{what} is not valid JSON: {exc}") from None
