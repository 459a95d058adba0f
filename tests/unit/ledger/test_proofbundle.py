"""Offline inclusion proofs (c2sp.org/tlog-proof@v1), built over the Tessera test log."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import random
from pathlib import Path

import pytest

from ledger import merkle
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.errors import FormatError, LedgerError, VerificationError
from ledger.note import CosignatureSigner, Ed25519Signer, Ed25519Verifier, Note
from ledger.proofbundle import HEADER, ProofBundle, verify_proof_bundle
from ledger.tiles import decode_entry_bundle, decode_hash_tile, entries_path, tile_path

VECTORS = Path(__file__).resolve().parents[3].parent / "shared" / "vectors"
LOG_DIR = VECTORS / "tessera-log" / "testdata" / "log"
LOG_VKEY = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"
LOG_SIZE = 15
LOG_VERIFIER = Ed25519Verifier.from_vkey(LOG_VKEY)


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _mth(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return _node(_mth(leaves[:k]), _mth(leaves[k:]))


def _path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 section 2.1.1 PATH(m, D[n]), bottom-up, straight from the definition."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < k:
        return [*_path(index, leaves[:k]), _mth(leaves[k:])]
    return [*_path(index - k, leaves[k:]), _mth(leaves[:k])]


def _log_entries() -> list[bytes]:
    return decode_entry_bundle((LOG_DIR / entries_path(0, LOG_SIZE)).read_bytes(), LOG_SIZE)


def _log_leaves() -> list[bytes]:
    return decode_hash_tile((LOG_DIR / tile_path(0, 0, LOG_SIZE)).read_bytes(), LOG_SIZE)


def _checkpoint_note(size: int) -> str:
    return (LOG_DIR / f"checkpoint.{size}").read_text(encoding="utf-8")


def _bundle(index: int, size: int = LOG_SIZE, extra: bytes | None = None) -> ProofBundle:
    proof = tuple(_path(index, _log_leaves()[:size]))
    return ProofBundle(index, proof, _checkpoint_note(size), extra)


def test_tessera_log_present() -> None:
    assert len(_log_entries()) == LOG_SIZE
    assert len(list(LOG_DIR.glob("checkpoint.*"))) == LOG_SIZE + 1


def test_reference_path_agrees_with_ledger_merkle() -> None:
    leaves = _log_leaves()

    def read(ids: object) -> list[bytes]:
        assert isinstance(ids, list)
        return [_mth(leaves[n.start : n.end]) for n in ids]

    for size in range(1, LOG_SIZE + 1):
        for index in range(size):
            assert merkle.inclusion_proof(index, size, read) == _path(index, leaves[:size])


@pytest.mark.parametrize("index", range(LOG_SIZE))
def test_every_entry_verifies_against_the_last_checkpoint(index: int) -> None:
    entries = _log_entries()
    bundle = _bundle(index)
    text = bundle.to_text()
    parsed = ProofBundle.from_text(text)
    assert parsed == bundle
    assert parsed.to_text() == text
    signed = verify_proof_bundle(parsed, entry=entries[index], log_verifier=LOG_VERIFIER)
    assert signed.checkpoint.size == LOG_SIZE
    assert signed.checkpoint == parsed.checkpoint


@pytest.mark.parametrize("index", range(LOG_SIZE))
def test_wrong_entry_or_flipped_byte_fails(index: int) -> None:
    entries = _log_entries()
    bundle = _bundle(index)
    other = entries[(index + 1) % LOG_SIZE]
    with pytest.raises(VerificationError):
        verify_proof_bundle(bundle, entry=other, log_verifier=LOG_VERIFIER)
    flipped_entry = bytes([entries[index][0] ^ 0x20]) + entries[index][1:]
    with pytest.raises(VerificationError):
        verify_proof_bundle(bundle, entry=flipped_entry, log_verifier=LOG_VERIFIER)
    for i, h in enumerate(bundle.proof):
        bad = (*bundle.proof[:i], bytes([h[0] ^ 1]) + h[1:], *bundle.proof[i + 1 :])
        with pytest.raises(VerificationError):
            verify_proof_bundle(
                ProofBundle(index, bad, bundle.checkpoint_note),
                entry=entries[index],
                log_verifier=LOG_VERIFIER,
            )


def test_every_entry_verifies_against_every_later_checkpoint() -> None:
    entries = _log_entries()
    checked = 0
    for size in range(1, LOG_SIZE + 1):
        for index in range(size):
            bundle = ProofBundle.from_text(_bundle(index, size).to_text())
            verify_proof_bundle(bundle, entry=entries[index], log_verifier=LOG_VERIFIER)
            checked += 1
    assert checked == LOG_SIZE * (LOG_SIZE + 1) // 2


def test_proof_for_one_index_does_not_verify_at_another() -> None:
    entries = _log_entries()
    bundle = _bundle(4)
    moved = ProofBundle(5, bundle.proof, bundle.checkpoint_note)
    with pytest.raises(VerificationError):
        verify_proof_bundle(moved, entry=entries[4], log_verifier=LOG_VERIFIER)


def test_index_beyond_checkpoint_and_wrong_log_key() -> None:
    entries = _log_entries()
    with pytest.raises(VerificationError, match="outside"):
        verify_proof_bundle(
            ProofBundle(LOG_SIZE, (), _checkpoint_note(LOG_SIZE)),
            entry=entries[0],
            log_verifier=LOG_VERIFIER,
        )
    with pytest.raises(VerificationError):
        verify_proof_bundle(
            _bundle(0),
            entry=entries[0],
            log_verifier=Ed25519Signer.generate("example.com/log/testdata").verifier,
        )


def test_extra_data_round_trips_unauthenticated() -> None:
    entries = _log_entries()
    bundle = _bundle(3, extra=b"age-v1.2.1-darwin-arm64.tar.gz")
    text = bundle.to_text()
    assert text.split("\n")[1] == "extra " + base64.b64encode(bundle.extra or b"").decode()
    parsed = ProofBundle.from_text(text)
    assert parsed.extra == b"age-v1.2.1-darwin-arm64.tar.gz"
    verify_proof_bundle(parsed, entry=entries[3], log_verifier=LOG_VERIFIER)


def test_layout_matches_the_spec() -> None:
    bundle = _bundle(2)
    lines = bundle.to_text().split("\n")
    assert lines[0] == HEADER == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "index 2"
    assert lines[2 : 2 + len(bundle.proof)] == [base64.b64encode(h).decode() for h in bundle.proof]
    assert lines[2 + len(bundle.proof)] == ""
    assert "\n".join(lines[3 + len(bundle.proof) :]) == bundle.checkpoint_note


def test_single_entry_tree_has_an_empty_proof() -> None:
    bundle = _bundle(0, size=1)
    assert bundle.proof == ()
    assert bundle.to_text().startswith(f"{HEADER}\nindex 0\n\nexample.com/log/testdata\n1\n")
    verify_proof_bundle(
        ProofBundle.from_text(bundle.to_text()), entry=b"one", log_verifier=LOG_VERIFIER
    )


def test_cosigned_bundle_and_quorum() -> None:
    log = Ed25519Signer.generate("example.com/mylog")
    witness = CosignatureSigner.generate("witness.example/w1")
    stranger = CosignatureSigner.generate("witness.example/w2")
    entries = [b"alpha", b"beta", b"gamma"]
    leaves = [merkle.leaf_hash(e) for e in entries]
    checkpoint = Checkpoint("example.com/mylog", 3, merkle.tree_root(leaves))
    note = Note.from_text(sign_checkpoint(checkpoint, log))
    note = note.with_signatures([witness.sign(note.text, timestamp=1), stranger.sign(note.text)])
    bundle = ProofBundle.from_text(
        ProofBundle(1, tuple(_path(1, leaves)), note.to_text()).to_text()
    )
    signed = verify_proof_bundle(
        bundle,
        entry=b"beta",
        log_verifier=log.verifier,
        cosigners=[witness.verifier],
        cosigner_quorum=1,
    )
    assert [s.name for s in signed.cosignatures] == ["witness.example/w1"]
    with pytest.raises(VerificationError, match="quorum"):
        verify_proof_bundle(bundle, entry=b"beta", log_verifier=log.verifier, cosigner_quorum=1)


_H = base64.b64encode(bytes(32)).decode()
_CP = (LOG_DIR / "checkpoint.15").read_text(encoding="utf-8")
MALFORMED_BUNDLES = {
    "empty": "",
    "no-header": f"index 0\n{_H}\n\n{_CP}",
    "wrong-version": f"c2sp.org/tlog-proof@v2\nindex 0\n\n{_CP}",
    "header-trailing-space": f"{HEADER} \nindex 0\n\n{_CP}",
    "no-index": f"{HEADER}\n{_H}\n\n{_CP}",
    "index-leading-zero": f"{HEADER}\nindex 01\n\n{_CP}",
    "index-negative": f"{HEADER}\nindex -1\n\n{_CP}",
    "index-two-spaces": f"{HEADER}\nindex  1\n\n{_CP}",
    "index-empty": f"{HEADER}\nindex \n\n{_CP}",
    "index-no-space": f"{HEADER}\nindex1\n\n{_CP}",
    "index-too-big": f"{HEADER}\nindex 18446744073709551616\n\n{_CP}",
    "index-twice": f"{HEADER}\nindex 1\nindex 1\n\n{_CP}",
    "extra-after-index": f"{HEADER}\nindex 1\nextra AA==\n\n{_CP}",
    "extra-empty": f"{HEADER}\nextra \nindex 1\n\n{_CP}",
    "extra-bad-base64": f"{HEADER}\nextra !!\nindex 1\n\n{_CP}",
    "extra-twice": f"{HEADER}\nextra AA==\nextra AA==\nindex 1\n\n{_CP}",
    "short-hash": f"{HEADER}\nindex 1\n" + base64.b64encode(bytes(31)).decode() + f"\n\n{_CP}",
    "hex-hash": f"{HEADER}\nindex 1\n{bytes(32).hex()}\n\n{_CP}",
    "unpadded-hash": f"{HEADER}\nindex 1\n{_H.rstrip('=')}\n\n{_CP}",
    "no-blank-line": f"{HEADER}\nindex 1\n{_H}\n{_CP}",
    "crlf": f"{HEADER}\r\nindex 1\r\n\r\n{_CP}",
    "too-many-hashes": f"{HEADER}\nindex 1\n" + f"{_H}\n" * 65 + f"\n{_CP}",
    "no-checkpoint": f"{HEADER}\nindex 1\n\n",
    "unsigned-checkpoint": f"{HEADER}\nindex 1\n\nexample.com/log/testdata\n15\n{_H}\n",
    "malformed-checkpoint": f"{HEADER}\nindex 1\n\n" + _CP.replace("\n15\n", "\n015\n"),
    "checkpoint-trailing-garbage": f"{HEADER}\nindex 1\n\n{_CP}garbage",
}


@pytest.mark.parametrize("text", MALFORMED_BUNDLES.values(), ids=MALFORMED_BUNDLES.keys())
def test_malformed_bundle_is_format_error(text: str) -> None:
    with pytest.raises(FormatError):
        ProofBundle.from_text(text)


def test_non_str_bundle_is_format_error() -> None:
    with pytest.raises(FormatError):
        ProofBundle.from_text(_bundle(0).to_text().encode())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("index", "proof", "extra"),
    [(-1, (), None), (2**64, (), None), (True, (), None), (0, (bytes(31),), None),
     (0, (bytes(32),) * 65, None), (0, (), b"")],
)  # fmt: skip
def test_invalid_bundle_values_are_format_errors(
    index: int, proof: tuple[bytes, ...], extra: bytes | None
) -> None:
    with pytest.raises(FormatError):
        ProofBundle(index, proof, _CP, extra)


def test_tampered_checkpoint_in_bundle_fails_verification() -> None:
    bundle = _bundle(0)
    note = bundle.checkpoint_note.replace("\n15\n", "\n14\n")
    with pytest.raises(VerificationError):
        verify_proof_bundle(
            ProofBundle(0, bundle.proof, note), entry=b"one", log_verifier=LOG_VERIFIER
        )


def test_random_corruptions_only_raise_ledger_errors() -> None:
    rng = random.Random(9162)
    good = _bundle(6).to_text()
    entries = _log_entries()
    for _ in range(1500):
        chars = list(good)
        pos = rng.randrange(len(chars))
        chars[pos] = rng.choice("\n =+/A0ix\u2014")
        with contextlib.suppress(LedgerError):
            bundle = ProofBundle.from_text("".join(chars))
            verify_proof_bundle(bundle, entry=entries[6], log_verifier=LOG_VERIFIER)
