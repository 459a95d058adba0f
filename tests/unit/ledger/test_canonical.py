"""The fast canonical path must give exactly the bytes of the reference RFC 8785 serialiser."""

from __future__ import annotations

import random

import pytest
import rfc8785

from ledger.canonical import MAX_SAFE_INTEGER, canonical_bytes
from ledger.errors import FormatError

ALPHABET = [
    "a",
    "Z",
    "0",
    " ",
    '"',
    "\\",
    "/",
    "\n",
    "\t",
    "\b",
    "\f",
    "\r",
    "\x00",
    "\x1f",
    "\x7f",
    "é",
    "ß",
    "€",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\ue000",
    "\uffff",
    "日本",
    "😀",
    "𝄞",
]


def random_string(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 6)))


def random_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randint(0, 7 if depth < 4 else 4)
    if kind == 0:
        return random_string(rng)
    if kind == 1:
        return rng.choice(
            [0, 1, -1, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, rng.randint(-(10**9), 10**9)]
        )
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.choice([0.5, 1.0, -0.0, 1e21, 1e-7, 123.456, 2.0**60])
    if kind == 4:
        return random_string(rng)
    if kind in (5, 6):
        return {random_string(rng): random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}
    return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]


def test_fast_and_reference_serialisers_agree_on_random_values() -> None:
    rng = random.Random(8785)
    for _ in range(5000):
        value = random_value(rng)
        assert canonical_bytes(value) == rfc8785.dumps(value), value


def test_keys_beyond_the_bmp_sort_by_utf16() -> None:
    value = {"\ue000": 1, "😀": 2}  # code-point order puts U+E000 first, UTF-16 order the emoji
    assert canonical_bytes(value) == rfc8785.dumps(value) == '{"😀":2,"\ue000":1}'.encode()


@pytest.mark.parametrize(
    "bad", [float("nan"), float("inf"), 2**60, {1: "x"}, {"a": object()}, "\ud800"]
)
def test_what_json_cannot_say_is_a_format_error(bad: object) -> None:
    with pytest.raises(FormatError):
        canonical_bytes(bad)


def test_spliced_entry_bytes_are_the_jcs_of_the_entry() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.entry import Entry, Statement, sign_statement

    rng = random.Random(6962)
    key = Ed25519PrivateKey.generate()
    for seq in range(300):
        body = {"v": random_value(rng), random_string(rng): random_value(rng)}
        statement = Statement(
            type="attest.x",
            body=body,
            member="m",
            key_id="0" * 16,
            nonce=f"nonce-{seq:012d}",
            time="2026-01-01T00:00:00.000Z",
            log="x.example/log",
        )
        entry = Entry.build(
            seq=seq,
            time="2026-01-01T00:00:01.000Z",
            prev=rng.randbytes(32),
            signed=sign_statement(statement, key),
        )
        assert entry.canonical() == rfc8785.dumps(entry.to_json())
        assert Entry.from_bytes(entry.canonical(), strict=True) == entry
