"""Anchoring the log's checkpoints to an EVM chain: the schedule, each anchor's state, the loop.

Every ``anchor_every_entries`` new entries, or ``anchor_interval`` seconds after the last anchor
if the log grew at all (and on demand, ``corpusx ledger anchor``), the exchange signs a
checkpoint of the whole log and sends ``CheckpointAnchor.anchor(origin, size, root)``. Entries
that only record anchors (``checkpoint.anchored``) do not count as growth, or anchoring would
feed itself. Each anchor then moves through ``chain_anchor.state``::

                 sign + store              send
      (due) ───────────────────► submitted ────► included ──── deep enough ────► final
                                    ▲   │           │                 (checkpoint.anchored
                       send again   │   │ not on    │ receipt gone     recorded, same
                       (same bytes) │   ▼ the chain ▼ (a reorg)        transaction)
                                    └── dropped ◄───┘

**The ledger entry is recorded once, at finality.** ``checkpoint.anchored`` says which block
holds the anchor; it is appended, in the same database transaction that marks the anchor
``final``, only after the block is ``chain_confirmations`` deep (or at or below the node's
``finalized`` block, with ``chain_finality = finalized``). A reorg before that only moves the
anchor back to ``dropped`` and it is sent again: depth is always measured from the block the
receipt names now, so a transaction that left the chain is never counted final on the strength
of its old block. The log therefore never states an anchor the chain does not hold (short of a
reorg deeper than the finality rule, which ``corpusx audit anchors`` would report), and no entry
type is needed to retract one.

**Faults.** Nothing here runs inside a ledger append: chain I/O happens between short database
transactions, never while one is open, so an unreachable node cannot slow or fail an append.
A failed step (``ChainUnavailable`` or any ``ChainError``) backs off exponentially, from
``chain_poll_interval`` up to ``chain_backoff_max``, and the next successful step catches up:
the anchor it then sends covers everything appended meanwhile.

**Several workers.** Only the holder of the lease in ``anchor_state`` (taken and renewed by a
compare-and-swap on that one row) talks to the chain. Each anchor transaction is signed and
stored *before* it is sent, so whoever resumes after a crash sends the same bytes again (the
same transaction hash, which a node accepts at most once); only if that nonce was used by
something else is a new transaction signed. The unique key (chain, contract, size) keeps one
anchor per checkpoint.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from exchange.anchor_models import (
    DROPPED,
    FINAL,
    INCLUDED,
    OPEN_STATES,
    REVERTED,
    SUBMITTED,
    AnchorState,
    ChainAnchor,
)
from exchange.chainkey import ChainKeyError, load_chain_key
from exchange.context import Exchange
from exchange.ledger_service import covering_checkpoint
from exchange.settings import SettingsError
from exchange.statements import exchange_statement, record_statement
from ledger.anchor import (
    AnchorChain,
    AnchorPhase,
    AnchorRecord,
    ChainReceipt,
    ChainView,
    FinalityRule,
    PreparedAnchor,
    anchor_phase,
    confirmations,
)
from ledger.checkpoint import Checkpoint
from ledger.errors import ChainError, NonceConflict
from ledger.sql import LedgerEntryRow, SqlLedger

log = logging.getLogger("corpusx.anchoring")
ANCHORED = "checkpoint.anchored"
STATE_ID = 1


class LeaseLost(Exception):
    """Another worker took the anchoring lease while this one was working."""


@dataclass(frozen=True)
class AnchorPolicy:
    """When to anchor and when an anchor is final (from settings)."""

    every_entries: int
    interval: float
    rule: FinalityRule
    poll_interval: float
    backoff_max: float
    lease_seconds: float = 60.0

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed steps in a row (doubling, capped)."""
        return float(min(self.poll_interval * 2 ** max(failures - 1, 0), self.backoff_max))


@dataclass(frozen=True)
class StepReport:
    """What one step did: ``ran`` is False when it left the work to another worker or waited."""

    ran: bool
    reason: str = ""
    submitted: int | None = None  # the size of a checkpoint sent to the chain in this step
    finalised: tuple[int, ...] = ()  # sizes whose anchors became final (entries recorded)
    error: str | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Anchorer:
    """Runs the anchoring schedule for one exchange against one chain; ``step()`` is one round."""

    def __init__(
        self,
        exchange: Exchange,
        chain: AnchorChain,
        policy: AnchorPolicy,
        *,
        holder: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.exchange = exchange
        self.chain = chain
        self.policy = policy
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.clock = clock
        self.expected_chain_id: int | None = None
        self._lock = threading.Lock()  # one step at a time in this process (the lease is shared)

    # -- the round -----------------------------------------------------------------------------

    def step(self, *, force: bool = False) -> StepReport:
        """Look at in-flight anchors, then send a new one if one is due.

        ``force`` ignores the backoff (an operator asked); the lease is never ignored.
        """
        with self._lock:
            now = self.clock()
            if not self._take_lease(now):
                return StepReport(False, "another worker holds the anchoring lease")
            state = self._state()
            if not force and now < state.retry_at:
                return StepReport(False, f"backing off after {state.failures} failed attempt(s)")
            try:
                finalised = self._track()
                submitted = self._maybe_submit(now, state)
            except LeaseLost:
                return StepReport(False, "the anchoring lease moved to another worker")
            except ChainError as exc:
                delay = self._failed(now, exc)
                log.warning("anchoring failed, retrying in %.1fs: %s", delay, exc)
                return StepReport(
                    False, "the chain refused or could not be reached", error=str(exc)
                )
            if state.failures:
                self._recovered()
            return StepReport(True, submitted=submitted, finalised=finalised)

    def request(self) -> None:
        """Ask for an anchor of the current log at the next step, whatever the schedule says."""
        with self.exchange.transaction() as session:
            self._update_state(session, requested_at=self.clock())

    def release(self) -> None:
        """Give the lease up (at shutdown), so another worker can take over at once."""
        with self.exchange.transaction() as session:
            session.connection().execute(
                update(AnchorState)
                .where(col(AnchorState.id) == STATE_ID, col(AnchorState.holder) == self.holder)
                .values(holder=None, lease_until=0.0)
            )

    # -- the lease and the state row -------------------------------------------------------------

    def _take_lease(self, now: float) -> bool:
        """Compare-and-swap: take or renew the lease if it is ours, free or expired.

        A lease of ours with more than half its time left is kept without a write, so that a
        quick poll does not queue for SQLite's write lock behind the appends.
        """
        state = self._state()
        if state.holder == self.holder and state.lease_until - now > self.policy.lease_seconds / 2:
            return True
        with self.exchange.transaction() as session:
            result = session.connection().execute(
                update(AnchorState)
                .where(
                    col(AnchorState.id) == STATE_ID,
                    or_(
                        col(AnchorState.holder) == self.holder,
                        col(AnchorState.holder).is_(None),
                        col(AnchorState.lease_until) < now,
                    ),
                )
                .values(holder=self.holder, lease_until=now + self.policy.lease_seconds)
            )
            return bool(result.rowcount == 1)

    def _hold(self, session: Session) -> None:
        """Inside a write transaction: renew the lease, or raise ``LeaseLost`` if it moved.

        The update also locks the row, so two workers never record the same anchor twice.
        """
        now = self.clock()
        result = session.connection().execute(
            update(AnchorState)
            .where(col(AnchorState.id) == STATE_ID, col(AnchorState.holder) == self.holder)
            .values(lease_until=now + self.policy.lease_seconds)
        )
        if result.rowcount != 1:
            raise LeaseLost(self.holder)

    def _state(self) -> AnchorState:
        with self.exchange.reading() as session:
            state = session.get(AnchorState, STATE_ID)
        if state is None:
            raise SettingsError("the anchor_state row is missing: is the database migrated?")
        return state

    @staticmethod
    def _update_state(session: Session, **values: Any) -> None:
        session.connection().execute(
            update(AnchorState).where(col(AnchorState.id) == STATE_ID).values(**values)
        )

    def _failed(self, now: float, exc: Exception) -> float:
        with self.exchange.transaction() as session:
            state = session.get(AnchorState, STATE_ID)
            failures = (state.failures if state else 0) + 1
            delay = self.policy.backoff(failures)
            self._update_state(
                session, failures=failures, retry_at=now + delay, last_error=str(exc)[:500]
            )
        return delay

    def _recovered(self) -> None:
        with self.exchange.transaction() as session:
            self._update_state(session, failures=0, retry_at=0.0, last_error=None)

    # -- following anchors already sent ---------------------------------------------------------

    def _open_anchors(self) -> list[ChainAnchor]:
        with self.exchange.reading() as session:
            rows = session.exec(
                select(ChainAnchor)
                .where(
                    col(ChainAnchor.contract) == self.chain.contract,
                    col(ChainAnchor.state).in_(OPEN_STATES),
                )
                .order_by(col(ChainAnchor.nonce), col(ChainAnchor.size))
            ).all()
        return list(rows)

    def _view(self) -> ChainView:
        view = self.chain.view()
        if self.expected_chain_id is not None and view.chain_id != self.expected_chain_id:
            raise ChainError(
                f"the node is on chain {view.chain_id}, the contract was deployed on chain "
                f"{self.expected_chain_id}"
            )
        return view

    def _track(self) -> tuple[int, ...]:
        rows = self._open_anchors()
        if not rows:
            return ()
        view = self._view()
        finalised = []
        for row in rows:
            receipt = self.chain.receipt(row.tx_hash)
            pending = receipt is None and self.chain.is_pending(row.tx_hash)
            phase = anchor_phase(receipt, pending=pending, chain=view, rule=self.policy.rule)
            if phase is AnchorPhase.FINAL and receipt is not None:
                if self._finalise(row, receipt, view):
                    finalised.append(row.size)
            elif phase is AnchorPhase.INCLUDED and receipt is not None:
                self._included(row, receipt, view)
            elif phase is AnchorPhase.PENDING:
                self._set(row, state=SUBMITTED, block_number=None, block_hash=None, depth=0)
            elif phase is AnchorPhase.REVERTED:
                log.error("the anchor of size %d reverted on chain (%s)", row.size, row.tx_hash)
                self._set(row, state=REVERTED)
            else:
                self._resend(row)
        return tuple(finalised)

    def _set(self, row: ChainAnchor, **values: Any) -> None:
        """Update one anchor if it is still as we read it (same transaction, not yet final)."""
        changed = {key: value for key, value in values.items() if getattr(row, key) != value}
        if not changed:
            return
        with self.exchange.transaction() as session:
            self._hold(session)
            session.connection().execute(
                update(ChainAnchor)
                .where(
                    col(ChainAnchor.id) == row.id,
                    col(ChainAnchor.tx_hash) == row.tx_hash,
                    col(ChainAnchor.state) != FINAL,
                )
                .values(**changed)
            )
        for key, value in changed.items():
            setattr(row, key, value)

    def _included(self, row: ChainAnchor, receipt: ChainReceipt, view: ChainView) -> None:
        moved = row.block_hash is not None and row.block_hash != receipt.block_hash
        if moved:
            log.warning("the anchor of size %d moved to block %d", row.size, receipt.block_number)
        self._set(
            row,
            state=INCLUDED,
            block_number=receipt.block_number,
            block_hash=receipt.block_hash,
            depth=confirmations(receipt.block_number, view.head),
            included_at=row.included_at if row.included_at and not moved else _utcnow(),
        )

    def _resend(self, row: ChainAnchor) -> None:
        """The transaction is on no block and in no pool: send it again, idempotently."""
        if row.state == INCLUDED:
            log.warning("the anchor of size %d left the chain (reorg): sending it again", row.size)
        self._set(row, state=DROPPED, block_number=None, block_hash=None, depth=0)
        adopted = self._anchored_elsewhere(row)
        if adopted is not None:  # e.g. a resubmission whose record was lost in a crash
            self._replace(row, adopted.tx_hash, raw=None)
            return
        try:
            self.chain.broadcast(row.raw_tx)
        except NonceConflict:  # the nonce went to another transaction: sign a new one
            prepared = self.chain.prepare(self._checkpoint(row))
            self._replace(row, prepared.tx_hash, raw=prepared)
            self.chain.broadcast(prepared.raw)
        self._set(row, state=SUBMITTED, resubmissions=row.resubmissions + 1)

    def _anchored_elsewhere(self, row: ChainAnchor) -> ChainReceipt | None:
        for receipt, event in self.chain.events_for_root(row.root):
            if (event.origin, event.size) == (self.exchange.origin, row.size):
                return receipt
        return None

    def _replace(self, row: ChainAnchor, tx_hash: str, *, raw: PreparedAnchor | None) -> None:
        """Point the anchor at another transaction (stored before that one is sent)."""
        values: dict[str, Any] = {"tx_hash": tx_hash}
        if raw is not None:
            values |= {"raw_tx": raw.raw, "nonce": raw.nonce, "submitted_at": _utcnow()}
        self._set(row, **values)

    def _checkpoint(self, row: ChainAnchor) -> Checkpoint:
        return Checkpoint(self.exchange.origin, row.size, row.root)

    def _finalise(self, row: ChainAnchor, receipt: ChainReceipt, view: ChainView) -> bool:
        """Record ``checkpoint.anchored`` and mark the anchor final, in one transaction."""
        depth = confirmations(receipt.block_number, view.head)
        rule = self.policy.rule
        record = AnchorRecord(
            chain_id=view.chain_id,
            contract=self.chain.contract,
            tx_hash=receipt.tx_hash,
            block_number=receipt.block_number,
            block_hash=receipt.block_hash,
            origin=self.exchange.origin,
            size=row.size,
            root=row.root,
            finality=rule.name,
            confirmations=depth if rule.finalized_tag else rule.confirmations,
        )
        statement = exchange_statement(self.exchange.log_signer, ANCHORED, record.to_body())
        with self.exchange.transaction() as session:
            self._hold(session)  # locks the state row: one recorder at a time
            current = session.get(ChainAnchor, row.id)
            if current is None or current.state == FINAL or current.tx_hash != row.tx_hash:
                return False
            entry = record_statement(session, statement)
            current.state, current.final_at, current.entry_seq = FINAL, _utcnow(), entry.seq
            current.block_number, current.block_hash = receipt.block_number, receipt.block_hash
            current.depth = depth
            current.included_at = current.included_at or current.final_at
            session.add(current)
        log.info("anchor of size %d is final: entry %d", row.size, entry.seq)
        return True

    # -- sending a new anchor ------------------------------------------------------------------

    def _maybe_submit(self, now: float, state: AnchorState) -> int | None:
        if not self._due(now, state):
            return None
        with self.exchange.transaction() as session:
            signed = covering_checkpoint(
                session, self.exchange.log_signer, SqlLedger(session).size()
            )
            checkpoint = Checkpoint(self.exchange.origin, signed.size, signed.root)
        if self._anchor_of(checkpoint.size) is not None:
            self._clear_request()
            return None
        view = self._view()
        prepared = self.chain.prepare(checkpoint)
        try:
            with self.exchange.transaction() as session:
                self._hold(session)
                session.add(
                    ChainAnchor(
                        chain_id=view.chain_id,
                        contract=self.chain.contract,
                        size=checkpoint.size,
                        root=checkpoint.root,
                        state=SUBMITTED,
                        tx_hash=prepared.tx_hash,
                        raw_tx=prepared.raw,
                        nonce=prepared.nonce,
                        submitted_at=_utcnow(),
                    )
                )
                self._update_state(session, last_submitted_at=now, requested_at=None)
        except IntegrityError:  # another worker anchored this size between our reads
            return None
        # If this fails, the stored row is sent again at the next step (it reads as dropped).
        self.chain.broadcast(prepared.raw)
        log.info("anchoring size %d: %s", checkpoint.size, prepared.tx_hash)
        return checkpoint.size

    def _due(self, now: float, state: AnchorState) -> bool:
        """An anchor is due if the log grew since the last one and the schedule (or a request)
        says so; never while an earlier anchor still waits to be included."""
        with self.exchange.reading() as session:
            waiting = session.exec(
                select(func.count())
                .select_from(ChainAnchor)
                .where(
                    col(ChainAnchor.contract) == self.chain.contract,
                    col(ChainAnchor.state).in_((SUBMITTED, DROPPED)),
                )
            ).one()
            latest = self._latest(session)
            if waiting or (
                latest is not None and latest.state == REVERTED and not state.requested_at
            ):
                return False
            grown = _grown_since(session, latest.size if latest else 0)
        if grown == 0:
            if state.requested_at is not None:
                self._clear_request()
            return False
        if state.requested_at is not None or grown >= self.policy.every_entries:
            return True
        interval = self.policy.interval
        return interval > 0 and now - state.last_submitted_at >= interval

    def _latest(self, session: Session) -> ChainAnchor | None:
        return session.exec(
            select(ChainAnchor)
            .where(col(ChainAnchor.contract) == self.chain.contract)
            .order_by(col(ChainAnchor.size).desc())
            .limit(1)
        ).first()

    def _anchor_of(self, size: int) -> ChainAnchor | None:
        with self.exchange.reading() as session:
            return session.exec(
                select(ChainAnchor).where(
                    col(ChainAnchor.contract) == self.chain.contract, col(ChainAnchor.size) == size
                )
            ).first()

    def _clear_request(self) -> None:
        with self.exchange.transaction() as session:
            self._update_state(session, requested_at=None)

    # -- reading, for the API --------------------------------------------------------------------

    def anchors(self, *, limit: int = 100) -> list[ChainAnchor]:
        """The latest anchors of this contract, newest first."""
        with self.exchange.reading() as session:
            rows = session.exec(
                select(ChainAnchor)
                .where(col(ChainAnchor.contract) == self.chain.contract)
                .order_by(col(ChainAnchor.size).desc())
                .limit(limit)
            ).all()
        return list(rows)

    def status(self) -> AnchorState:
        return self._state()


def _grown_since(session: Session, size: int) -> int:
    """Entries at or after ``size`` that are not themselves anchor records."""
    count = session.exec(
        select(func.count())
        .select_from(LedgerEntryRow)
        .where(col(LedgerEntryRow.seq) >= size, col(LedgerEntryRow.type) != ANCHORED)
    ).one()
    return int(count)


def anchor_policy(exchange: Exchange) -> AnchorPolicy:
    settings = exchange.settings
    return AnchorPolicy(
        every_entries=settings.anchor_every_entries,
        interval=settings.anchor_interval,
        rule=FinalityRule(
            settings.chain_confirmations, finalized_tag=settings.chain_finality == "finalized"
        ),
        poll_interval=settings.chain_poll_interval,
        backoff_max=settings.chain_backoff_max,
    )


def build_anchorer(exchange: Exchange) -> Anchorer | None:
    """The anchorer the settings describe, or None when anchoring is off.

    Reads the account key (refusing one that others may read) but does not contact the chain:
    an exchange must start, and append, while its node is down.
    """
    from ledger.anchor_evm import EvmChain  # web3 is loaded only where anchoring is on

    config = exchange.settings.resolved_chain()
    if config is None:
        return None
    try:
        key = load_chain_key(config.key_file)
    except ChainKeyError as exc:
        raise SettingsError(f"anchoring is configured but {exc}") from None
    chain = EvmChain(
        config.rpc_url,
        contract=config.contract,
        private_key=key,
        timeout=exchange.settings.chain_timeout,
        start_block=config.start_block,
    )
    anchorer = Anchorer(exchange, chain, anchor_policy(exchange))
    anchorer.expected_chain_id = config.chain_id
    return anchorer
