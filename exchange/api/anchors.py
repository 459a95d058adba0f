"""Anchors of the log's checkpoints on the chain: their state (public) and anchoring on demand."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from exchange.anchor_models import ChainAnchor
from exchange.anchoring import Anchorer
from exchange.api.deps import CurrentMember, require_role
from exchange.errors import Conflict

router = APIRouter(prefix="/ledger/anchors", tags=["ledger"])


class AnchorPublic(BaseModel):
    chain_id: int
    contract: str
    size: int
    root: str = Field(description="hex")
    state: str = Field(description="submitted, included, dropped, final or reverted")
    tx_hash: str
    block_number: int | None
    block_hash: str | None
    depth: int = Field(description="confirmations when the exchange last looked")
    resubmissions: int
    submitted_at: datetime
    included_at: datetime | None
    final_at: datetime | None
    entry_seq: int | None = Field(description="the checkpoint.anchored entry, once final")


class AnchoringStatus(BaseModel):
    enabled: bool
    contract: str | None = None
    failures: int = 0
    retry_in: float = Field(default=0.0, description="seconds until the next attempt")
    last_error: str | None = None
    requested: bool = False
    anchors: list[AnchorPublic] = []


def anchor_public(row: ChainAnchor) -> AnchorPublic:
    return AnchorPublic(
        chain_id=row.chain_id,
        contract=row.contract,
        size=row.size,
        root=row.root.hex(),
        state=row.state,
        tx_hash=row.tx_hash,
        block_number=row.block_number,
        block_hash=row.block_hash,
        depth=row.depth,
        resubmissions=row.resubmissions,
        submitted_at=row.submitted_at,
        included_at=row.included_at,
        final_at=row.final_at,
        entry_seq=row.entry_seq,
    )


def _anchorer(request: Request) -> Anchorer | None:
    anchorer: Anchorer | None = request.app.state.anchorer
    return anchorer


def _status(anchorer: Anchorer) -> AnchoringStatus:
    state = anchorer.status()
    return AnchoringStatus(
        enabled=True,
        contract=anchorer.chain.contract,
        failures=state.failures,
        retry_in=round(max(0.0, state.retry_at - anchorer.clock()), 3),
        last_error=state.last_error,
        requested=state.requested_at is not None,
        anchors=[anchor_public(row) for row in anchorer.anchors()],
    )


@router.get("", response_model=AnchoringStatus)
def anchors(request: Request) -> AnchoringStatus:
    """The latest anchors (newest first) and the anchorer's health; everything here is public
    on the chain anyway."""
    anchorer = _anchorer(request)
    return _status(anchorer) if anchorer is not None else AnchoringStatus(enabled=False)


@router.post("", response_model=AnchoringStatus)
def anchor_now(request: Request, caller: CurrentMember) -> AnchoringStatus:
    """Anchor the current log now (operators), instead of waiting for the schedule.

    The request is stored, so whichever worker holds the anchoring lease serves it; this worker
    also tries one step at once. An anchor already waiting to be included is not overtaken.
    """
    require_role(caller, "operator")
    anchorer = _anchorer(request)
    if anchorer is None:
        raise Conflict("anchoring is off on this exchange (set CORPUSX_CHAIN_RPC_URL and deploy)")
    anchorer.request()
    anchorer.step(force=True)
    return _status(anchorer)
