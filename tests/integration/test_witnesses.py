"""Alliance witnesses against a live exchange: real witness processes on loopback ports.

The exchange asks three witnesses (quorum 2) to cosign its checkpoints; the tests check what it
serves, what an auditor requiring a quorum accepts, that down witnesses stop nothing, that a
witness restart keeps its state, and that a split view signed with the log's own key is
refused, kept as evidence and reported by ``corpusx witness evidence``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from exchange.audit import audit_local, audit_remote
from exchange.client import ClientError
from exchange.context import Exchange
from exchange.db import make_engine
from exchange.logkey import load_log_key
from exchange.witnessing import WitnessAnswer, cosignatures, store_cosignatures
from ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.errors import VerificationError
from ledger.note import CosignatureSigner, Ed25519Signer, Ed25519Verifier, Note
from ledger.policy import PolicyWitness, WitnessPolicy
from ledger.proofbundle import ProofBundle, verify_proof_bundle
from ledger.sql import SqlLedger
from ledger.tiles import decode_hash_tile
from ledger.witness import SIZE_CONTENT_TYPE, AddCheckpointRequest
from tests.conftest import LiveServer, Prepared
from tests.integration.witnesses import WitnessProcess, corpusx, running
from tests.unit.ledger.toylog import ToyLog


@pytest.fixture
def witnesses(tmp_path: Path, prepared: Prepared) -> Iterator[list[WitnessProcess]]:
    made = [
        WitnessProcess.create(tmp_path / f"w{i}", f"witness.test/w{i}", prepared.vkey)
        for i in (1, 2, 3)
    ]
    with running(made):
        yield made


@pytest.fixture
def witnessed(
    prepared: Prepared, witnesses: list[WitnessProcess], request: pytest.FixtureRequest
) -> LiveServer:
    """The live exchange, configured to ask the three witnesses, 2 of 3 needed."""
    prepared.settings = prepared.settings.model_copy(
        update={
            "witnesses": ",".join(f"{w.vkey}={w.url}" for w in witnesses),
            "witness_quorum": 2,
            "witness_timeout": 2.0,
        }
    )
    live: LiveServer = request.getfixturevalue("live_server")
    return live


def log_verifier(live: LiveServer) -> Ed25519Verifier:
    return Ed25519Verifier.from_vkey(live.prepared.vkey)


def cosigned_by(note: str, witnesses: list[WitnessProcess], live: LiveServer) -> list[str]:
    """Names of the witnesses whose cosignatures on ``note`` verify."""
    signed = open_checkpoint(note, log_verifier(live), cosigners=[w.verifier for w in witnesses])
    names = {(w.verifier.name, bytes(w.verifier.key_id)): w.name for w in witnesses}
    return sorted(names[s.key] for s in signed.cosignatures)


def attest(live: LiveServer, count: int) -> None:
    with live.operator() as operator:
        for i in range(count):
            operator.attest("attest.witness-test", {"i": i})


def policy_of(witnesses: list[WitnessProcess], k: int) -> WitnessPolicy:
    return WitnessPolicy.k_of_n([PolicyWitness(w.name, w.verifier) for w in witnesses], k)


def test_checkpoints_are_cosigned_served_and_audited(
    witnessed: LiveServer, witnesses: list[WitnessProcess], tmp_path: Path
) -> None:
    live = witnessed
    names = [w.name for w in witnesses]
    attest(live, 3)
    with live.operator() as operator:
        issued = operator.issue_checkpoint()
        assert cosigned_by(issued, witnesses, live) == names
        served = operator.checkpoint()
        assert served == issued and Checkpoint.from_text(Note.from_text(served).text).size == 4
        # The proofs carry the cosigned checkpoint too, so they verify offline with a quorum.
        proof = operator.inclusion_proof(2)
        assert cosigned_by(proof["checkpoint"], witnesses, live) == names
        bundle = ProofBundle.from_text(operator.proof_bundle(2))
        verify_proof_bundle(
            bundle,
            entry=base64.b64decode(operator.entry(2)["canonical"]),
            log_verifier=log_verifier(live),
            cosigners=[w.verifier for w in witnesses],
            cosigner_quorum=3,
        )
        # The log grows; each witness checks the consistency proof from the size it cosigned.
        attest(live, 5)
        grown = operator.issue_checkpoint()
        assert cosigned_by(grown, witnesses, live) == names
    for witness in witnesses:
        store = witness.store()
        try:
            (followed,) = store.logs()
        finally:
            store.close()
        assert followed.state is not None and followed.state.size == 9
        assert "cosigned" in witness.log_text()

    # An auditor that requires 3 of the three witnesses accepts the log ...
    with live.client() as client:
        report = audit_remote(
            client,
            log_verifier(live),
            state_dir=tmp_path / "audit",
            policy=policy_of(witnesses, 3),
        )
        assert report.size == 9 and report.witnesses == tuple(names)
        # ... and one that requires a witness the exchange does not use refuses it.
        stranger = WitnessProcess.create(tmp_path / "w4", "witness.test/w4", live.prepared.vkey)
        with pytest.raises(VerificationError, match="does not satisfy the witness policy"):
            audit_remote(
                client,
                log_verifier(live),
                state_dir=tmp_path / "audit",
                policy=policy_of([*witnesses, stranger], 4),
            )
    engine = make_engine(live.prepared.settings.resolved_database_url)
    try:
        local = audit_local(
            engine, log_verifier(live), state_dir=tmp_path / "local", policy=policy_of(witnesses, 2)
        )
    finally:
        engine.dispose()
    assert local.size == 9 and local.witnesses == tuple(names)


def test_down_witnesses_stop_neither_appends_nor_checkpoints(
    witnessed: LiveServer, witnesses: list[WitnessProcess]
) -> None:
    live = witnessed
    _, w2, w3 = witnesses
    with live.operator() as operator:
        attest(live, 1)
        first = operator.issue_checkpoint()  # size 2, cosigned by all
        assert len(cosigned_by(first, witnesses, live)) == 3

        w3.stop()
        attest(live, 1)
        second = operator.issue_checkpoint()  # size 3: two cosignatures, still the quorum
        assert cosigned_by(second, witnesses, live) == ["witness.test/w1", "witness.test/w2"]
        assert operator.checkpoint() == second

        w2.stop()
        attest(live, 1)
        third = operator.issue_checkpoint()  # size 4: below the quorum
        assert cosigned_by(third, witnesses, live) == ["witness.test/w1"]
        # The log still grows and signs, but serves the newest checkpoint with a quorum.
        assert operator.checkpoint() == second
        assert operator.get_json("/healthz")["size"] == 4

        # Back up: the next round brings them to the latest checkpoint, w3 from its size 2.
        for witness in (w2, w3):
            witness.spawn()
            witness.wait_ready()
        attest(live, 1)
        fourth = operator.issue_checkpoint()
        assert len(cosigned_by(fourth, witnesses, live)) == 3
        assert operator.checkpoint() == fourth


def test_the_exchange_follows_a_witness_that_moved_on(
    witnessed: LiveServer, witnesses: list[WitnessProcess]
) -> None:
    """A witness cosigned a newer checkpoint through someone else: 409, then a retry from it."""
    live = witnessed
    w1 = witnesses[0]
    attest(live, 1)
    with live.operator() as operator:
        operator.issue_checkpoint()  # size 2, cosigned by all
        attest(live, 2)
        # Another worker process (here: the test, with the log key) takes w1 to size 4 first.
        leaves = decode_hash_tile(operator.get_bytes("/ledger/tile/0/000.p/4"), 4)
        settings = live.prepared.settings
        signer = load_log_key(settings.resolved_log_key_file, settings.log_origin)
        tree = ToyLog.of_leaf_hashes(leaves)
        note = sign_checkpoint(Checkpoint(signer.name, 4, tree.root()), signer)
        assert w1.post(AddCheckpointRequest.build(2, tree.proof(2, 4), note)).status_code == 200
        # The exchange still believes w1 is at 2: it is told 4, and asks again from there.
        issued = operator.issue_checkpoint()
    assert Note.from_text(issued).text == Note.from_text(note).text
    assert len(cosigned_by(issued, witnesses, live)) == 3
    assert '"POST /add-checkpoint HTTP/1.1" 409' in w1.log_text()


@pytest.mark.checkpoint_interval(0.3)
def test_the_schedule_collects_cosignatures(
    prepared: Prepared, witnesses: list[WitnessProcess], request: pytest.FixtureRequest
) -> None:
    prepared.settings = prepared.settings.model_copy(
        update={"witnesses": ",".join(f"{w.vkey}={w.url}" for w in witnesses)}
    )
    live: LiveServer = request.getfixturevalue("live_server")
    attest(live, 2)
    deadline = time.monotonic() + 20
    with live.client() as client:
        while True:
            try:
                note = client.checkpoint()
            except ClientError:  # 404 until a majority cosigned a checkpoint
                note = ""
            if note and Checkpoint.from_text(Note.from_text(note).text).size == 3:
                break
            assert time.monotonic() < deadline, "the schedule did not get the checkpoint cosigned"
            time.sleep(0.05)
    # Majority by default: 2 of 3 suffice to serve it; all three are asked.
    assert len(cosigned_by(note, witnesses, live)) >= 2


def test_a_split_view_is_refused_kept_and_reported(
    witnessed: LiveServer, witnesses: list[WitnessProcess]
) -> None:
    """The log key signs a second history; no witness cosigns it, and the evidence is kept."""
    live = witnessed
    attest(live, 3)
    with live.operator() as operator:
        honest = operator.issue_checkpoint()
        leaves = decode_hash_tile(operator.get_bytes("/ledger/tile/0/000.p/4"), 4)
    assert len(cosigned_by(honest, witnesses, live)) == 3
    w1 = witnesses[0]
    # The exchange's own key, as an operator who controls the server could use it.
    settings = live.prepared.settings
    signer = load_log_key(settings.resolved_log_key_file, settings.log_origin)

    # 1. Same size, another tree: entry 3 replaced.
    fork = ToyLog.of_leaf_hashes([*leaves[:3], b"\x11" * 32])
    same_size = sign_checkpoint(Checkpoint(signer.name, 4, fork.root()), signer)
    answer = w1.post(AddCheckpointRequest.build(4, [], same_size))
    assert answer.status_code == 409
    assert answer.headers["content-type"] == SIZE_CONTENT_TYPE and answer.text == "4\n"

    # 2. A bigger tree that rewrites entry 2, with a proof that is valid inside that tree.
    bigger = ToyLog.of_leaf_hashes([*leaves[:2], b"\x22" * 32, b"\x33" * 32, b"\x44" * 32])
    bigger_note = sign_checkpoint(Checkpoint(signer.name, 5, bigger.root()), signer)
    request = AddCheckpointRequest.build(4, bigger.proof(4, 5), bigger_note)
    assert w1.post(request).status_code == 422

    # Nobody cosigned either, so an auditor requiring any witness never accepts them.
    for forged in (same_size, bigger_note):
        with pytest.raises(VerificationError, match="does not satisfy"):
            policy_of(witnesses, 1).verify(forged, signer.verifier)

    # The witness reports both, with both checkpoints and the proof.
    shown = json.loads(corpusx("witness", "evidence", "--data-dir", str(w1.data_dir), "--json"))
    assert shown["count"] == 2
    fork_record, bad_proof = shown["evidence"]
    assert fork_record["kind"] == "fork" and fork_record["checkpoint"] == same_size
    assert fork_record["checkpoint_size"] == fork_record["cosigned_size"] == 4
    assert fork_record["checkpoint_root"] != fork_record["cosigned_root"]
    cosigned_before = Note.from_text(fork_record["cosigned"])
    assert Note.from_text(honest).text == cosigned_before.text  # what the witness had signed
    assert bad_proof["kind"] == "inconsistent" and bad_proof["checkpoint"] == bigger_note
    assert bad_proof["old_size"] == 4 and len(bad_proof["proof"]) == len(bigger.proof(4, 5))
    # Both forged checkpoints verify with the log key: the evidence convicts the log itself.
    for record in (fork_record, bad_proof):
        open_checkpoint(record["checkpoint"], signer.verifier)
    human = corpusx("witness", "evidence", "--data-dir", str(w1.data_dir))
    assert "2 refused checkpoint(s)" in human and "fork" in human and "inconsistent" in human

    # The fork did not move the witness: the honest log still extends through it.
    attest(live, 1)
    with live.operator() as operator:
        assert len(cosigned_by(operator.issue_checkpoint(), witnesses, live)) == 3


# -- the witness process alone ------------------------------------------------------------


@pytest.fixture
def lone(tmp_path: Path) -> Iterator[tuple[ToyLog, WitnessProcess]]:
    """One witness process following a log held in memory (no exchange, no database)."""
    log = ToyLog(Ed25519Signer.generate("example.test/log"), [b"a", b"b", b"c"])
    assert log.signer is not None
    witness = WitnessProcess.create(tmp_path / "w", "witness.test/lone", log.signer.verifier.vkey)
    with running([witness]):
        yield log, witness


def test_the_witness_http_interface(lone: tuple[ToyLog, WitnessProcess]) -> None:
    """Status codes and bodies straight from the witness process."""
    log, w = lone
    health = httpx.get(f"{w.url}/healthz").json()
    assert health == {"status": "ok", "name": "witness.test/lone", "vkey": w.vkey, "logs": 1}
    assert httpx.get(f"{w.url}/vkey").text == w.vkey + "\n"
    assert httpx.get(f"{w.url}/add-checkpoint").status_code == 405
    assert w.post(b"old 0\n").status_code == 400
    assert w.post(b"x" * 20_000).status_code == 400
    assert w.post(AddCheckpointRequest.build(4, [], log.checkpoint())).status_code == 400
    stranger = ToyLog(Ed25519Signer.generate("other.test/log"), [b"a"])
    assert w.post(AddCheckpointRequest.build(0, [], stranger.checkpoint())).status_code == 404
    impostor = ToyLog(Ed25519Signer.generate("example.test/log"), [b"a"])
    assert w.post(AddCheckpointRequest.build(0, [], impostor.checkpoint())).status_code == 403
    done = w.post(AddCheckpointRequest.build(0, [], log.checkpoint()))
    assert done.status_code == 200 and done.text.startswith("\u2014 witness.test/lone ")
    assert done.headers["content-type"] == "text/plain; charset=utf-8"
    assert w.post(AddCheckpointRequest.build(3, [bytes(32)], log.checkpoint())).status_code == 422
    stale = w.post(AddCheckpointRequest.build(0, [], log.checkpoint()))
    assert (stale.status_code, stale.text) == (409, "3\n")
    assert stale.headers["content-type"] == SIZE_CONTENT_TYPE  # exactly, no charset
    assert "cosigned example.test/log at size 3" in w.log_text()


def test_a_witness_restart_keeps_its_state(lone: tuple[ToyLog, WitnessProcess]) -> None:
    log, w = lone
    assert w.post(AddCheckpointRequest.build(0, [], log.checkpoint())).status_code == 200
    fork = log.fork(2, b"C")
    assert w.post(AddCheckpointRequest.build(3, [], fork.checkpoint())).status_code == 409
    w.stop()
    w.spawn()
    w.wait_ready()
    # A client that does not know the witness's size learns it from the restarted witness ...
    answer = w.post(AddCheckpointRequest.build(0, [], log.checkpoint()))
    assert (answer.status_code, answer.text) == (409, "3\n")
    # ... the fork is still refused, and the evidence from before the restart is still there.
    assert w.post(AddCheckpointRequest.build(3, [], fork.checkpoint())).status_code == 409
    log.append(b"d")
    assert w.post(AddCheckpointRequest.build(3, log.proof(3), log.checkpoint())).status_code == 200
    shown = json.loads(corpusx("witness", "evidence", "--data-dir", str(w.data_dir), "--json"))
    assert [r["kind"] for r in shown["evidence"]] == ["fork"]  # the same request, kept once
    logs = json.loads(corpusx("witness", "logs", "--data-dir", str(w.data_dir), "--json"))
    assert logs[0]["size"] == 4 and logs[0]["root"] == log.root().hex()


def test_concurrent_requests_never_roll_the_witness_back(
    lone: tuple[ToyLog, WitnessProcess],
) -> None:
    """The spec's race: many requests from one old size; exactly one may win."""
    log, w = lone
    log.append(*(b"%d" % i for i in range(40)))
    assert w.post(AddCheckpointRequest.build(0, [], log.checkpoint(10))).status_code == 200
    requests = [
        AddCheckpointRequest.build(10, log.proof(10, size), log.checkpoint(size))
        for size in range(11, log.size + 1)
    ]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(w.post, requests))
    winners = [r for r, a in zip(requests, answers, strict=True) if a.status_code == 200]
    assert len(winners) == 1
    assert all(a.status_code == 409 for a in answers if a.status_code != 200)
    store = w.store()
    try:
        (followed,) = store.logs()
    finally:
        store.close()
    assert followed.state is not None and followed.state.size == winners[0].checkpoint.size


def test_a_cosignature_stored_twice_keeps_the_first(prepared: Prepared) -> None:
    """Two worker processes may ask the same witness at once; the second store is a no-op."""
    exchange = Exchange.open(prepared.settings)
    try:
        with exchange.reading() as session:
            checkpoint = SqlLedger(session).latest_checkpoint()
        assert checkpoint is not None
        signer = CosignatureSigner.generate("witness.test/twice")
        witness = PolicyWitness("twice", signer.verifier)
        body = Note.from_text(checkpoint.note).text
        first, second = (
            WitnessAnswer(witness, checkpoint.size, signer.sign(body, timestamp=t))
            for t in (100, 200)
        )
        for answer in (first, second, first):
            with exchange.transaction() as session:
                store_cosignatures(session, checkpoint.size, [answer])
        with exchange.reading() as session:
            (stored,) = cosignatures(session, checkpoint.size)
        assert stored.timestamp == 100 and stored.witness == signer.verifier.vkey
        assert first.signature is not None and stored.signature == first.signature.to_line()
    finally:
        exchange.engine.dispose()
