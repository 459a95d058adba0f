"""The witness's decision (c2sp.org/tlog-witness), request parsing and the client helpers."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ledger.checkpoint import Checkpoint
from ledger.errors import FormatError, VerificationError
from ledger.note import (
    CosignatureSigner,
    Ed25519Signer,
    Ed25519Verifier,
    Note,
    cosignature_timestamp,
    open_note,
)
from ledger.tiles import decode_hash_tile
from ledger.witness import (
    MAX_REQUEST_BYTES,
    SIZE_CONTENT_TYPE,
    AddCheckpointRequest,
    Cosigned,
    LogState,
    Refused,
    add_checkpoint,
    answer_request,
    open_cosignature,
    parse_size_answer,
)
from tests.unit.ledger.toylog import ToyLog

ORIGIN = "example.com/toy"
NOW = 1_800_000_000
TESSERA = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "tessera-log"
TESSERA_VKEY = "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx"


class Witness:
    """The pure decision with its state kept in a variable, as a store would keep it on disk."""

    def __init__(self, *logs: Ed25519Verifier) -> None:
        self.signer = CosignatureSigner.generate("witness.example/w1")
        self.logs: dict[str, list[Ed25519Verifier]] = {}
        for verifier in logs:
            self.logs.setdefault(verifier.name, []).append(verifier)
        self.state: LogState | None = None

    def ask(self, old: int, proof: list[bytes], note: str, *, now: int = NOW) -> Cosigned | Refused:
        body = AddCheckpointRequest.build(old, proof, note).to_bytes()
        return self.send(body, now=now)

    def send(self, body: bytes, *, now: int = NOW) -> Cosigned | Refused:
        outcome = answer_request(
            body, logs=self.logs, state=self.state, signer=self.signer, now=now
        )
        if isinstance(outcome, Cosigned):
            self.state = outcome.state
        return outcome


@pytest.fixture
def log() -> ToyLog:
    return ToyLog(Ed25519Signer.generate(ORIGIN), [b"zero", b"one", b"two"])


@pytest.fixture
def witness(log: ToyLog) -> Witness:
    return Witness(log.signer.verifier)


def cosigned(outcome: Cosigned | Refused) -> Cosigned:
    assert isinstance(outcome, Cosigned), outcome
    return outcome


def refused(outcome: Cosigned | Refused, status: int) -> Refused:
    assert isinstance(outcome, Refused), outcome
    assert outcome.status == status, outcome.reason
    return outcome


# -- cosigning ---------------------------------------------------------------------------


def test_the_first_checkpoint_is_cosigned_and_becomes_the_state(log: ToyLog, witness: Witness):
    note = log.checkpoint()
    done = cosigned(witness.ask(0, [], note))
    assert done.status == 200
    assert done.body.decode().startswith("\u2014 witness.example/w1 ")
    assert done.body.endswith(b"\n") and done.body.count(b"\n") == 1
    assert cosignature_timestamp(done.signature) == NOW
    # The answer verifies as a tlog-cosignature on exactly the checkpoint body.
    signature = open_cosignature(note, done.body, witness.signer.verifier)
    assert signature == done.signature
    assert (done.state.size, done.state.root, done.state.timestamp) == (3, log.root(), NOW)
    # The stored note carries the log's signature and the witness's, and both verify.
    stored = Note.from_text(done.state.note)
    _, verified = open_note(done.state.note, [log.signer.verifier, witness.signer.verifier])
    assert len(verified) == 2 == len(stored.signatures)


def test_a_consistent_extension_is_cosigned(log: ToyLog, witness: Witness):
    cosigned(witness.ask(0, [], log.checkpoint()))
    log.append(b"three", b"four", b"five", b"six")
    done = cosigned(witness.ask(3, log.proof(3), log.checkpoint(), now=NOW + 5))
    assert done.state.size == 7
    assert cosignature_timestamp(done.signature) == NOW + 5


def test_the_same_checkpoint_again_is_cosigned_again(log: ToyLog, witness: Witness):
    cosigned(witness.ask(0, [], log.checkpoint()))
    again = cosigned(witness.ask(3, [], log.checkpoint(), now=NOW + 1))
    assert again.state.size == 3 and again.state.timestamp == NOW + 1


def test_other_signatures_on_the_checkpoint_are_ignored(log: ToyLog, witness: Witness):
    other = CosignatureSigner.generate("witness.example/other")
    note = Note.from_text(log.checkpoint())
    with_other = note.with_signatures([other.sign(note.text, timestamp=NOW)]).to_text()
    done = cosigned(witness.ask(0, [], with_other))
    assert len(Note.from_text(done.state.note).signatures) == 2  # the log's and ours only


def test_a_second_trusted_key_for_the_origin_is_accepted(log: ToyLog):
    rotated = Ed25519Signer.generate(ORIGIN)
    witness = Witness(log.signer.verifier, rotated.verifier)
    cosigned(witness.ask(0, [], ToyLog(rotated, log.leaves).checkpoint()))


def test_a_real_tessera_log_is_witnessed_checkpoint_by_checkpoint():
    """Interoperability: checkpoints 1..15 of a log written by transparency-dev/tessera."""
    root = TESSERA / "testdata" / "log"
    verifier = Ed25519Verifier.from_vkey(TESSERA_VKEY)
    witness = Witness(verifier)
    leaves = decode_hash_tile((root / "tile" / "0" / "000.p" / "15").read_bytes(), 15)
    tree = ToyLog.of_leaf_hashes(leaves)
    old = 0
    for size in range(1, 16):
        note = (root / f"checkpoint.{size}").read_text()
        cosigned(witness.ask(old, tree.proof(old, size), note))
        old = size
    assert witness.state is not None and witness.state.size == 15


# -- refusals ----------------------------------------------------------------------------


def test_an_unknown_origin_is_404(log: ToyLog):
    witness = Witness(Ed25519Signer.generate("example.com/another").verifier)
    answer = refused(witness.ask(0, [], log.checkpoint()), 404)
    assert answer.evidence is None and witness.state is None


def test_a_checkpoint_not_signed_by_the_trusted_key_is_403(log: ToyLog, witness: Witness):
    impostor = ToyLog(Ed25519Signer.generate(ORIGIN), log.leaves)  # same name, other key
    answer = refused(witness.ask(0, [], impostor.checkpoint()), 403)
    assert answer.evidence is None and witness.state is None


def test_a_bad_signature_by_the_trusted_key_is_403(log: ToyLog, witness: Witness):
    note = Note.from_text(log.checkpoint())
    forged = Note(note.text.replace("\n3\n", "\n4\n"), note.signatures).to_text()
    assert "not signed by the log" in refused(witness.ask(0, [], forged), 403).reason


def test_an_old_size_above_the_checkpoint_size_is_400(log: ToyLog, witness: Witness):
    refused(witness.ask(4, [], log.checkpoint()), 400)


def test_a_wrong_old_size_is_409_with_the_witness_size(log: ToyLog, witness: Witness):
    cosigned(witness.ask(0, [], log.checkpoint()))
    log.append(b"three", b"four")
    for old in (0, 2, 4):
        answer = refused(witness.ask(old, log.proof(old), log.checkpoint()), 409)
        assert (answer.body, answer.content_type) == (b"3\n", SIZE_CONTENT_TYPE)
        assert answer.evidence is None  # a newer checkpoint from a client that did not know
    assert witness.state is not None and witness.state.size == 3


def test_a_checkpoint_older_than_the_cosigned_one_is_kept_as_stale(log: ToyLog, witness: Witness):
    old_note = log.checkpoint(2)
    log.append(b"three")
    cosigned(witness.ask(0, [], log.checkpoint()))
    answer = refused(witness.ask(0, [], old_note), 409)
    assert answer.body == b"4\n"
    assert answer.evidence is not None and answer.evidence.kind == "stale"
    assert answer.evidence.cosigned == witness.state.note if witness.state else False


def test_a_fork_of_the_same_size_is_409_and_kept_with_both_checkpoints(
    log: ToyLog, witness: Witness
):
    cosigned(witness.ask(0, [], log.checkpoint()))
    fork = log.fork(2, b"TWO")  # same log key, same size 3, another last entry
    for old in (3, 0):  # whatever old size the request claims
        answer = refused(witness.ask(old, [], fork.checkpoint()), 409)
        assert answer.body == b"3\n"
        evidence = answer.evidence
        assert evidence is not None and evidence.kind == "fork"
        assert "two trees of size 3" in evidence.detail
        shown = evidence.to_json()
        assert shown["checkpoint"] == fork.checkpoint()
        assert shown["cosigned"] == witness.state.note if witness.state else False
        assert shown["checkpoint_size"] == shown["cosigned_size"] == 3
        assert shown["checkpoint_root"] != shown["cosigned_root"]
    assert witness.state is not None and witness.state.root == log.root()


def test_an_inconsistent_bigger_tree_is_422_and_kept_with_its_proof(log: ToyLog, witness: Witness):
    cosigned(witness.ask(0, [], log.checkpoint()))
    fork = log.fork(2, b"TWO", b"three", b"four")  # size 5, diverging at entry 2
    proof = fork.proof(3)  # a proof that is valid inside the forked tree
    answer = refused(witness.ask(3, proof, fork.checkpoint()), 422)
    assert answer.size is None and b"consistency" in answer.body
    evidence = answer.evidence
    assert evidence is not None and evidence.kind == "inconsistent"
    assert evidence.request.proof == tuple(proof)
    assert evidence.request.note.to_text() == fork.checkpoint()
    assert witness.state is not None and witness.state.size == 3
    # The real log still extends: the witness was not moved by the fork.
    log.append(b"three", b"four")
    cosigned(witness.ask(3, log.proof(3), log.checkpoint()))


def test_a_proof_from_an_empty_or_equal_tree_must_be_empty(log: ToyLog, witness: Witness):
    hash_ = bytes(32)
    refused(witness.ask(0, [hash_], log.checkpoint()), 422)
    cosigned(witness.ask(0, [], log.checkpoint()))
    refused(witness.ask(3, [hash_], log.checkpoint()), 422)


def test_a_proof_of_the_wrong_length_is_422(log: ToyLog, witness: Witness):
    cosigned(witness.ask(0, [], log.checkpoint(2)))
    good = log.proof(2)
    refused(witness.ask(2, [*good, bytes(32)], log.checkpoint()), 422)
    refused(witness.ask(2, [], log.checkpoint()), 422)


# -- malformed requests ------------------------------------------------------------------


def body(log: ToyLog) -> bytes:
    return AddCheckpointRequest.build(0, [], log.checkpoint()).to_bytes()


HASH64 = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b.replace(b"old 0\n", b"old 00\n"),
        lambda b: b.replace(b"old 0\n", b"Old 0\n"),
        lambda b: b.replace(b"old 0\n", b"old -0\n"),
        lambda b: b.replace(b"old 0\n", b"old  0\n"),
        lambda b: b.replace(b"old 0\n", b"old 0\r\n"),
        lambda b: b.replace(b"old 0\n\n", b"old 0\n"),  # no empty line
        lambda b: b.replace(b"old 0\n", b"old 0\n" + HASH64.rstrip("=").encode() + b"\n"),
        lambda b: b.replace(b"old 0\n", b"old 0\n" + base64.b64encode(bytes(31)) + b"\n"),
        lambda b: b.replace(b"old 0\n", b"old 0\n" + (HASH64 + "\n").encode() * 64),
        lambda b: b[: b.rindex("\u2014".encode())],  # no signature line
        lambda b: b.replace(b"\n3\n", b"\nthree\n"),  # not a checkpoint body
        lambda b: b + b"\xff",
        lambda b: b"",
        lambda b: b"old 0\n\n",
        lambda b: b + b"x" * MAX_REQUEST_BYTES,
    ],
)
def test_malformed_bodies_are_400(log: ToyLog, witness: Witness, mangle):
    answer = refused(witness.send(mangle(body(log))), 400)
    assert answer.body.startswith(b"malformed request")
    assert answer.evidence is None and witness.state is None


def test_a_request_round_trips_through_bytes(log: ToyLog):
    log.append(b"three", b"four")
    request = AddCheckpointRequest.build(3, log.proof(3), log.checkpoint())
    data = request.to_bytes()
    assert data.startswith(b"old 3\n") and b"\n\nexample.com/toy\n5\n" in data
    assert AddCheckpointRequest.from_bytes(data) == request
    assert request.checkpoint == Checkpoint(ORIGIN, 5, log.root())


def test_at_most_63_proof_lines_are_accepted(log: ToyLog):
    for count, ok in ((63, True), (64, False)):
        data = b"old 1\n" + (HASH64 + "\n").encode() * count + b"\n" + log.checkpoint().encode()
        if ok:
            assert len(AddCheckpointRequest.from_bytes(data).proof) == 63
        else:
            with pytest.raises(FormatError, match="63"):
                AddCheckpointRequest.from_bytes(data)


def test_the_parsed_and_the_raw_entry_points_agree(log: ToyLog, witness: Witness):
    """``add_checkpoint`` (parsed request) and ``answer_request`` (bytes) agree."""
    request = AddCheckpointRequest.build(0, [], log.checkpoint())
    direct = add_checkpoint(request, logs=witness.logs, state=None, signer=witness.signer, now=NOW)
    assert isinstance(direct, Cosigned)
    assert direct.state == cosigned(witness.send(request.to_bytes())).state


# -- client helpers ----------------------------------------------------------------------


def test_the_client_reads_a_size_answer():
    assert parse_size_answer(b"20852014\n") == 20852014
    for bad in (b"12", b"012\n", b"-1\n", b"1 \n", b"\xff\n", b""):
        with pytest.raises(FormatError):
            parse_size_answer(bad)


def test_the_client_checks_the_cosignature_and_ignores_other_lines(log: ToyLog, witness: Witness):
    note = log.checkpoint()
    done = cosigned(witness.ask(0, [], note))
    other = CosignatureSigner.generate("witness.example/other")
    extra = (other.sign(Note.from_text(note).text).to_line() + "\n").encode()
    assert open_cosignature(note, extra + done.body, witness.signer.verifier) == done.signature
    with pytest.raises(VerificationError, match="no signature from a known key"):
        open_cosignature(note, extra, witness.signer.verifier)
    # A cosignature by the witness over another checkpoint does not verify on this one.
    log.append(b"three")
    with pytest.raises(VerificationError, match="does not verify"):
        open_cosignature(log.checkpoint(), done.body, witness.signer.verifier)
    for bad in (b"", b"\n", done.body[:-1], b"not a signature line\n"):
        with pytest.raises(FormatError):
            open_cosignature(note, bad, witness.signer.verifier)
