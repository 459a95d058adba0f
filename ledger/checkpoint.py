"""Transparency-log checkpoints (c2sp.org/tlog-checkpoint).

A checkpoint is the body of a signed note: origin line, decimal tree size, base64
root hash, then optional non-empty extension lines. Parsing is strict so that two
parties who accept the same checkpoint agree on every byte it commits to.

:func:`open_checkpoint` requires the log's own signature and, by default, that the
origin equal the log key's name (tlog-checkpoint: the key name SHOULD match the origin;
we make that a MUST unless the caller names another origin explicitly), then reports
which of the configured witness cosignatures verified.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.errors import FormatError, VerificationError
from ledger.note import (
    Note,
    NoteSignature,
    Signer,
    Verifier,
    decode_base64,
    encode_base64,
    open_note,
    parse_decimal,
    sign_note,
)

__all__ = [
    "HASH_SIZE",
    "Checkpoint",
    "SignedCheckpoint",
    "open_checkpoint",
    "sign_checkpoint",
]

HASH_SIZE = 32
MAX_TREE_SIZE = (1 << 64) - 1
"""Tree sizes are uint64 everywhere else in the ecosystem (Go, Tessera, witnesses)."""


def _check_line(line: str, what: str) -> None:
    if not isinstance(line, str) or not line:
        raise FormatError(f"checkpoint {what} must be a non-empty string")
    if any(ch < " " for ch in line):
        raise FormatError(f"checkpoint {what} contains a newline or control character")


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head at ``size``: the note body, without signatures."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise FormatError(f"checkpoint size must be an int, got {self.size!r}")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise FormatError(f"checkpoint size {self.size} is outside 0..2^64-1")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise FormatError(f"checkpoint root must be {HASH_SIZE} bytes")
        for line in self.extensions:
            _check_line(line, "extension line")

    @classmethod
    def from_text(cls, body: str) -> Checkpoint:
        """Parse a note body: at least three non-empty lines, each ending in newline."""
        if not isinstance(body, str) or not body.endswith("\n"):
            raise FormatError("checkpoint must end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise FormatError(f"checkpoint needs origin, size and root lines; got {len(lines)}")
        if "" in lines:
            raise FormatError("checkpoint lines must not be empty")
        origin, size_line, root_line, *extensions = lines
        size = parse_decimal(size_line, "checkpoint size", maximum=MAX_TREE_SIZE)
        root = decode_base64(root_line, "checkpoint root", size=HASH_SIZE)
        return cls(origin, size, root, tuple(extensions))

    def to_text(self) -> str:
        """The note body, ending in newline."""
        lines = [self.origin, str(self.size), encode_base64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint whose log signature verified, plus the cosignatures that verified."""

    checkpoint: Checkpoint
    note: Note
    log_signature: NoteSignature
    cosignatures: tuple[NoteSignature, ...] = ()

    @property
    def note_text(self) -> str:
        return self.note.to_text()


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """The full signed-note text of ``checkpoint`` signed by the log key ``signer``."""
    return sign_note(checkpoint.to_text(), [signer])


def _check_origin(checkpoint: Checkpoint, log_verifier: Verifier, origin: str | None) -> None:
    expected = log_verifier.name if origin is None else origin
    if checkpoint.origin != expected:
        raise VerificationError(
            f"checkpoint origin {checkpoint.origin!r} is not the expected {expected!r}"
        )


def open_checkpoint(
    note_text: str,
    log_verifier: Verifier,
    *,
    cosigners: Iterable[Verifier] = (),
    origin: str | None = None,
    cosigner_quorum: int = 0,
) -> SignedCheckpoint:
    """Verify a signed checkpoint from the log ``log_verifier``.

    ``origin`` defaults to the log key's name; pass it for logs (like Go's sumdb) whose
    origin line differs from their key name. Unknown signatures are ignored; a known
    one that fails rejects the note. ``cosigner_quorum`` is the minimum number of
    distinct ``cosigners`` that must have verified.
    """
    checkpoint = Checkpoint.from_text(Note.from_text(note_text).text)
    note, verified = open_note(note_text, [log_verifier, *cosigners])
    log_key = (log_verifier.name, bytes(log_verifier.key_id))
    log_sigs = [s for s in verified if s.key == log_key]
    if not log_sigs:
        raise VerificationError(
            f"checkpoint is not signed by the log key {log_key[0]}+{log_key[1].hex()}"
        )
    _check_origin(checkpoint, log_verifier, origin)
    cosigs = tuple(s for s in verified if s.key != log_key)
    if len(cosigs) < cosigner_quorum:
        raise VerificationError(
            f"checkpoint has {len(cosigs)} verified cosignatures, quorum is {cosigner_quorum}"
        )
    return SignedCheckpoint(checkpoint, note, log_sigs[0], cosigs)
