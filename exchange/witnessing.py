"""Witnessing on the exchange side: asking witnesses to cosign, storing and serving cosignatures.

After a checkpoint is issued (the scheduled loop, ``POST /ledger/checkpoint``), the
:class:`WitnessCollector` sends the latest checkpoint to every configured witness that has not
cosigned it yet, in parallel, each request with the consistency proof from the size that
witness last cosigned (a 409 answer names the witness's size: the request is retried once from
there). Verified cosignatures are stored in ``witness_cosignature``. No database transaction is
open during the network calls: proofs are read, and cosignatures written, in short transactions
of their own. A witness that is down, slow or refuses only misses that checkpoint; the next
round asks it again.

``GET /ledger/checkpoint`` serves, when the witness policy requires cosignatures, the newest
checkpoint that satisfies it, with every cosignature stored for it appended as signature lines
(:func:`served_checkpoint`). See docs/ledger.md 8.7.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, func, select

from exchange.errors import WitnessConfigError
from exchange.models import WitnessCosignature
from exchange.settings import Settings
from ledger.errors import LedgerError
from ledger.note import (
    CosignatureVerifier,
    Ed25519Verifier,
    Note,
    NoteSignature,
    cosignature_timestamp,
)
from ledger.policy import PolicyWitness, WitnessPolicy
from ledger.sql import LedgerCheckpointRow, SqlLedger
from ledger.witness import AddCheckpointRequest, open_cosignature, parse_size_answer

if TYPE_CHECKING:
    from exchange.context import Exchange

log = logging.getLogger("corpusx.witnessing")

MAX_ATTEMPTS = 3
"""One request, and a retry from each size a 409 names (a second 409 is a real conflict)."""

SCAN_PAGE = 200
"""Checkpoint sizes read per query when looking for the newest one the policy accepts."""

# A vkey of an Ed25519 key: name, 8 hex digits, base64 of 33 bytes (44 characters, no '=').
_ENTRY = re.compile(r"(?P<vkey>[^\s+]+\+[0-9a-fA-F]{8}\+[A-Za-z0-9+/]{44})=(?P<url>\S+)")


# -- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class WitnessConfig:
    """The witness policy the exchange serves checkpoints by, and how long it waits."""

    policy: WitnessPolicy = field(default_factory=WitnessPolicy.none)
    timeout: float = 5.0

    @property
    def contacted(self) -> tuple[PolicyWitness, ...]:
        """The witnesses the exchange asks for cosignatures: those with a URL."""
        return tuple(w for w in self.policy.witnesses if w.url)


def load_witness_config(settings: Settings, log_verifier: Ed25519Verifier) -> WitnessConfig:
    """The configuration from settings: an inline list with a quorum, or a policy file."""
    if settings.witness_policy is not None:
        if settings.witnesses or settings.witness_quorum is not None:
            raise WitnessConfigError(
                "set either CORPUSX_WITNESS_POLICY or CORPUSX_WITNESSES (and "
                "CORPUSX_WITNESS_QUORUM), not both"
            )
        policy = _policy_file(settings)
    else:
        policy = _inline_policy(settings.witnesses, settings.witness_quorum)
    try:
        policy.check_log(log_verifier)
    except LedgerError as exc:
        raise WitnessConfigError(str(exc)) from None
    return WitnessConfig(policy, settings.witness_timeout)


def _policy_file(settings: Settings) -> WitnessPolicy:
    path = settings.witness_policy
    assert path is not None
    try:
        # Octets with the high bit set are opaque to the policy format: keep them as they are.
        text = path.read_bytes().decode("utf-8", errors="surrogateescape")
        return WitnessPolicy.from_text(text)
    except OSError as exc:
        raise WitnessConfigError(f"cannot read the witness policy {path}: {exc}") from None
    except LedgerError as exc:
        raise WitnessConfigError(f"the witness policy {path} is invalid: {exc}") from None


def _inline_policy(entries: str, quorum: int | None) -> WitnessPolicy:
    witnesses = []
    for entry in (e for e in re.split(r"[,\s]+", entries) if e):
        match = _ENTRY.fullmatch(entry)
        if match is None:
            raise WitnessConfigError(f"CORPUSX_WITNESSES: expected VKEY=URL, got {entry!r}")
        try:
            verifier = CosignatureVerifier.from_vkey(match["vkey"])
        except LedgerError as exc:
            raise WitnessConfigError(f"CORPUSX_WITNESSES: {exc}") from None
        witnesses.append(PolicyWitness(verifier.name, verifier, match["url"]))
    k = len(witnesses) // 2 + 1 if quorum is None and witnesses else (quorum or 0)
    try:
        return WitnessPolicy.k_of_n(witnesses, k)
    except LedgerError as exc:
        raise WitnessConfigError(f"CORPUSX_WITNESSES / CORPUSX_WITNESS_QUORUM: {exc}") from None


# -- stored cosignatures -------------------------------------------------------------------


def cosignatures(session: Session, size: int) -> list[WitnessCosignature]:
    return list(
        session.exec(
            select(WitnessCosignature)
            .where(WitnessCosignature.checkpoint_size == size)
            .order_by(col(WitnessCosignature.witness))
        ).all()
    )


def cosigned_note(session: Session, checkpoint: LedgerCheckpointRow) -> str:
    """The checkpoint's note with every stored cosignature appended (still a valid note)."""
    lines = [NoteSignature.from_line(c.signature) for c in cosignatures(session, checkpoint.size)]
    if not lines:
        return checkpoint.note
    return Note.from_text(checkpoint.note).with_signatures(lines).to_text()


def served_checkpoint(session: Session, policy: WitnessPolicy) -> LedgerCheckpointRow | None:
    """The checkpoint ``GET /ledger/checkpoint`` serves: the newest the policy accepts.

    With no cosignature required that is the latest checkpoint. Otherwise it is the largest
    checkpoint whose stored cosignatures satisfy the policy, or None if no checkpoint does yet
    (cosignatures are only stored after they verified, so counting them is enough).
    """
    ledger = SqlLedger(session)
    if not policy.requires_cosignatures:
        return ledger.latest_checkpoint()
    names = {w.verifier.vkey: w.name for w in policy.witnesses}
    below: int | None = None
    while True:
        query = select(WitnessCosignature.checkpoint_size).distinct()
        if below is not None:
            query = query.where(WitnessCosignature.checkpoint_size < below)
        sizes = session.exec(
            query.order_by(col(WitnessCosignature.checkpoint_size).desc()).limit(SCAN_PAGE)
        ).all()
        if not sizes:
            return None
        rows = session.exec(
            select(WitnessCosignature.checkpoint_size, WitnessCosignature.witness).where(
                col(WitnessCosignature.checkpoint_size).in_(sizes)
            )
        ).all()
        by_size: dict[int, set[str]] = {}
        for size, witness in rows:
            if witness in names:
                by_size.setdefault(size, set()).add(names[witness])
        for size in sizes:
            if policy.witnessed_by(by_size.get(size, ())):
                return ledger.checkpoint_at(size)
        below = min(sizes)


def last_cosigned_size(session: Session, witness: str) -> int:
    """The largest checkpoint size this witness (by vkey) has cosigned for us; 0 if none."""
    size = session.exec(
        select(func.max(WitnessCosignature.checkpoint_size)).where(
            WitnessCosignature.witness == witness
        )
    ).one()
    return int(size or 0)


def store_cosignatures(session: Session, size: int, answers: Iterable[WitnessAnswer]) -> None:
    """Store the verified cosignatures among ``answers`` for the checkpoint ``size``.

    A cosignature by a witness already stored for that size is left alone: another worker
    process may have asked the same witness at the same time (the database keeps the first).
    """
    rows = [
        {
            "checkpoint_size": size,
            "witness": answer.witness.verifier.vkey,
            "signature": answer.signature.to_line(),
            "timestamp": cosignature_timestamp(answer.signature),
            "received_at": datetime.now(UTC),
        }
        for answer in answers
        if answer.signature is not None
    ]
    if not rows:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(WitnessCosignature).values(rows)
    session.execute(statement.on_conflict_do_nothing(index_elements=["checkpoint_size", "witness"]))


# -- asking witnesses ----------------------------------------------------------------------


@dataclass(frozen=True)
class WitnessAnswer:
    """What one witness did with one checkpoint: a verified cosignature, or why not."""

    witness: PolicyWitness
    size: int
    signature: NoteSignature | None = None
    error: str | None = None
    status: int | None = None
    seconds: float = 0.0


class WitnessCollector:
    """Asks the configured witnesses to cosign the exchange's latest checkpoint.

    One per process (the app creates it): it keeps an HTTP connection per witness alive, and
    remembers the size each witness last cosigned, so a request normally carries the right
    consistency proof at the first attempt.
    """

    def __init__(self, exchange: Exchange, *, transport: httpx.BaseTransport | None = None) -> None:
        self._exchange = exchange
        self._witnesses = exchange.witnesses.contacted
        timeout = exchange.witnesses.timeout
        self._http = {
            w.verifier.vkey: httpx.Client(
                base_url=w.url or "", timeout=timeout, transport=transport
            )
            for w in self._witnesses
        }
        self._sizes: dict[str, int] = {}
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, len(self._witnesses)), thread_name_prefix="witness"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for client in self._http.values():
            client.close()

    def witness_latest(self) -> list[WitnessAnswer]:
        """One round: the latest checkpoint to every witness that has not cosigned it."""
        with self._exchange.reading() as session:
            latest = SqlLedger(session).latest_checkpoint()
            if latest is None:
                return []
            done = {c.witness for c in cosignatures(session, latest.size)}
            for w in self._witnesses:
                if w.verifier.vkey not in self._sizes:
                    self._sizes[w.verifier.vkey] = last_cosigned_size(session, w.verifier.vkey)
        pending = [w for w in self._witnesses if w.verifier.vkey not in done]
        answers = list(self._pool.map(lambda w: self._ask(w, latest), pending))
        if any(a.signature is not None for a in answers):
            with self._exchange.transaction() as session:
                store_cosignatures(session, latest.size, answers)
        for answer in answers:
            _report(answer)
        return answers

    def _ask(self, witness: PolicyWitness, checkpoint: LedgerCheckpointRow) -> WitnessAnswer:
        started = time.perf_counter()
        answer = self._attempts(witness, checkpoint)
        return WitnessAnswer(
            witness,
            checkpoint.size,
            answer.signature,
            answer.error,
            answer.status,
            time.perf_counter() - started,
        )

    def _attempts(self, witness: PolicyWitness, checkpoint: LedgerCheckpointRow) -> WitnessAnswer:
        vkey, size = witness.verifier.vkey, checkpoint.size
        old = self._sizes.get(vkey, 0)
        for _ in range(MAX_ATTEMPTS):
            if old > size:
                return WitnessAnswer(
                    witness, size, error=f"it has cosigned size {old}, newer than ours ({size})"
                )
            body = AddCheckpointRequest.build(old, self._proof(old, size), checkpoint.note)
            try:
                response = self._http[vkey].post(
                    "add-checkpoint",
                    content=body.to_bytes(),
                    headers={"Content-Type": "text/plain"},
                )
            except httpx.HTTPError as exc:
                return WitnessAnswer(witness, size, error=f"unreachable: {exc!r}")
            if response.status_code == 200:
                return self._cosigned(witness, checkpoint, response)
            if response.status_code != 409:
                return WitnessAnswer(
                    witness, size, error=response.text.strip()[:300], status=response.status_code
                )
            try:
                reported = parse_size_answer(response.content)
            except LedgerError as exc:
                return WitnessAnswer(witness, size, error=f"bad 409 answer: {exc}", status=409)
            if reported == old:  # the sizes agree, so the roots do not: the witness saw a fork
                return WitnessAnswer(
                    witness, size, error=f"conflict at its size {reported}", status=409
                )
            self._sizes[vkey] = old = reported
        return WitnessAnswer(witness, size, error="the witness's size kept changing", status=409)

    def _cosigned(
        self, witness: PolicyWitness, checkpoint: LedgerCheckpointRow, response: httpx.Response
    ) -> WitnessAnswer:
        try:
            signature = open_cosignature(checkpoint.note, response.content, witness.verifier)
        except LedgerError as exc:
            return WitnessAnswer(witness, checkpoint.size, error=f"bad cosignature: {exc}")
        self._sizes[witness.verifier.vkey] = checkpoint.size
        return WitnessAnswer(witness, checkpoint.size, signature, status=200)

    def _proof(self, old: int, size: int) -> list[bytes]:
        if old in (0, size):
            return []
        with self._exchange.reading() as session:
            return SqlLedger(session).consistency_proof(old, size)


def _report(answer: WitnessAnswer) -> None:
    name = answer.witness.name
    if answer.signature is not None:
        log.info("%s cosigned size %d in %.3f s", name, answer.size, answer.seconds)
    elif answer.status in (409, 422):
        log.error("%s refused size %d (%s): %s", name, answer.size, answer.status, answer.error)
    else:
        log.warning("%s did not cosign size %d: %s", name, answer.size, answer.error)
