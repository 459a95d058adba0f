"""The witness protocol (c2sp.org/tlog-witness): requests, the witness's decision, answers.

A log asks a witness to cosign a checkpoint with ``POST <prefix>/add-checkpoint``. The body
is ``old <size>\\n``, up to 63 base64 consistency-proof lines, an empty line and the signed
checkpoint note. The witness answers 200 with its cosignature lines (c2sp.org/tlog-cosignature)
only if the checkpoint is signed by a key it trusts for the origin and extends, by a verified
consistency proof, the last checkpoint it cosigned for that origin. Otherwise it answers

====  =========================================================================================
400   the body is malformed, or the old size is larger than the checkpoint's size
403   no signature by a key trusted for the origin verifies (or one by a trusted key fails)
404   the witness does not follow the checkpoint's origin
409   the old size is not the size the witness last cosigned (the body says which it is,
      ``<size>\\n`` as ``text/x.tlog.size``), or the size equals it and the root differs
422   the consistency proof does not verify
====  =========================================================================================

Everything here is pure: :func:`add_checkpoint` takes the stored state of one log and a
request and returns either :class:`Cosigned` (the new state to persist, and the answer) or
:class:`Refused` (the answer, and the :class:`Evidence` to keep when the log itself signed
something that contradicts what the witness cosigned). A store runs it inside one transaction
and persists the result before answering; this module never does I/O.

The client side (the log) uses :class:`AddCheckpointRequest` to build the body,
:func:`parse_size_answer` to read a 409 and :func:`open_cosignature` to check a 200.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ledger.checkpoint import Checkpoint
from ledger.errors import FormatError, VerificationError
from ledger.merkle import verify_consistency
from ledger.note import (
    CosignatureSigner,
    CosignatureVerifier,
    Note,
    NoteSignature,
    Verifier,
    decode_base64,
    encode_base64,
    open_note,
    parse_decimal,
)

__all__ = [
    "EVIDENCE_KINDS",
    "MAX_PROOF_LINES",
    "MAX_REQUEST_BYTES",
    "SIZE_CONTENT_TYPE",
    "AddCheckpointRequest",
    "Cosigned",
    "Evidence",
    "LogState",
    "Refused",
    "add_checkpoint",
    "answer_request",
    "open_cosignature",
    "parse_size_answer",
]

MAX_PROOF_LINES = 63
"""tlog-witness: a client MUST NOT send more than 63 consistency proof lines."""

MAX_REQUEST_BYTES = 16 * 1024
"""A checkpoint with a few signatures and 63 proof lines is about 4 KiB; more is not a request."""

SIZE_CONTENT_TYPE = "text/x.tlog.size"
"""The content type of a 409 answer, whose body is the witness's tree size and a newline."""

HASH_SIZE = 32
_OLD = "old "

EVIDENCE_KINDS = ("fork", "inconsistent", "stale")
"""What a refused, log-signed request shows (see :class:`Evidence`)."""


# --- the request -------------------------------------------------------------------------


@dataclass(frozen=True)
class AddCheckpointRequest:
    """The body of ``add-checkpoint``: old size, consistency proof, signed checkpoint note."""

    old_size: int
    proof: tuple[bytes, ...]
    note: Note

    def __post_init__(self) -> None:
        if isinstance(self.old_size, bool) or not isinstance(self.old_size, int):
            raise FormatError(f"old size must be an int, got {self.old_size!r}")
        if not 0 <= self.old_size <= (1 << 64) - 1:
            raise FormatError(f"old size {self.old_size} is outside 0..2^64-1")
        if len(self.proof) > MAX_PROOF_LINES:
            raise FormatError(
                f"the consistency proof has {len(self.proof)} lines (max {MAX_PROOF_LINES})"
            )
        for i, h in enumerate(self.proof):
            if not isinstance(h, bytes) or len(h) != HASH_SIZE:
                raise FormatError(f"consistency proof line {i + 1} is not a {HASH_SIZE}-byte hash")

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint.from_text(self.note.text)

    @classmethod
    def build(cls, old_size: int, proof: Sequence[bytes], note_text: str) -> AddCheckpointRequest:
        """The request a log sends: ``note_text`` is its signed checkpoint."""
        request = cls(old_size, tuple(proof), Note.from_text(note_text))
        request.checkpoint  # noqa: B018  (parse it now: a log must not send a non-checkpoint)
        return request

    @classmethod
    def from_bytes(cls, body: bytes) -> AddCheckpointRequest:
        """Parse a request body strictly; anything but the spec's form raises FormatError."""
        if len(body) > MAX_REQUEST_BYTES:
            raise FormatError(f"the request is {len(body)} bytes (max {MAX_REQUEST_BYTES})")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("the request is not UTF-8") from None
        # The old-size and proof lines are never empty, so the first blank line ends them.
        head, blank, note_text = text.partition("\n\n")
        if not blank:
            raise FormatError("the request has no empty line before the checkpoint")
        old_line, *proof_lines = head.split("\n")
        if not old_line.startswith(_OLD):
            raise FormatError(f"the first line must be 'old <size>', got {old_line[:40]!r}")
        old_size = parse_decimal(old_line[len(_OLD) :], "old size")
        if len(proof_lines) > MAX_PROOF_LINES:
            raise FormatError(
                f"the consistency proof has {len(proof_lines)} lines (max {MAX_PROOF_LINES})"
            )
        proof = tuple(
            decode_base64(line, f"consistency proof line {i + 1}", size=HASH_SIZE)
            for i, line in enumerate(proof_lines)
        )
        request = cls(old_size, proof, Note.from_text(note_text))
        request.checkpoint  # noqa: B018  (a note whose body is not a checkpoint is malformed)
        return request

    def to_bytes(self) -> bytes:
        lines = [f"{_OLD}{self.old_size}", *(encode_base64(h) for h in self.proof)]
        return ("".join(line + "\n" for line in lines) + "\n" + self.note.to_text()).encode()

    @property
    def digest(self) -> str:
        """SHA-256 of the body: the same request, retried, is kept as evidence once."""
        return hashlib.sha256(self.to_bytes()).hexdigest()


# --- the witness's state and its answers ------------------------------------------------


@dataclass(frozen=True)
class LogState:
    """What a witness persists per log: the last checkpoint it cosigned, and when."""

    origin: str
    size: int
    root: bytes
    note: str
    """That checkpoint as a signed note: the log's signature and the witness's cosignature."""
    timestamp: int
    """The POSIX time of that cosignature."""


@dataclass(frozen=True)
class Evidence:
    """A refused request that the log itself signed, kept because it may show misbehaviour.

    ``kind`` is one of

    * ``fork``: a checkpoint of the size the witness cosigned, with another root. The two
      signed notes prove by themselves that the log signed two different trees of one size.
    * ``inconsistent``: a checkpoint larger than the cosigned one whose consistency proof does
      not verify. Either the log forked, or it sent a wrong proof; asking the log for a proof
      between the two checkpoints tells which (no valid proof exists for a fork).
    * ``stale``: a checkpoint smaller than the cosigned one. Not a fault by itself (it may be an
      old checkpoint sent late), but it is what a log that shows an old view looks like.
    """

    kind: str
    origin: str
    request: AddCheckpointRequest
    cosigned: str | None
    """The witness's last cosigned checkpoint note for the origin, when the request arrived."""
    detail: str

    def __post_init__(self) -> None:
        if self.kind not in EVIDENCE_KINDS:
            raise FormatError(f"unknown evidence kind {self.kind!r}")

    def to_json(self) -> dict[str, object]:
        checkpoint = self.request.checkpoint
        cosigned = _body(self.cosigned) if self.cosigned is not None else None
        return {
            "kind": self.kind,
            "origin": self.origin,
            "detail": self.detail,
            "old_size": self.request.old_size,
            "proof": [encode_base64(h) for h in self.request.proof],
            "checkpoint": self.request.note.to_text(),
            "checkpoint_size": checkpoint.size,
            "checkpoint_root": checkpoint.root.hex(),
            "cosigned": self.cosigned,
            "cosigned_size": cosigned.size if cosigned else None,
            "cosigned_root": cosigned.root.hex() if cosigned else None,
        }


def _body(note_text: str) -> Checkpoint:
    return Checkpoint.from_text(Note.from_text(note_text).text)


@dataclass(frozen=True)
class Cosigned:
    """The checkpoint was cosigned: persist ``state``, then answer 200 with ``body``."""

    state: LogState
    signature: NoteSignature

    status = 200
    content_type = "text/plain; charset=utf-8"

    @property
    def body(self) -> bytes:
        return (self.signature.to_line() + "\n").encode("utf-8")


@dataclass(frozen=True)
class Refused:
    """The checkpoint was not cosigned: keep ``evidence`` (if any), then answer ``status``.

    ``size`` is the witness's tree size for the origin, sent as the body of a 409.
    """

    status: int
    reason: str
    size: int | None = None
    evidence: Evidence | None = None

    @property
    def content_type(self) -> str:
        return SIZE_CONTENT_TYPE if self.size is not None else "text/plain; charset=utf-8"

    @property
    def body(self) -> bytes:
        text = f"{self.size}\n" if self.size is not None else self.reason + "\n"
        return text.encode("utf-8")


# --- the decision -----------------------------------------------------------------------


def answer_request(
    body: bytes,
    *,
    logs: Mapping[str, Sequence[Verifier]],
    state: LogState | None,
    signer: CosignatureSigner,
    now: int,
) -> Cosigned | Refused:
    """Parse ``body`` and decide it; a malformed body is refused with 400."""
    try:
        request = AddCheckpointRequest.from_bytes(body)
    except FormatError as exc:
        return Refused(400, f"malformed request: {exc}")
    return add_checkpoint(request, logs=logs, state=state, signer=signer, now=now)


def add_checkpoint(
    request: AddCheckpointRequest,
    *,
    logs: Mapping[str, Sequence[Verifier]],
    state: LogState | None,
    signer: CosignatureSigner,
    now: int,
) -> Cosigned | Refused:
    """The witness's decision on one request, given what it stored for the request's origin.

    ``logs`` maps each origin the witness follows to the log keys it trusts for it; ``state``
    is the stored state of the request's origin (``None`` if it never cosigned one); ``now``
    is the POSIX time the cosignature would carry. The checks follow tlog-witness in its
    order: origin (404), log signature (403), old size vs checkpoint size (400), old size vs
    the cosigned size (409), same-size root (409), consistency proof (422).
    """
    checkpoint = request.checkpoint
    trusted = logs.get(checkpoint.origin)
    if not trusted:
        return Refused(404, f"this witness does not follow the log {checkpoint.origin!r}")
    log_signature = _log_signature(request.note, trusted)
    if isinstance(log_signature, Refused):
        return log_signature
    if request.old_size > checkpoint.size:
        return Refused(
            400, f"old size {request.old_size} is larger than the checkpoint's {checkpoint.size}"
        )
    conflict = _check_against_state(request, state)
    if conflict is not None:
        return conflict
    return _cosign(request, log_signature, signer=signer, now=now)


def _log_signature(note: Note, trusted: Sequence[Verifier]) -> NoteSignature | Refused:
    """The first valid signature by a trusted log key, or a 403 saying why there is none."""
    try:
        _, verified = open_note(note.to_text(), trusted)
    except VerificationError as exc:
        return Refused(403, f"the checkpoint is not signed by the log: {exc}")
    return verified[0]


def _check_against_state(request: AddCheckpointRequest, state: LogState | None) -> Refused | None:
    """None if the request extends the cosigned checkpoint; else the refusal (and evidence)."""
    checkpoint = request.checkpoint
    size = state.size if state is not None else 0
    if state is not None and checkpoint.size == state.size and checkpoint.root != state.root:
        return _refuse(
            409,
            "fork",
            request,
            state,
            f"the log signed two trees of size {state.size}: root {checkpoint.root.hex()} here, "
            f"{state.root.hex()} cosigned before",
        )
    if request.old_size != size:
        if checkpoint.size < size:
            return _refuse(
                409,
                "stale",
                request,
                state,
                f"a checkpoint of size {checkpoint.size}, older than the cosigned size {size}",
            )
        return Refused(409, f"old size {request.old_size} is not the cosigned size {size}", size)
    if request.old_size in (0, checkpoint.size):
        if request.proof:
            what = "an empty tree" if request.old_size == 0 else "a tree of the same size"
            return Refused(422, f"a consistency proof from {what} must be empty")
        return None
    assert state is not None  # old size == stored size > 0
    try:
        verify_consistency(
            size1=state.size,
            size2=checkpoint.size,
            proof=request.proof,
            root1=state.root,
            root2=checkpoint.root,
        )
    except VerificationError as exc:
        return _refuse(422, "inconsistent", request, state, f"bad consistency proof: {exc}")
    return None


def _refuse(
    status: int, kind: str, request: AddCheckpointRequest, state: LogState | None, detail: str
) -> Refused:
    evidence = Evidence(
        kind,
        request.checkpoint.origin,
        request,
        state.note if state is not None else None,
        detail,
    )
    size = state.size if state is not None else 0
    return Refused(status, detail, size if status == 409 else None, evidence)


def _cosign(
    request: AddCheckpointRequest,
    log_signature: NoteSignature,
    *,
    signer: CosignatureSigner,
    now: int,
) -> Cosigned:
    checkpoint = request.checkpoint
    signature = signer.sign(request.note.text, timestamp=now)
    # Kept: the log's signature that verified and this witness's own; others are not ours to vouch.
    note = Note(request.note.text, (log_signature, signature)).to_text()
    state = LogState(checkpoint.origin, checkpoint.size, checkpoint.root, note, now)
    return Cosigned(state, signature)


# --- the client side --------------------------------------------------------------------


def parse_size_answer(body: bytes) -> int:
    """The witness's tree size from the body of a 409 answer (``<decimal>\\n``)."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise FormatError("the witness's size answer is not ASCII") from None
    if not text.endswith("\n"):
        raise FormatError(f"the witness's size answer must end in a newline: {text[:40]!r}")
    return parse_decimal(text[:-1], "witness tree size")


def open_cosignature(note_text: str, body: bytes, witness: CosignatureVerifier) -> NoteSignature:
    """The cosignature of ``witness`` on the checkpoint ``note_text``, from a 200 answer.

    As tlog-witness suggests: the answer's signature lines are appended to the checkpoint and
    the note is opened with the witness's key, so lines by other keys are ignored and a line by
    this key that does not verify fails (VerificationError).
    """
    try:
        lines = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("the witness's answer is not UTF-8") from None
    if not lines.endswith("\n") or not lines.strip():
        raise FormatError("the witness's answer must be signature lines, each ending in newline")
    note = Note.from_text(note_text)
    signatures = tuple(NoteSignature.from_line(line) for line in lines[:-1].split("\n"))
    _, verified = open_note(Note(note.text, signatures).to_text(), [witness])
    return verified[0]
