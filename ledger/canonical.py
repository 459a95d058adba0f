"""RFC 8785 (JCS) canonical JSON: the only byte form the ledger hashes or signs."""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from ledger.errors import FormatError

JSONValue = Any


def canonical_bytes(value: JSONValue) -> bytes:
    """Serialise ``value`` as RFC 8785 canonical JSON, or raise ``FormatError``."""
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise FormatError(f"value cannot be canonicalised as RFC 8785 JSON: {exc}") from None


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
        return json.loads(data, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise FormatError(f"{what} is not valid JSON: {exc}") from None
