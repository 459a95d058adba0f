"""Tiled-log paths and resources (c2sp.org/tlog-tiles), against the Tessera test log."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ledger import merkle
from ledger.checkpoint import open_checkpoint
from ledger.errors import FormatError
from ledger.note import Ed25519Verifier
from ledger.tiles import (
    MAX_ENTRY_SIZE,
    TILE_HEIGHT,
    TILE_WIDTH,
    TileRef,
    decode_entry_bundle,
    decode_hash_tile,
    encode_entry_bundle,
    encode_hash_tile,
    entries_path,
    parse_tile_path,
    tile_path,
)

VECTORS = Path(__file__).resolve().parents[3].parent / "shared" / "vectors"
LOG_DIR = VECTORS / "tessera-log" / "testdata" / "log"
LOG_VKEY = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"
LOG_SIZE = 15
LOG_FILE_COUNT = 1 + (LOG_SIZE + 1) + LOG_SIZE + LOG_SIZE  # checkpoint, .0-.15, tiles, bundles
# The upstream test log's entries, spelled as upstream spells them.
LOG_ENTRIES = [
    b"one", b"two", b"three", b"four", b"five", b"six", b"seven", b"eit", b"nain", b"ten",
    b"ileven", b"twelf", b"threeten", b"fourten", b"fivten",
]  # fmt: skip


def _rfc6962_root(leaves: list[bytes]) -> bytes:
    """Reference MTH straight from RFC 6962 section 2.1, independent of ledger.merkle."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _rfc6962_root(leaves[:k]) + _rfc6962_root(leaves[k:])).digest()


def _leaf(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def test_constants() -> None:
    assert (TILE_HEIGHT, TILE_WIDTH) == (8, 256)


# --- paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "path"),
    [
        ((0, 0, None), "tile/0/000"),
        ((0, 1234067, None), "tile/0/x001/x234/067"),
        ((0, 1234067, 5), "tile/0/x001/x234/067.p/5"),
        ((1, 999, None), "tile/1/999"),
        ((2, 1000, 255), "tile/2/x001/000.p/255"),
        ((63, 1001, 1), "tile/63/x001/001.p/1"),
        ((10, 1_000_000, None), "tile/10/x001/x000/000"),
    ],
)
def test_tile_path(args: tuple[int, int, int | None], path: str) -> None:
    assert tile_path(*args) == path
    level, index, width = args
    assert parse_tile_path(path) == TileRef(level, index, width)


def test_entries_path() -> None:
    assert entries_path(0) == "tile/entries/000"
    assert entries_path(1234067, 5) == "tile/entries/x001/x234/067.p/5"
    assert parse_tile_path("tile/entries/x001/x234/067.p/5") == TileRef(0, 1234067, 5, True)


@pytest.mark.parametrize("index", [0, 1, 999, 1000, 1001, 999_999, 10**6, 123_456_789, 2**64 - 1])
@pytest.mark.parametrize("width", [None, 1, 255])
def test_path_round_trip(index: int, width: int | None) -> None:
    for ref in (
        TileRef(0, index, width),
        TileRef(63, index, width),
        TileRef(0, index, width, True),
    ):
        assert parse_tile_path(ref.path()) == ref


def test_tile_ref_geometry() -> None:
    assert TileRef(0, 3).start_index == 3 * 256
    assert TileRef(1, 2).start_index == 2 * 256**2
    assert TileRef(0, 0, 17).count == 17
    assert TileRef(0, 0).count == 256
    assert TileRef(0, 0, 17).is_partial and not TileRef(0, 0).is_partial


NON_CANONICAL_PATHS = [
    "", "tile", "tile/0", "tile/0/", "/tile/0/000", "tile/0/000/", "tiles/0/000",
    "tile/00/000", "tile/01/000", "tile/64/000", "tile/-1/000", "tile/ 0/000", "tile/x/000",
    "tile/0/00", "tile/0/0000", "tile/0/0", "tile/0/-01", "tile/0/+01", "tile/0/x000",
    "tile/0/x001", "tile/0/x000/001", "tile/0/001/001", "tile/0/001/x001", "tile/0/x1/000",
    "tile/0/x0001/000", "tile/0/X001/000", "tile/0/\u0660\u0660\u0660",
    "tile/0/000.p", "tile/0/000.p/", "tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/01",
    "tile/0/000.p/-1", "tile/0/000.p/5/6", "tile/0/000/5", "tile/0/000.p.p/5", "tile/0/.p/5",
    "tile/0/000.q/5", "tile/0/x001.p/000/5", "tile/entries", "tile/entries/", "tile/entries/00",
    "tile/entries/000.p/0", "tile/data/000", "tile/0/x018/x446/x744/x073/x709/x551/616",
    "tile/0/000\n", "tile//000",
]  # fmt: skip


@pytest.mark.parametrize("path", NON_CANONICAL_PATHS)
def test_non_canonical_path_is_format_error(path: str) -> None:
    with pytest.raises(FormatError):
        parse_tile_path(path)


@pytest.mark.parametrize(
    ("level", "index", "width"),
    [(-1, 0, None), (64, 0, None), (0, -1, None), (0, 2**64, None), (0, 0, 0), (0, 0, 256),
     (0, 0, -1), (True, 0, None)],
)  # fmt: skip
def test_invalid_tile_coordinates_are_format_errors(
    level: int, index: int, width: int | None
) -> None:
    with pytest.raises(FormatError):
        tile_path(level, index, width)


def test_entries_have_no_level() -> None:
    with pytest.raises(FormatError):
        TileRef(1, 0, None, entries=True)
    with pytest.raises(FormatError):
        entries_path(0, 256)


# --- hash tiles and entry bundles ------------------------------------------------------


def test_hash_tile_round_trip() -> None:
    hashes = [hashlib.sha256(bytes([i])).digest() for i in range(256)]
    data = encode_hash_tile(hashes)
    assert len(data) == 8192
    assert decode_hash_tile(data) == hashes
    assert decode_hash_tile(data, 256) == hashes
    assert decode_hash_tile(data[:32]) == hashes[:1]


@pytest.mark.parametrize("size", [0, 1, 31, 33, 64 + 1, 257 * 32])
def test_malformed_hash_tile_is_format_error(size: int) -> None:
    with pytest.raises(FormatError):
        decode_hash_tile(bytes(size))


def test_hash_tile_width_mismatch_and_bad_encode() -> None:
    with pytest.raises(FormatError):
        decode_hash_tile(bytes(64), 3)
    for hashes in ([], [bytes(32)] * 257, [bytes(31)], [bytes(33)]):
        with pytest.raises(FormatError):
            encode_hash_tile(hashes)


def test_entry_bundle_round_trip() -> None:
    entries = [b"", b"a", bytes(MAX_ENTRY_SIZE), b"\x00\x01"]
    data = encode_entry_bundle(entries)
    assert data[:2] == b"\x00\x00" and data[2:5] == b"\x00\x01a"
    assert decode_entry_bundle(data) == entries
    assert decode_entry_bundle(data, 4) == entries
    full = [bytes([i]) for i in range(256)]
    assert decode_entry_bundle(encode_entry_bundle(full)) == full


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", b"\x00\x05abc", b"\x00\x01a\x00", b"\x00\x01a\x00\x02b", b"\xff\xff" + bytes(10),
     b"\x00\x00" * 257],
)  # fmt: skip
def test_malformed_entry_bundle_is_format_error(data: bytes) -> None:
    with pytest.raises(FormatError):
        decode_entry_bundle(data)


def test_entry_bundle_limits() -> None:
    with pytest.raises(FormatError, match="65535"):
        encode_entry_bundle([bytes(MAX_ENTRY_SIZE + 1)])
    with pytest.raises(FormatError):
        encode_entry_bundle([])
    with pytest.raises(FormatError):
        encode_entry_bundle([b""] * 257)
    with pytest.raises(FormatError):
        decode_entry_bundle(encode_entry_bundle([b"a"]), 2)


# --- the Tessera test log --------------------------------------------------------------


def _log_files() -> list[Path]:
    return sorted(p for p in LOG_DIR.rglob("*") if p.is_file())


def test_tessera_log_is_complete() -> None:
    files = _log_files()
    assert len(files) == LOG_FILE_COUNT, f"{LOG_DIR} should hold {LOG_FILE_COUNT} files"
    tiles = [p for p in files if p.relative_to(LOG_DIR).parts[0] == "tile"]
    assert len(tiles) == 2 * LOG_SIZE


def test_tessera_tile_paths_are_canonical() -> None:
    refs = []
    for path in _log_files():
        rel = path.relative_to(LOG_DIR).as_posix()
        if rel.startswith("tile/"):
            ref = parse_tile_path(rel)
            assert ref.path() == rel
            refs.append(ref)
    assert {r.width for r in refs} == set(range(1, LOG_SIZE + 1))
    assert sum(r.entries for r in refs) == LOG_SIZE


@pytest.mark.parametrize("width", range(1, LOG_SIZE + 1))
def test_tessera_bundles_hash_to_their_tiles(width: int) -> None:
    bundle = (LOG_DIR / entries_path(0, width)).read_bytes()
    tile = (LOG_DIR / tile_path(0, 0, width)).read_bytes()
    entries = decode_entry_bundle(bundle, width)
    assert entries == LOG_ENTRIES[:width]
    assert encode_entry_bundle(entries) == bundle
    hashes = decode_hash_tile(tile, width)
    assert hashes == [_leaf(e) for e in entries]
    assert hashes == [merkle.leaf_hash(e) for e in entries]
    assert encode_hash_tile(hashes) == tile


@pytest.mark.parametrize("size", range(LOG_SIZE + 1))
def test_tessera_tile_roots_match_checkpoints(size: int) -> None:
    leaves = decode_hash_tile((LOG_DIR / tile_path(0, 0, LOG_SIZE)).read_bytes())[:size]
    if size:
        assert decode_hash_tile((LOG_DIR / tile_path(0, 0, size)).read_bytes()) == leaves
    signed = open_checkpoint(
        (LOG_DIR / f"checkpoint.{size}").read_text(), Ed25519Verifier.from_vkey(LOG_VKEY)
    )
    assert signed.checkpoint.root == _rfc6962_root(leaves)
    assert signed.checkpoint.root == merkle.tree_root(leaves)


def test_reference_root_matches_rfc6962_reference_tree() -> None:
    """Sanity-check the test's own MTH against transparency-dev/merkle's reference roots."""
    import json

    golden = json.loads((VECTORS / "signed-notes.json").read_text())["golden_strings"]
    tree = golden["rfc6962-reference-tree"]
    leaves = [_leaf(bytes.fromhex(h)) for h in tree["leaves_hex"]]
    for size, root in enumerate(tree["roots_hex_by_size_1_to_8"], start=1):
        assert _rfc6962_root(leaves[:size]).hex() == root
