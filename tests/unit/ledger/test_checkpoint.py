"""Checkpoints (c2sp.org/tlog-checkpoint), against the Tessera test log and Go's golden text."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from ledger.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint, sign_checkpoint
from ledger.errors import FormatError, VerificationError
from ledger.note import (
    CosignatureSigner,
    Ed25519Signer,
    Ed25519Verifier,
    Note,
    sign_note,
)

VECTORS = Path(__file__).resolve().parents[3].parent / "shared" / "vectors"
LOG_DIR = VECTORS / "tessera-log" / "testdata" / "log"
LOG_VKEY = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"
LOG_SIZE = 15
GOLDEN = json.loads((VECTORS / "signed-notes.json").read_text())["golden_strings"]

ROOT = hashlib.sha256(b"root").digest()
ROOT64 = base64.b64encode(ROOT).decode()


def _checkpoint_files() -> list[Path]:
    return sorted(LOG_DIR.glob("checkpoint.*"), key=lambda p: int(p.suffix[1:]))


def test_tessera_log_has_all_checkpoints() -> None:
    names = sorted(p.name for p in _checkpoint_files())
    assert len(names) == LOG_SIZE + 1, f"expected checkpoint.0..15 in {LOG_DIR}"
    assert (LOG_DIR / "checkpoint").read_text() == (LOG_DIR / f"checkpoint.{LOG_SIZE}").read_text()


@pytest.mark.parametrize("size", range(LOG_SIZE + 1))
def test_tessera_checkpoint_opens(size: int) -> None:
    text = (LOG_DIR / f"checkpoint.{size}").read_text(encoding="utf-8")
    signed = open_checkpoint(text, Ed25519Verifier.from_vkey(LOG_VKEY))
    assert signed.checkpoint.origin == "example.com/log/testdata"
    assert signed.checkpoint.size == size
    assert signed.checkpoint.extensions == ()
    assert signed.cosignatures == ()
    assert signed.note_text == text
    assert signed.checkpoint.to_text() == signed.note.text


def test_tessera_empty_checkpoint_has_the_empty_root() -> None:
    text = (LOG_DIR / "checkpoint.0").read_text()
    signed = open_checkpoint(text, Ed25519Verifier.from_vkey(LOG_VKEY))
    assert signed.checkpoint.root == hashlib.sha256(b"").digest()


def test_tessera_checkpoint_rejects_other_keys_and_tampering() -> None:
    text = (LOG_DIR / "checkpoint.15").read_text()
    with pytest.raises(VerificationError):
        open_checkpoint(text, Ed25519Signer.generate("example.com/log/testdata").verifier)
    tampered = text.replace("\n15\n", "\n16\n")
    with pytest.raises(VerificationError):
        open_checkpoint(tampered, Ed25519Verifier.from_vkey(LOG_VKEY))


def test_go_sumdb_format_tree_golden_text() -> None:
    golden = GOLDEN["go-sumdb-tlog-FormatTree"]
    checkpoint = Checkpoint.from_text(golden["text"])
    assert checkpoint.origin == "go.sum database tree"
    assert checkpoint.size == golden["tree_size"]
    assert checkpoint.root == hashlib.sha256(b"\x00hello world").digest()
    assert checkpoint.to_text() == golden["text"]


def test_round_trip_with_extensions() -> None:
    checkpoint = Checkpoint("example.com/log", 7, ROOT, ("ext one", "ext-two"))
    text = checkpoint.to_text()
    assert text == f"example.com/log\n7\n{ROOT64}\next one\next-two\n"
    assert Checkpoint.from_text(text) == checkpoint


def test_sign_and_open_checkpoint() -> None:
    log = Ed25519Signer.generate("example.com/log")
    checkpoint = Checkpoint("example.com/log", 0, hashlib.sha256(b"").digest())
    text = sign_checkpoint(checkpoint, log)
    signed = open_checkpoint(text, log.verifier)
    assert isinstance(signed, SignedCheckpoint)
    assert signed.checkpoint == checkpoint
    assert signed.log_signature.key == (log.name, log.key_id)


def _cosigned(
    log: Ed25519Signer, witnesses: list[CosignatureSigner], checkpoint: Checkpoint
) -> str:
    note = Note.from_text(sign_checkpoint(checkpoint, log))
    cosigs = [w.sign(note.text, timestamp=1_700_000_000 + i) for i, w in enumerate(witnesses)]
    return note.with_signatures(cosigs).to_text()


def test_cosignatures_are_reported_and_unknown_ones_ignored() -> None:
    log = Ed25519Signer.generate("example.com/log")
    w1, w2, w3 = (CosignatureSigner.generate(f"w{i}.example") for i in range(3))
    text = _cosigned(log, [w1, w2, w3], Checkpoint("example.com/log", 3, ROOT))
    signed = open_checkpoint(text, log.verifier, cosigners=[w1.verifier, w3.verifier])
    assert [s.name for s in signed.cosignatures] == ["w0.example", "w2.example"]
    assert open_checkpoint(text, log.verifier).cosignatures == ()


def test_cosigner_quorum() -> None:
    log = Ed25519Signer.generate("example.com/log")
    w1, w2 = CosignatureSigner.generate("w1"), CosignatureSigner.generate("w2")
    text = _cosigned(log, [w1], Checkpoint("example.com/log", 3, ROOT))
    cosigners = [w1.verifier, w2.verifier]
    assert len(open_checkpoint(text, log.verifier, cosigners=cosigners, cosigner_quorum=1)
               .cosignatures) == 1  # fmt: skip
    with pytest.raises(VerificationError, match="quorum"):
        open_checkpoint(text, log.verifier, cosigners=cosigners, cosigner_quorum=2)


def test_bad_cosignature_from_known_witness_rejects() -> None:
    log = Ed25519Signer.generate("example.com/log")
    witness = CosignatureSigner.generate("w")
    text = _cosigned(log, [witness], Checkpoint("example.com/log", 3, ROOT))
    prefix, b64 = text.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[4 + 8 + 5] ^= 1  # inside the Ed25519 signature, after key ID and timestamp
    broken = f"{prefix} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(VerificationError):
        open_checkpoint(broken, log.verifier, cosigners=[witness.verifier])
    assert open_checkpoint(broken, log.verifier).cosignatures == ()


def test_cosigned_only_is_not_log_signed() -> None:
    log = Ed25519Signer.generate("example.com/log")
    witness = CosignatureSigner.generate("w")
    body = Checkpoint("example.com/log", 3, ROOT).to_text()
    text = Note(body, (witness.sign(body, timestamp=1),)).to_text()
    with pytest.raises(VerificationError, match="not signed by the log key"):
        open_checkpoint(text, log.verifier, cosigners=[witness.verifier])


def test_origin_must_match_log_key_name_unless_overridden() -> None:
    log = Ed25519Signer.generate("sum.golang.org")
    text = sign_checkpoint(Checkpoint("go.sum database tree", 1, ROOT), log)
    with pytest.raises(VerificationError, match="origin"):
        open_checkpoint(text, log.verifier)
    signed = open_checkpoint(text, log.verifier, origin="go.sum database tree")
    assert signed.checkpoint.size == 1
    with pytest.raises(VerificationError, match="origin"):
        open_checkpoint(text, log.verifier, origin="other")


MALFORMED_BODIES = {
    "empty": "",
    "no-final-newline": f"o\n1\n{ROOT64}",
    "two-lines": "o\n1\n",
    "empty-origin": f"\n1\n{ROOT64}\n",
    "leading-zero": f"o\n01\n{ROOT64}\n",
    "negative": f"o\n-1\n{ROOT64}\n",
    "plus-sign": f"o\n+1\n{ROOT64}\n",
    "space-in-size": f"o\n1 \n{ROOT64}\n",
    "arabic-digit": f"o\n\u0661\n{ROOT64}\n",
    "empty-size": f"o\n\n{ROOT64}\n",
    "size-over-uint64": f"o\n18446744073709551616\n{ROOT64}\n",
    "short-root": "o\n1\n" + base64.b64encode(bytes(31)).decode() + "\n",
    "long-root": "o\n1\n" + base64.b64encode(bytes(33)).decode() + "\n",
    "hex-root": f"o\n1\n{ROOT.hex()}\n",
    "unpadded-root": f"o\n1\n{ROOT64.rstrip('=')}\n",
    "non-canonical-root": "o\n1\n" + "A" * 42 + "B=\n",
    "urlsafe-root": "o\n1\n" + base64.urlsafe_b64encode(b"\xff" * 32).decode() + "\n",
    "empty-extension": f"o\n1\n{ROOT64}\n\n",
    "blank-then-extension": f"o\n1\n{ROOT64}\n\next\n",
    "carriage-return": f"o\r\n1\n{ROOT64}\n",
    "tab-in-origin": f"o\tx\n1\n{ROOT64}\n",
    "blank-first": f"\no\n1\n{ROOT64}\n",
}


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_malformed_body_is_format_error(body: str) -> None:
    with pytest.raises(FormatError):
        Checkpoint.from_text(body)


def test_signed_but_malformed_checkpoint_is_format_error() -> None:
    log = Ed25519Signer.generate("o")
    with pytest.raises(FormatError):
        open_checkpoint(sign_note(f"o\n01\n{ROOT64}\n", [log]), log.verifier)
    with pytest.raises(FormatError):
        open_checkpoint("not a note", log.verifier)


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [("", 1, ROOT, ()), ("a\nb", 1, ROOT, ()), ("o", -1, ROOT, ()), ("o", 2**64, ROOT, ()),
     ("o", True, ROOT, ()), ("o", 1, ROOT[:31], ()), ("o", 1, ROOT, ("",)),
     ("o", 1, ROOT, ("a\nb",))],
)  # fmt: skip
def test_invalid_checkpoint_values_are_format_errors(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(FormatError):
        Checkpoint(origin, size, root, extensions)


def test_unsigned_body_in_place_of_note_is_format_error() -> None:
    log = Ed25519Signer.generate("o")
    with pytest.raises(FormatError):
        open_checkpoint(Checkpoint("o", 1, ROOT).to_text(), log.verifier)
