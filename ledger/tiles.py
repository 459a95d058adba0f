"""Tiled-log resources (c2sp.org/tlog-tiles): tile paths, hash tiles, entry bundles.

A tiled log serves its Merkle tree as static files, so the paths and byte layouts are
the API. Every path has exactly one canonical spelling; :func:`parse_tile_path`
rejects all others so a cache or mirror can never hold two copies of one resource.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.errors import FormatError

__all__ = [
    "HASH_SIZE",
    "MAX_ENTRY_SIZE",
    "MAX_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileRef",
    "decode_entry_bundle",
    "decode_hash_tile",
    "encode_entry_bundle",
    "encode_hash_tile",
    "entries_path",
    "parse_tile_path",
    "tile_path",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
HASH_SIZE = 32
MAX_LEVEL = 63
MAX_ENTRY_SIZE = 0xFFFF
"""Entries are uint16 length-prefixed, so no entry can be longer than this."""
MAX_INDEX = (1 << 64) - 1

_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")
_GROUP = re.compile(r"x[0-9]{3}")
_LAST = re.compile(r"[0-9]{3}")


def _check_int(value: int, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FormatError(f"{what} must be an int in {low}..{high}, got {value!r}")
    return value


def _encode_index(index: int) -> str:
    """Index 1234067 -> ``x001/x234/067``: 3-digit groups, all but the last ``x``-prefixed."""
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def _decode_index(parts: Sequence[str], path: str) -> int:
    *leading, last = parts
    if any(_GROUP.fullmatch(p) is None for p in leading) or _LAST.fullmatch(last) is None:
        raise FormatError(f"tile path {path!r}: malformed index")
    if leading and leading[0] == "x000":
        raise FormatError(f"tile path {path!r}: index has a leading zero group")
    index = 0
    for part in parts:
        index = index * 1000 + int(part.lstrip("x"))
    if index > MAX_INDEX:
        raise FormatError(f"tile path {path!r}: index exceeds 2^64-1")
    return index


@dataclass(frozen=True)
class TileRef:
    """A tile (``entries=False``) or entry bundle at (level, index), partial if ``width``."""

    level: int
    index: int
    width: int | None = None
    entries: bool = False

    def __post_init__(self) -> None:
        _check_int(self.level, "tile level", 0, 0 if self.entries else MAX_LEVEL)
        _check_int(self.index, "tile index", 0, MAX_INDEX)
        if self.width is not None:
            _check_int(self.width, "partial tile width", 1, TILE_WIDTH - 1)

    @property
    def is_partial(self) -> bool:
        return self.width is not None

    @property
    def count(self) -> int:
        """How many hashes (or entries) the resource holds."""
        return TILE_WIDTH if self.width is None else self.width

    @property
    def start_index(self) -> int:
        """First leaf covered: ``n * 256**(l+1)``."""
        return self.index << (TILE_HEIGHT * (self.level + 1))

    def path(self) -> str:
        """The canonical path relative to the log prefix."""
        suffix = "" if self.width is None else f".p/{self.width}"
        kind = "entries" if self.entries else str(self.level)
        return f"tile/{kind}/{_encode_index(self.index)}{suffix}"


def tile_path(level: int, index: int, width: int | None = None) -> str:
    """``tile/<L>/<N>[.p/<W>]``; ``width`` only for partial tiles (1..255)."""
    return TileRef(level, index, width).path()


def entries_path(index: int, width: int | None = None) -> str:
    """``tile/entries/<N>[.p/<W>]``; ``width`` only for partial bundles (1..255)."""
    return TileRef(0, index, width, entries=True).path()


def parse_tile_path(path: str) -> TileRef:
    """Parse a canonical tile or entry-bundle path; anything else is a FormatError."""
    parts = path.split("/") if isinstance(path, str) else []
    if len(parts) < 3 or parts[0] != "tile":
        raise FormatError(f"not a tile path: {path!r}")
    entries = parts[1] == "entries"
    if not entries and _LEVEL.fullmatch(parts[1]) is None:
        raise FormatError(f"tile path {path!r}: malformed level")
    level = 0 if entries else int(parts[1])
    width: int | None = None
    rest = parts[2:]
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        if _WIDTH.fullmatch(rest[-1]) is None:
            raise FormatError(f"tile path {path!r}: malformed partial width")
        width = int(rest[-1])
        rest = [*rest[:-2], rest[-2][: -len(".p")]]
    try:
        return TileRef(level, _decode_index(rest, path), width, entries)
    except FormatError as exc:
        raise FormatError(f"tile path {path!r}: {exc}") from exc


def encode_hash_tile(hashes: Sequence[bytes]) -> bytes:
    """Concatenate 1..256 32-byte hashes (empty tiles MUST NOT be served)."""
    if not 1 <= len(hashes) <= TILE_WIDTH:
        raise FormatError(f"a tile holds 1..{TILE_WIDTH} hashes, got {len(hashes)}")
    for i, h in enumerate(hashes):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise FormatError(f"tile hash {i} is not {HASH_SIZE} bytes")
    return b"".join(hashes)


def decode_hash_tile(data: bytes, width: int | None = None) -> list[bytes]:
    """Split a tile into its hashes; ``width`` (if given) is the count the path promises."""
    if len(data) % HASH_SIZE or not HASH_SIZE <= len(data) <= TILE_WIDTH * HASH_SIZE:
        raise FormatError(f"a tile is 1..{TILE_WIDTH} hashes of {HASH_SIZE} bytes; got {len(data)}")
    hashes = [bytes(data[i : i + HASH_SIZE]) for i in range(0, len(data), HASH_SIZE)]
    if width is not None and len(hashes) != width:
        raise FormatError(f"tile has {len(hashes)} hashes, its path says {width}")
    return hashes


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Big-endian uint16 length then bytes, per entry; 1..256 entries of up to 65535 bytes."""
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise FormatError(f"an entry bundle holds 1..{TILE_WIDTH} entries, got {len(entries)}")
    out = bytearray()
    for i, entry in enumerate(entries):
        if not isinstance(entry, bytes):
            raise FormatError(f"entry {i} is not bytes")
        if len(entry) > MAX_ENTRY_SIZE:
            raise FormatError(f"entry {i} is {len(entry)} bytes; max is {MAX_ENTRY_SIZE}")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def decode_entry_bundle(data: bytes, width: int | None = None) -> list[bytes]:
    """Split a bundle into entries; truncation, trailing bytes or >256 entries are errors."""
    entries: list[bytes] = []
    pos = 0
    while pos < len(data):
        if len(entries) == TILE_WIDTH:
            raise FormatError(f"entry bundle has more than {TILE_WIDTH} entries")
        if pos + 2 > len(data):
            raise FormatError(f"entry bundle truncated in the length of entry {len(entries)}")
        size = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        if pos + size > len(data):
            raise FormatError(f"entry bundle truncated in entry {len(entries)}")
        entries.append(bytes(data[pos : pos + size]))
        pos += size
    if not entries:
        raise FormatError("entry bundle is empty")
    if width is not None and len(entries) != width:
        raise FormatError(f"entry bundle has {len(entries)} entries, its path says {width}")
    return entries
