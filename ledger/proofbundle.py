"""Offline inclusion proofs (c2sp.org/tlog-proof@v1), a.k.a. "spicy signatures".

A proof bundle is everything a verifier needs to check, without talking to the log,
that an entry is in it: the entry's index, its Merkle inclusion proof and the signed
(and possibly cosigned) checkpoint the proof leads to. The format is::

    c2sp.org/tlog-proof@v1
    [extra <base64>]
    index <decimal>
    <base64 hash>            (zero or more, leaf's sibling first)
    <empty line>
    <checkpoint note, verbatim>

The extra data is not authenticated; it is carried, never trusted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from ledger.errors import FormatError, VerificationError
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.note import Note, Verifier, decode_base64, encode_base64, parse_decimal

__all__ = ["HEADER", "MAX_PROOF_HASHES", "ProofBundle", "verify_proof_bundle"]

HEADER = "c2sp.org/tlog-proof@v1"
HASH_SIZE = 32
MAX_PROOF_HASHES = 64
"""An inclusion proof in a tree of at most 2^64 leaves has at most 64 hashes."""
MAX_INDEX = (1 << 64) - 1

_EXTRA = "extra "
_INDEX = "index "


@dataclass(frozen=True)
class ProofBundle:
    """An entry's index, inclusion proof, checkpoint note and optional opaque extra data."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint_note: str
    extra: bytes | None = None

    def __post_init__(self) -> None:
        if isinstance(self.index, bool) or not isinstance(self.index, int):
            raise FormatError(f"proof index must be an int, got {self.index!r}")
        if not 0 <= self.index <= MAX_INDEX:
            raise FormatError(f"proof index {self.index} is outside 0..2^64-1")
        if len(self.proof) > MAX_PROOF_HASHES:
            raise FormatError(f"proof has {len(self.proof)} hashes (max {MAX_PROOF_HASHES})")
        for i, h in enumerate(self.proof):
            if not isinstance(h, bytes) or len(h) != HASH_SIZE:
                raise FormatError(f"proof hash {i} is not {HASH_SIZE} bytes")
        if self.extra is not None and not self.extra:
            # "If no extra data is present, this line is omitted": empty extra is None.
            raise FormatError("extra data must be non-empty bytes or None")
        # The checkpoint must be well-formed even before anyone verifies it.
        Checkpoint.from_text(Note.from_text(self.checkpoint_note).text)

    @property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint body, *unverified*: use :func:`verify_proof_bundle` to trust it."""
        return Checkpoint.from_text(Note.from_text(self.checkpoint_note).text)

    @classmethod
    def from_text(cls, text: str) -> ProofBundle:
        """Parse a ``.tlog-proof`` file exactly as tlog-proof@v1 specifies."""
        if not isinstance(text, str):
            raise FormatError(f"proof must be str, got {type(text).__name__}")
        head, sep, note = text.partition("\n\n")
        if not sep:
            raise FormatError("proof has no empty line before its checkpoint")
        lines = head.split("\n")
        if lines[0] != HEADER:
            raise FormatError(f"proof must start with {HEADER!r}, got {lines[0]!r}")
        pos = 1
        extra = None
        if pos < len(lines) and lines[pos].startswith(_EXTRA):
            extra = decode_base64(lines[pos][len(_EXTRA) :], "proof extra data")
            if not extra:
                raise FormatError("proof 'extra' line carries no data; omit the line instead")
            pos += 1
        if pos >= len(lines) or not lines[pos].startswith(_INDEX):
            raise FormatError("proof has no 'index' line after its header")
        index = parse_decimal(lines[pos][len(_INDEX) :], "proof index", maximum=MAX_INDEX)
        hashes = lines[pos + 1 :]
        if len(hashes) > MAX_PROOF_HASHES:
            raise FormatError(f"proof has {len(hashes)} hashes (max {MAX_PROOF_HASHES})")
        proof = tuple(decode_base64(h, "proof hash", size=HASH_SIZE) for h in hashes)
        return cls(index, proof, note, extra)

    def to_text(self) -> str:
        """Serialise exactly as :meth:`from_text` reads it."""
        lines = [HEADER]
        if self.extra is not None:
            lines.append(_EXTRA + encode_base64(self.extra))
        lines.append(f"{_INDEX}{self.index}")
        lines.extend(encode_base64(h) for h in self.proof)
        return "".join(line + "\n" for line in lines) + "\n" + self.checkpoint_note


def verify_proof_bundle(
    bundle: ProofBundle,
    *,
    entry: bytes,
    log_verifier: Verifier,
    cosigners: Iterable[Verifier] = (),
    origin: str | None = None,
    cosigner_quorum: int = 0,
) -> SignedCheckpoint:
    """Check that ``entry`` is at ``bundle.index`` in the log, as signed by ``log_verifier``.

    Opens the checkpoint (log signature required; unknown cosignatures ignored; at least
    ``cosigner_quorum`` of ``cosigners`` must verify), then checks the RFC 6962 inclusion
    proof of ``leaf_hash(entry)`` against its root. Returns the opened checkpoint.
    """
    signed = open_checkpoint(
        bundle.checkpoint_note,
        log_verifier,
        cosigners=cosigners,
        origin=origin,
        cosigner_quorum=cosigner_quorum,
    )
    size = signed.checkpoint.size
    if bundle.index >= size:
        raise VerificationError(
            f"proof index {bundle.index} is outside the checkpoint's tree of size {size}"
        )
    verify_inclusion(
        leaf_hash=leaf_hash(entry),
        index=bundle.index,
        size=size,
        proof=bundle.proof,
        root=signed.checkpoint.root,
    )
    return signed
