"""Ledger use cases of the exchange: attestations, checkpoints, proofs and bundles."""

from __future__ import annotations

from sqlmodel import Session

from exchange.errors import InvalidInput, NotFound
from exchange.models import Member
from exchange.statements import StatementPolicy, check_statement, record_statement
from exchange.witnessing import cosigned_note, served_checkpoint
from ledger.entry import ATTEST_PREFIX, Entry, SignedStatement
from ledger.errors import StoreError
from ledger.note import Ed25519Signer
from ledger.policy import WitnessPolicy
from ledger.proofbundle import ProofBundle
from ledger.sql import LedgerCheckpointRow, SqlLedger


def attest(
    session: Session, signed: SignedStatement, *, caller: Member, policy: StatementPolicy
) -> Entry:
    """A member's own signed statement, ``attest.NAME`` (e.g. an evaluation report)."""
    entry_type = signed.statement.type
    if not entry_type.startswith(ATTEST_PREFIX):
        raise InvalidInput(f"members may record only attest.* statements here, not {entry_type}")
    check_statement(session, signed, caller=caller, expected_type=entry_type, policy=policy)
    return record_statement(session, signed)


def covering_checkpoint(session: Session, signer: Ed25519Signer, size: int) -> LedgerCheckpointRow:
    """The latest checkpoint, issued now if it does not yet cover ``size`` entries."""
    ledger = SqlLedger(session)
    latest = ledger.latest_checkpoint()
    if latest is None or latest.size < size:
        latest = ledger.issue_checkpoint(signer)
    return latest


def proof_bundle(
    session: Session,
    signer: Ed25519Signer,
    seq: int,
    *,
    policy: WitnessPolicy,
) -> ProofBundle:
    """A c2sp tlog-proof@v1 bundle proving entry ``seq`` against a signed checkpoint.

    The checkpoint is the one ``GET /ledger/checkpoint`` serves (with its cosignatures) if it
    covers the entry; else the latest, issued now if needed (cosigned later, if at all).
    """
    ledger = SqlLedger(session)
    if not 0 <= seq < ledger.head().size:
        raise NotFound(f"there is no entry {seq}")
    checkpoint, note = proving_checkpoint(session, signer, seq + 1, policy=policy)
    proof = ledger.inclusion_proof(seq, checkpoint.size)
    return ProofBundle(index=seq, proof=tuple(proof), checkpoint_note=note)


def proving_checkpoint(
    session: Session, signer: Ed25519Signer, size: int, *, policy: WitnessPolicy
) -> tuple[LedgerCheckpointRow, str]:
    """The checkpoint to prove the first ``size`` entries against, and its note: the one
    ``GET /ledger/checkpoint`` serves (with its cosignatures) if it covers them; else the
    latest, issued now if needed (cosigned later, if at all)."""
    served = served_checkpoint(session, policy)
    checkpoint = served if served is not None and served.size >= size else None
    checkpoint = checkpoint or covering_checkpoint(session, signer, size)
    return checkpoint, cosigned_note(session, checkpoint)


def entry_bytes(session: Session, seq: int) -> bytes:
    try:
        return SqlLedger(session).entry_data(seq)
    except StoreError:
        raise NotFound(f"there is no entry {seq}") from None
