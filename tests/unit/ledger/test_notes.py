"""Signed notes (c2sp.org/signed-note) and tlog-cosignature keys, against public vectors."""

from __future__ import annotations

import base64
import contextlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import FormatError, LedgerError, VerificationError
from ledger.note import (
    MAX_SIGNATURES,
    CosignatureSigner,
    CosignatureVerifier,
    Ed25519Signer,
    Ed25519Verifier,
    Note,
    NoteSignature,
    cosignature_timestamp,
    decode_base64,
    key_id_for,
    open_note,
    parse_decimal,
    sign_note,
    verifier_from_vkey,
)

VECTORS = Path(__file__).resolve().parents[3].parent / "shared" / "vectors"
NOTE_VECTORS: list[dict[str, Any]] = json.loads((VECTORS / "signed-notes.json").read_text())[
    "vectors"
]
SKEY_VECTORS = [v for v in NOTE_VECTORS if "skey" in v]

CHECKPOINT_BODY = "example.com/log\n3\n" + base64.b64encode(bytes(32)).decode() + "\n"


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [str(v["id"]) for v in vectors]


def _verifiers(vector: dict[str, Any]) -> list[Ed25519Verifier]:
    keys = [vector["vkey"], *vector.get("other_vkeys", [])]
    return [Ed25519Verifier.from_vkey(k) for k in keys]


def _flip_b64(b64: str, byte: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[byte] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _tamper_signature(note_text: str, line_no: int = 0, byte: int = 10) -> str:
    """Flip one bit of a signature's Ed25519 bytes, keeping its key ID intact."""
    note = Note.from_text(note_text)
    lines = [s.to_line() for s in note.signatures]
    prefix, b64 = lines[line_no].rsplit(" ", 1)
    lines[line_no] = f"{prefix} {_flip_b64(b64, byte)}"
    return note.text + "\n" + "".join(line + "\n" for line in lines)


# --- vectors ---------------------------------------------------------------------------


def test_vector_file_has_the_expected_vectors() -> None:
    assert len(NOTE_VECTORS) >= 4
    assert len(SKEY_VECTORS) >= 2


@pytest.mark.parametrize("vector", NOTE_VECTORS, ids=_ids(NOTE_VECTORS))
def test_vector_opens_or_is_rejected_as_expected(vector: dict[str, Any]) -> None:
    if not vector["expect_valid"]:
        with pytest.raises(LedgerError):
            open_note(vector["note"], _verifiers(vector))
        return
    note, verified = open_note(vector["note"], _verifiers(vector))
    assert vector["vkey"].split("+")[0] in {s.name for s in verified}
    assert note.to_text() == vector["note"]


@pytest.mark.parametrize("vector", NOTE_VECTORS, ids=_ids(NOTE_VECTORS))
def test_vector_vkey_round_trips(vector: dict[str, Any]) -> None:
    for verifier in _verifiers(vector):
        assert Ed25519Verifier.from_vkey(verifier.vkey) == verifier
    assert Ed25519Verifier.from_vkey(vector["vkey"]).vkey == vector["vkey"]


@pytest.mark.parametrize("vector", NOTE_VECTORS, ids=_ids(NOTE_VECTORS))
def test_vector_with_only_the_main_key_ignores_the_others(vector: dict[str, Any]) -> None:
    main = Ed25519Verifier.from_vkey(vector["vkey"])
    _, verified = open_note(vector["note"], [main])
    assert [s.key for s in verified] == [(main.name, main.key_id)]


@pytest.mark.parametrize("vector", NOTE_VECTORS, ids=_ids(NOTE_VECTORS))
def test_vector_tampered_text_is_rejected(vector: dict[str, Any]) -> None:
    tampered = "X" + vector["note"][1:]
    with pytest.raises(VerificationError):
        open_note(tampered, _verifiers(vector))


@pytest.mark.parametrize("vector", SKEY_VECTORS, ids=_ids(SKEY_VECTORS))
def test_skey_reproduces_the_vector_signature_byte_for_byte(vector: dict[str, Any]) -> None:
    signer = Ed25519Signer.from_skey(vector["skey"])
    assert signer.skey == vector["skey"]
    assert signer.verifier.vkey == vector["vkey"]
    note = Note.from_text(vector["note"])
    expected = next(s for s in note.signatures if s.key == (signer.name, signer.key_id))
    assert signer.sign(note.text) == expected
    if len(note.signatures) == 1:
        assert sign_note(note.text, [signer]) == vector["note"]


def test_two_signer_vector_is_the_re_signed_single_signer_vector() -> None:
    single = next(v for v in NOTE_VECTORS if v["id"] == "go-sumdb-note-peterneumann")
    double = next(v for v in NOTE_VECTORS if v["id"] == "go-sumdb-note-two-signers")
    peter = Note.from_text(single["note"])
    both = Note.from_text(double["note"])
    assert both.text == peter.text
    assert both.signatures[0] == peter.signatures[0]


def test_c2sp_spec_key_id_matches_the_vkey() -> None:
    vector = next(v for v in NOTE_VECTORS if v["id"] == "c2sp-signed-note-example")
    verifier = Ed25519Verifier.from_vkey(vector["vkey"])
    assert verifier.key_id == bytes.fromhex("530d903a")
    assert verifier.name == "example.com/foo"
    assert key_id_for(verifier.name, 0x01, verifier.public_key) == verifier.key_id


# --- signature semantics ---------------------------------------------------------------


def test_sign_and_open_round_trip() -> None:
    a, b = Ed25519Signer.generate("a.example/log"), Ed25519Signer.generate("b.example/w")
    text = sign_note("hello\n\nworld\n", [a, b])
    note, verified = open_note(text, [a.verifier, b.verifier])
    assert note.text == "hello\n\nworld\n"
    assert [s.name for s in verified] == ["a.example/log", "b.example/w"]
    assert Note.from_text(text).to_text() == text


def test_from_private_bytes_is_deterministic() -> None:
    seed = bytes(range(32))
    one = Ed25519Signer.from_private_bytes("k", seed)
    two = Ed25519Signer.from_private_bytes("k", seed)
    assert one.verifier == two.verifier
    assert one.sign("x\n") == two.sign("x\n")
    assert Ed25519Signer.from_skey(one.skey).verifier == one.verifier
    assert "PRIVATE" not in repr(one)


def test_unknown_keys_are_ignored_even_when_sharing_a_name() -> None:
    log = Ed25519Signer.generate("log.example")
    impostor = Ed25519Signer.generate("log.example")  # same name, different key ID
    stranger = Ed25519Signer.generate("other.example")
    text = sign_note("body\n", [impostor, stranger, log])
    _, verified = open_note(text, [log.verifier])
    assert [s.key for s in verified] == [(log.name, log.key_id)]


def test_no_known_signature_is_rejected() -> None:
    text = sign_note("body\n", [Ed25519Signer.generate("a")])
    with pytest.raises(VerificationError, match="no signature from a known key"):
        open_note(text, [Ed25519Signer.generate("b").verifier])
    with pytest.raises(VerificationError):
        open_note(text, [])


def test_known_key_bad_signature_rejects_whole_note() -> None:
    good = Ed25519Signer.generate("good")
    bad = Ed25519Signer.generate("bad")
    text = _tamper_signature(sign_note("body\n", [bad, good]), line_no=0)
    with pytest.raises(VerificationError, match="bad\\+"):
        open_note(text, [good.verifier, bad.verifier])
    # Without the bad key configured, its broken signature is just an unknown one.
    _, verified = open_note(text, [good.verifier])
    assert [s.name for s in verified] == ["good"]


def test_wrong_length_signature_from_known_key_is_rejected() -> None:
    signer = Ed25519Signer.generate("k")
    sig = NoteSignature("k", signer.key_id, b"\x00" * 10)
    text = Note("body\n", (sig,)).to_text()
    with pytest.raises(VerificationError):
        open_note(text, [signer.verifier])


def test_duplicate_signatures_are_reported_once() -> None:
    signer = Ed25519Signer.generate("k")
    sig = signer.sign("body\n")
    _, verified = open_note(Note("body\n", (sig, sig)).to_text(), [signer.verifier])
    assert verified == [sig]


def test_same_verifier_twice_is_fine() -> None:
    signer = Ed25519Signer.generate("k")
    text = sign_note("body\n", [signer])
    copy = Ed25519Verifier.from_vkey(signer.verifier.vkey)
    _, verified = open_note(text, [signer.verifier, copy])
    assert len(verified) == 1


@dataclass(frozen=True)
class _FixedIdVerifier:
    """A verifier with a chosen key ID, to simulate an (otherwise 2^32-hard) ID collision."""

    name: str
    key_id: bytes
    answer: bool

    def verify(self, msg: bytes, sig: bytes) -> bool:
        return self.answer


def test_ambiguous_verifiers_are_an_error() -> None:
    text = Note("body\n", (NoteSignature("k", b"\x00\x00\x00\x01", b"s"),)).to_text()
    first = _FixedIdVerifier("k", b"\x00\x00\x00\x01", True)
    second = _FixedIdVerifier("k", b"\x00\x00\x00\x01", False)
    with pytest.raises(VerificationError, match="ambiguous"):
        open_note(text, [first, second])
    _, verified = open_note(text, [first])
    assert len(verified) == 1


def test_signature_covers_text_including_final_newline_only() -> None:
    signer = Ed25519Signer.generate("k")
    text = sign_note("a\n", [signer])
    assert signer.verifier.verify(b"a\n", Note.from_text(text).signatures[0].signature)
    assert not signer.verifier.verify(b"a\n\n", Note.from_text(text).signatures[0].signature)


def test_note_with_blank_lines_splits_at_the_last_blank_line() -> None:
    signer = Ed25519Signer.generate("k")
    text = sign_note("a\n\n\nb\n\n", [signer])
    note, _ = open_note(text, [signer.verifier])
    assert note.text == "a\n\n\nb\n\n"


def test_with_signatures_replaces_same_key_and_appends() -> None:
    log, witness = Ed25519Signer.generate("log"), CosignatureSigner.generate("w")
    note = Note.from_text(sign_note(CHECKPOINT_BODY, [log]))
    cosig = witness.sign(note.text, timestamp=1)
    once = note.with_signatures([cosig])
    again = once.with_signatures([witness.sign(note.text, timestamp=2)])
    assert [s.name for s in again.signatures] == ["log", "w"]
    assert cosignature_timestamp(again.signatures[1]) == 2
    _, verified = open_note(again.to_text(), [log.verifier, witness.verifier])
    assert len(verified) == 2


# --- cosignatures ----------------------------------------------------------------------


def test_cosignature_round_trip_and_timestamp() -> None:
    witness = CosignatureSigner.generate("witness.example/w1")
    sig = witness.sign(CHECKPOINT_BODY, timestamp=1679315147)
    assert len(sig.signature) == 72
    assert cosignature_timestamp(sig) == 1679315147
    assert witness.verifier.verify(CHECKPOINT_BODY.encode(), sig.signature)
    assert not witness.verifier.verify(b"other\n1\nx\n", sig.signature)
    _, verified = open_note(Note(CHECKPOINT_BODY, (sig,)).to_text(), [witness.verifier])
    assert verified == [sig]


def test_cosignature_signs_the_spec_message() -> None:
    """The signed message is ``cosignature/v1\\ntime <t>\\n`` + body (tlog-cosignature)."""
    seed = bytes(range(32))
    witness = CosignatureSigner.from_private_bytes("w", seed)
    sig = witness.sign(CHECKPOINT_BODY, timestamp=42)
    plain = Ed25519Signer.from_private_bytes("w", seed)
    expected = plain.sign("cosignature/v1\ntime 42\n" + CHECKPOINT_BODY).signature
    assert sig.signature == (42).to_bytes(8, "big") + expected


def test_cosignature_key_id_uses_type_0x04() -> None:
    seed = bytes(32)
    witness = CosignatureSigner.from_private_bytes("w", seed)
    plain = Ed25519Signer.from_private_bytes("w", seed)
    assert witness.key_id == key_id_for("w", 0x04, plain.verifier.public_key)
    assert witness.key_id != plain.key_id
    assert base64.b64decode(witness.verifier.vkey.split("+")[2])[0] == 0x04
    assert CosignatureVerifier.from_vkey(witness.verifier.vkey) == witness.verifier
    assert CosignatureSigner.from_skey(witness.skey).verifier == witness.verifier
    assert verifier_from_vkey(witness.verifier.vkey) == witness.verifier
    assert verifier_from_vkey(plain.verifier.vkey) == plain.verifier


def test_cosignature_is_not_a_plain_signature() -> None:
    seed = bytes(32)
    witness = CosignatureSigner.from_private_bytes("w", seed)
    plain = Ed25519Signer.from_private_bytes("w", seed)
    text = Note(CHECKPOINT_BODY, (witness.sign(CHECKPOINT_BODY, timestamp=5),)).to_text()
    with pytest.raises(VerificationError):  # different key ID: unknown, so nothing verifies
        open_note(text, [plain.verifier])


def test_cosignature_timestamp_bounds() -> None:
    witness = CosignatureSigner.generate("w")
    assert cosignature_timestamp(witness.sign(CHECKPOINT_BODY, timestamp=2**63 - 1)) == 2**63 - 1
    for bad in (-1, 2**63):
        with pytest.raises(FormatError):
            witness.sign(CHECKPOINT_BODY, timestamp=bad)
    forged = (2**63).to_bytes(8, "big") + bytes(64)
    assert not witness.verifier.verify(CHECKPOINT_BODY.encode(), forged)
    assert not witness.verifier.verify(CHECKPOINT_BODY.encode(), forged[:-1])
    with pytest.raises(FormatError):
        cosignature_timestamp(NoteSignature("w", bytes(4), bytes(64)))


def test_cosignature_default_timestamp_is_now() -> None:
    import time

    before = int(time.time())
    sig = CosignatureSigner.generate("w").sign(CHECKPOINT_BODY)
    assert before <= cosignature_timestamp(sig) <= int(time.time())


def test_go_transparency_dev_cosignature_timestamp_vector() -> None:
    """transparency-dev/formats note_cosigv1_test.go TestCoSigV1Timestamp 'works' case."""
    line = (
        "\u2014 w ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7"
        "S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
    )
    assert cosignature_timestamp(NoteSignature.from_line(line)) == 1727964367


# --- malformed input -------------------------------------------------------------------

_SIG = base64.b64encode(b"\x01\x02\x03\x04" + bytes(64)).decode()

MALFORMED_NOTES = {
    "empty": "",
    "no-final-newline": f"text\n\n\u2014 k {_SIG}",
    "no-blank-line": f"text\n\u2014 k {_SIG}\n",
    "no-signatures": "text\n\n",
    "only-blank-lines": "\n\n\n",
    "hyphen-not-em-dash": f"text\n\n- k {_SIG}\n",
    "no-space-after-dash": f"text\n\n\u2014k {_SIG}\n",
    "no-signature": "text\n\n\u2014 k\n",
    "empty-signature": "text\n\n\u2014 k \n",
    "empty-name": f"text\n\n\u2014  {_SIG}\n",
    "double-space": f"text\n\n\u2014 k  {_SIG}\n",
    "space-in-sig": f"text\n\n\u2014 k {_SIG[:8]} {_SIG[8:]}\n",
    "plus-in-name": f"text\n\n\u2014 k+1 {_SIG}\n",
    "nbsp-in-name": f"text\n\n\u2014 k\u00a0x {_SIG}\n",
    "invalid-base64": "text\n\n\u2014 k !!!!\n",
    "unpadded-base64": f"text\n\n\u2014 k {_SIG.rstrip('=')}\n",
    "non-canonical-base64": "text\n\n\u2014 k AAAAAAB=\n",
    "sig-only-key-id": "text\n\n\u2014 k AAAAAA==\n",
    "sig-too-short": "text\n\n\u2014 k AQID\n",
    "carriage-return": f"text\r\n\n\u2014 k {_SIG}\n",
    "tab": f"te\txt\n\n\u2014 k {_SIG}\n",
    "nul": f"te\x00xt\n\n\u2014 k {_SIG}\n",
    "lone-surrogate": f"te\ud800xt\n\n\u2014 k {_SIG}\n",
    "trailing-blank": f"text\n\n\u2014 k {_SIG}\n\n",
    "garbage-line": f"text\n\n\u2014 k {_SIG}\ngarbage\n",
    "too-many-signatures": "text\n\n" + f"\u2014 k {_SIG}\n" * (MAX_SIGNATURES + 1),
}


@pytest.mark.parametrize("text", MALFORMED_NOTES.values(), ids=MALFORMED_NOTES.keys())
def test_malformed_note_is_format_error(text: str) -> None:
    with pytest.raises(FormatError):
        Note.from_text(text)
    with pytest.raises(FormatError):
        open_note(text, [Ed25519Signer.generate("k").verifier])


def test_max_signatures_is_accepted() -> None:
    text = "text\n\n" + f"\u2014 k {_SIG}\n" * MAX_SIGNATURES
    assert len(Note.from_text(text).signatures) == MAX_SIGNATURES


def test_non_str_and_bad_utf8_are_format_errors() -> None:
    with pytest.raises(FormatError):
        Note.from_text(b"text\n\n")  # type: ignore[arg-type]
    with pytest.raises(FormatError):
        Note.from_bytes(b"\xff\n\n\xe2\x80\x94 k " + _SIG.encode() + b"\n")
    assert Note.from_bytes(f"t\n\n\u2014 k {_SIG}\n".encode()).text == "t\n"


@pytest.mark.parametrize(
    ("text", "signatures"),
    [
        ("no newline", (NoteSignature("k", bytes(4), b"s"),)),
        ("bad\rchar\n", (NoteSignature("k", bytes(4), b"s"),)),
        ("text\n", ()),
    ],
)
def test_invalid_note_values_are_format_errors(
    text: str, signatures: tuple[NoteSignature, ...]
) -> None:
    with pytest.raises(FormatError):
        Note(text, signatures)


@pytest.mark.parametrize(
    ("name", "key_id", "sig"),
    [("", bytes(4), b"s"), ("a b", bytes(4), b"s"), ("a+b", bytes(4), b"s"),
     ("k", bytes(3), b"s"), ("k", bytes(4), b"")],
)  # fmt: skip
def test_invalid_signature_values_are_format_errors(name: str, key_id: bytes, sig: bytes) -> None:
    with pytest.raises(FormatError):
        NoteSignature(name, key_id, sig)


def test_sign_note_rejects_bad_input() -> None:
    signer = Ed25519Signer.generate("k")
    with pytest.raises(FormatError):
        sign_note("no newline", [signer])
    with pytest.raises(FormatError):
        sign_note("ctrl\x01\n", [signer])
    with pytest.raises(FormatError):
        sign_note("text\n", [])


_GOOD_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
_KEY64 = _GOOD_VKEY.split("+")[2]
MALFORMED_VKEYS = {
    "empty": "",
    "name-only": "PeterNeumann",
    "no-key": "PeterNeumann+c74f20a3",
    "empty-key": "PeterNeumann+c74f20a3+",
    "empty-name": f"+c74f20a3+{_KEY64}",
    "short-hash": f"PeterNeumann+c74f20a+{_KEY64}",
    "long-hash": f"PeterNeumann+c74f20a30+{_KEY64}",
    "hex-prefix": f"PeterNeumann+0xc74f20+{_KEY64}",
    "non-hex": f"PeterNeumann+zzzzzzzz+{_KEY64}",
    "wrong-key-id": f"PeterNeumann+c74f20a4+{_KEY64}",
    "wrong-name": f"PeterNeumannX+c74f20a3+{_KEY64}",
    "invalid-base64": "PeterNeumann+c74f20a3+!!!!",
    "unpadded": f"PeterNeumann+c74f20a3+{_KEY64}"[:-1],
    "wrong-alg": "PeterNeumann+c74f20a3+" + base64.b64encode(b"\x02" + bytes(32)).decode(),
    "short-key": "PeterNeumann+c74f20a3+" + base64.b64encode(b"\x01" + bytes(31)).decode(),
    "alg-only": "PeterNeumann+c74f20a3+AQ==",
    "space-in-name": f"Peter Neumann+c74f20a3+{_KEY64}",
    "trailing-newline": _GOOD_VKEY + "\n",
    "lone-surrogate": f"Peter\ud800+c74f20a3+{_KEY64}",
}


@pytest.mark.parametrize("vkey", MALFORMED_VKEYS.values(), ids=MALFORMED_VKEYS.keys())
def test_malformed_vkey_is_format_error(vkey: str) -> None:
    with pytest.raises(FormatError):
        Ed25519Verifier.from_vkey(vkey)
    with pytest.raises(FormatError):
        CosignatureVerifier.from_vkey(vkey)
    with pytest.raises(FormatError):
        verifier_from_vkey(vkey)


def test_uppercase_hex_key_id_is_accepted_and_normalised() -> None:
    upper = _GOOD_VKEY.replace("c74f20a3", "C74F20A3")
    assert Ed25519Verifier.from_vkey(upper).vkey == _GOOD_VKEY


def test_ed25519_vkey_is_not_a_cosignature_vkey() -> None:
    with pytest.raises(FormatError, match="0x01"):
        CosignatureVerifier.from_vkey(_GOOD_VKEY)


_GOOD_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
MALFORMED_SKEYS = {
    "vkey-not-skey": _GOOD_VKEY,
    "lowercase-prefix": _GOOD_SKEY.replace("PRIVATE+KEY", "private+key"),
    "wrong-key-id": _GOOD_SKEY.replace("c74f20a3", "c74f20a4"),
    "wrong-name": _GOOD_SKEY.replace("PeterNeumann", "Peter"),
    "short-seed": "PRIVATE+KEY+PeterNeumann+c74f20a3+" + base64.b64encode(bytes(32)).decode(),
    "wrong-alg": "PRIVATE+KEY+PeterNeumann+c74f20a3+" + base64.b64encode(bytes(33)).decode(),
    "garbage": "PRIVATE+KEY+",
}


@pytest.mark.parametrize("skey", MALFORMED_SKEYS.values(), ids=MALFORMED_SKEYS.keys())
def test_malformed_skey_is_format_error(skey: str) -> None:
    with pytest.raises(FormatError):
        Ed25519Signer.from_skey(skey)
    with pytest.raises(FormatError):
        CosignatureSigner.from_skey(skey)


def test_bad_signer_inputs_are_format_errors() -> None:
    with pytest.raises(FormatError):
        Ed25519Signer.generate("bad name")
    with pytest.raises(FormatError):
        Ed25519Signer.from_private_bytes("k", bytes(31))
    with pytest.raises(FormatError):
        CosignatureSigner.from_private_bytes("k", bytes(33))
    with pytest.raises(FormatError):
        Ed25519Verifier("k", bytes(31))


@pytest.mark.parametrize(
    "text",
    ["", "01", "-1", "+1", " 1", "1 ", "1_000", "\u0661", "0x10", "1.0", "18446744073709551616"],
)
def test_parse_decimal_rejects_non_canonical(text: str) -> None:
    with pytest.raises(FormatError):
        parse_decimal(text, "n")


def test_parse_decimal_accepts_canonical() -> None:
    assert parse_decimal("0", "n") == 0
    assert parse_decimal("18446744073709551615", "n") == 2**64 - 1


@pytest.mark.parametrize("text", ["A", "AA=", "AA==A", "AAA=\n", " AAA=", "AB==", "é==="])
def test_decode_base64_rejects_non_canonical(text: str) -> None:
    with pytest.raises(FormatError):
        decode_base64(text, "x")


def test_random_mutations_never_leak_non_ledger_errors() -> None:
    """Whatever a byte-level corruption does, the only outcomes are success or LedgerError."""
    rng = random.Random(6962)
    signer = Ed25519Signer.generate("k")
    good = sign_note(CHECKPOINT_BODY, [signer, CosignatureSigner.generate("w")])
    alphabet = "\n \u2014+=/Aa0\x00\r\u00a0"
    for _ in range(2000):
        chars = list(good)
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(len(chars))
            op = rng.randrange(3)
            if op == 0:
                del chars[pos]
            elif op == 1:
                chars.insert(pos, rng.choice(alphabet))
            else:
                chars[pos] = rng.choice(alphabet)
        with contextlib.suppress(LedgerError):
            open_note("".join(chars), [signer.verifier])
