"""Concurrent appends from several processes: gapless sequence numbers, no forks, a valid log.

Four processes append at once (single statements and batches, each in its own transaction) on
SQLite and on PostgreSQL; afterwards the entries are 0..n-1 exactly once, each entry's ``prev`` is
the leaf hash of the entry before, the tree's root equals the root of the stored leaves, and the
whole log passes the auditor. Checkpoints issued by several processes at once (every worker of
``corpusx serve --workers N`` runs the schedule) neither fail nor disagree: issuing holds the
head lock, so each sees the checkpoint the one before it signed.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlmodel import Session, select

from exchange.db import make_engine, unit_of_work
from exchange.integrity import check_integrity
from exchange.logkey import load_log_key
from exchange.signing import new_statement
from ledger.audit import LogAuditor
from ledger.merkle import tree_root
from ledger.note import Ed25519Verifier
from ledger.sql import LedgerCheckpointRow, SqlLedger
from tests.conftest import Prepared
from tests.integration.helpers import ORIGIN

WORKERS = 4
ROUNDS = 15
BATCH = 5


def _writer(url: str, seed: bytes, worker: int, ready: multiprocessing.synchronize.Barrier) -> None:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    engine = make_engine(url)
    ready.wait()
    for round_ in range(ROUNDS):
        size = 1 if round_ % 2 else BATCH
        statements = [
            new_statement(
                "attest.load",
                {"worker": worker, "round": round_, "i": i},
                member="operator",
                key=key,
                log=ORIGIN,
            )
            for i in range(size)
        ]
        with unit_of_work(engine) as session:
            SqlLedger(session).append_many(statements)
    engine.dispose()


ISSUERS, ISSUES = 2, 40


def _issuer(
    url: str,
    key_file: str,
    origin: str,
    ready: multiprocessing.synchronize.Barrier,
    written: multiprocessing.synchronize.Event,
) -> None:
    """What every worker's checkpoint schedule does, as fast as it can, until the writers are
    done (at least ISSUES times), so that checkpoints are issued while entries are appended
    however the processes happen to be scheduled."""
    engine = make_engine(url)
    signer = load_log_key(Path(key_file), origin)
    ready.wait()
    issued = 0
    while issued < ISSUES or not written.is_set():
        with unit_of_work(engine) as session:
            SqlLedger(session).issue_checkpoint(signer)
        issued += 1
    engine.dispose()


def test_several_processes_append_without_gaps_or_forks(prepared: Prepared, tmp_path: Path) -> None:
    url = prepared.settings.resolved_database_url
    seed = prepared.operator_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(WORKERS + ISSUERS)
    written = context.Event()
    key_file = str(prepared.settings.resolved_log_key_file)
    writers = [context.Process(target=_writer, args=(url, seed, w, ready)) for w in range(WORKERS)]
    issuers = [
        context.Process(target=_issuer, args=(url, key_file, ORIGIN, ready, written))
        for _ in range(ISSUERS)
    ]
    for process in writers + issuers:
        process.start()
    for process in writers:
        process.join(timeout=300)
    written.set()
    for process in writers + issuers:
        process.join(timeout=300)
        assert process.exitcode == 0  # no issuer ever met a conflict

    per_worker = sum(1 if r % 2 else BATCH for r in range(ROUNDS))
    expected = 1 + WORKERS * per_worker
    engine = make_engine(url)
    with Session(engine) as session:
        ledger = SqlLedger(session)
        rows = ledger.entries_after(-1, 10 * expected)
        assert [seq for seq, _ in rows] == list(range(expected))
        head = ledger.head()
        assert head.size == expected
        leaves = [h for _, h in ledger.leaf_hashes(0, expected)]
        assert head.root == tree_root(leaves)
        auditor = LogAuditor(log_public_key=Ed25519Verifier.from_vkey(prepared.vkey).public_key)
        for (_, data), stored in zip(rows, leaves, strict=True):
            auditor.feed(data, stored_leaf_hash=stored)
        auditor.check_root(size=expected, root=head.root)
        issued = session.exec(select(LedgerCheckpointRow)).all()
        signer = load_log_key(prepared.settings.resolved_log_key_file, prepared.settings.log_origin)
        checkpoint = ledger.issue_checkpoint(signer)
        assert checkpoint.size == expected
    report = check_integrity(engine)  # every checkpoint's root is the tree's at its size
    engine.dispose()
    assert report.ok, report.problems
    assert len(issued) > 2
