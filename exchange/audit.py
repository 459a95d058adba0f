"""Auditing the whole log: through the public API (``--server``) or on the database (``--local``).

Both feed every entry to the pure ``ledger.audit.LogAuditor`` (signatures, roles, chain, tree) and
then to ``licensing.market_audit.MarketAuditor`` (what the entries mean: offers, agreements,
deliveries and money replayed against each other), and compare the final root with the signed
checkpoint. The last verified checkpoint is remembered per log key, so the next run also
checks that the log only grew from it (append-only), by recomputing the old root from the
re-fetched entries and by verifying the server's consistency proof. Given a witness policy, the
checkpoint must also carry valid cosignatures that satisfy it (``--witness``/``--policy``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from exchange.client import ExchangeClient
from exchange.witnessing import cosigned_note, served_checkpoint
from ledger.audit import LogAuditor
from ledger.checkpoint import SignedCheckpoint, open_checkpoint
from ledger.entry import b64decode, b64encode
from ledger.errors import VerificationError
from ledger.merkle import verify_consistency
from ledger.note import Ed25519Verifier
from ledger.policy import WitnessPolicy
from ledger.sql import SqlLedger
from ledger.tiles import TILE_WIDTH, decode_entry_bundle, entries_path
from licensing.market_audit import MarketAuditor

Progress = Callable[[int, int], None]
BATCH = 2000


@dataclass(frozen=True)
class AuditReport:
    origin: str
    size: int
    root: str
    previous_size: int | None
    seconds: float
    witnesses: tuple[str, ...] = ()
    """The policy's names of the witnesses whose cosignatures verified."""

    @property
    def rate(self) -> float:
        return self.size / self.seconds if self.seconds else float("inf")


@dataclass(frozen=True)
class AuditState:
    """What the auditor remembers between runs: the key it trusts and the last checkpoint."""

    vkey: str
    size: int
    root: bytes
    checkpoint: str

    @staticmethod
    def path(state_dir: Path, vkey: str) -> Path:
        return state_dir / f"{hashlib.sha256(vkey.encode()).hexdigest()[:16]}.json"

    @classmethod
    def load(cls, state_dir: Path, vkey: str) -> AuditState | None:
        try:
            data = json.loads(cls.path(state_dir, vkey).read_text())
        except FileNotFoundError:
            return None
        return cls(
            data["vkey"],
            int(data["size"]),
            b64decode(data["root"], what="root"),
            data["checkpoint"],
        )

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "vkey": self.vkey,
            "size": self.size,
            "root": b64encode(self.root),
            "checkpoint": self.checkpoint,
        }
        target = self.path(state_dir, self.vkey)
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(record, indent=2))
        temporary.replace(target)


def _audit(
    verifier: Ed25519Verifier,
    checkpoint_note: str,
    entries: Callable[[int], Iterator[tuple[bytes, bytes | None]]],
    *,
    state_dir: Path,
    consistency: Callable[[int, int], list[bytes]] | None,
    progress: Progress | None,
    policy: WitnessPolicy,
) -> AuditReport:
    started = time.perf_counter()
    signed: SignedCheckpoint = (
        policy.verify(checkpoint_note, verifier)
        if policy.requires_cosignatures
        else open_checkpoint(checkpoint_note, verifier)
    )
    size, root = signed.checkpoint.size, signed.checkpoint.root
    previous = AuditState.load(state_dir, verifier.vkey)
    auditor = LogAuditor(log_public_key=verifier.public_key, origin=verifier.name)
    if previous is not None and previous.size > 0:
        if previous.size > size:
            raise VerificationError(
                f"the log shrank: a checkpoint of size {previous.size} was verified before, "
                f"now the log signs size {size}"
            )
        auditor.expect_root(previous.size, previous.root)
        if consistency is not None and previous.size < size:
            verify_consistency(
                size1=previous.size,
                size2=size,
                proof=consistency(previous.size, size),
                root1=previous.root,
                root2=root,
            )
    market = MarketAuditor()
    for data, stored in entries(size):
        market.feed(auditor.feed(data, stored_leaf_hash=stored))
        if progress is not None and auditor.size % BATCH == 0:
            progress(auditor.size, size)
    auditor.check_root(size=size, root=root)
    if progress is not None:
        progress(size, size)
    AuditState(verifier.vkey, size, root, checkpoint_note).save(state_dir)
    return AuditReport(
        signed.checkpoint.origin,
        size,
        root.hex(),
        previous.size if previous else None,
        time.perf_counter() - started,
        _witness_names(policy, signed),
    )


def _witness_names(policy: WitnessPolicy, signed: SignedCheckpoint) -> tuple[str, ...]:
    keys = {s.key for s in signed.cosignatures}
    return tuple(
        w.name for w in policy.witnesses if (w.verifier.name, bytes(w.verifier.key_id)) in keys
    )


def remote_entries(client: ExchangeClient, size: int) -> Iterator[bytes]:
    """The bytes of entries ``0 … size-1``, read through the c2sp tlog-tiles entry bundles."""
    for index in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - index * TILE_WIDTH)
        path = entries_path(index, None if width == TILE_WIDTH else width)
        yield from decode_entry_bundle(client.tile(path), width)


def remote_consistency_proof(client: ExchangeClient, size1: int, size2: int) -> list[bytes]:
    answer = client.consistency_proof(size1, size2)
    return [b64decode(h, what="proof hash", length=32) for h in answer["proof"]]


def audit_remote(
    client: ExchangeClient,
    verifier: Ed25519Verifier,
    *,
    state_dir: Path,
    progress: Progress | None = None,
    policy: WitnessPolicy | None = None,
) -> AuditReport:
    """Re-fetch the whole log through the c2sp tlog-tiles entry bundles and check all of it."""

    def entries(size: int) -> Iterator[tuple[bytes, bytes | None]]:
        for data in remote_entries(client, size):
            yield data, None

    def consistency(size1: int, size2: int) -> list[bytes]:
        return remote_consistency_proof(client, size1, size2)

    return _audit(
        verifier,
        client.checkpoint(),
        entries,
        state_dir=state_dir,
        consistency=consistency,
        progress=progress,
        policy=policy or WitnessPolicy.none(),
    )


def audit_local(
    engine: Engine,
    verifier: Ed25519Verifier,
    *,
    state_dir: Path,
    progress: Progress | None = None,
    policy: WitnessPolicy | None = None,
) -> AuditReport:
    """The same checks on the operator's database, including the stored tree's leaf hashes.

    The checkpoint is the one the server would serve under ``policy`` (with its stored
    cosignatures), else the latest.
    """
    policy = policy or WitnessPolicy.none()
    with Session(engine) as session:
        ledger = SqlLedger(session)
        latest = served_checkpoint(session, policy)
        if latest is None:
            raise VerificationError(
                "the log has no checkpoint to verify against"
                + (" that satisfies the witness policy" if policy.requires_cosignatures else "")
            )
        note = cosigned_note(session, latest)

        def entries(size: int) -> Iterator[tuple[bytes, bytes | None]]:
            position, last_seq = 0, -1
            while True:
                rows = ledger.entries_after(last_seq, BATCH)
                if not rows:
                    return
                stored = dict(ledger.leaf_hashes(position, position + len(rows)))
                for seq, data in rows:
                    if position >= size:  # entries after the checkpoint are not yet committed to
                        return
                    yield data, stored.get(position)
                    position, last_seq = position + 1, seq

        def consistency(size1: int, size2: int) -> list[bytes]:
            return ledger.consistency_proof(size1, size2)

        return _audit(
            verifier,
            note,
            entries,
            state_dir=state_dir,
            consistency=consistency,
            progress=progress,
            policy=policy,
        )
