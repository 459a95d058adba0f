"""Tables of anchoring: one row per anchored checkpoint, and the one row that leases the work.

``chain_anchor.state`` follows each anchor transaction (``exchange/anchoring.py`` draws the
machine): ``submitted`` (signed, stored, sent), ``included`` (in a block, not yet final),
``dropped`` (it left the chain, or never reached it: to be sent again), ``final`` (deep enough;
the ``checkpoint.anchored`` entry is ``entry_seq``) and ``reverted`` (the call failed on chain).
The signed transaction is kept (``raw_tx``) so that sending it again is idempotent.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Float, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

SUBMITTED = "submitted"
INCLUDED = "included"
DROPPED = "dropped"
FINAL = "final"
REVERTED = "reverted"
OPEN_STATES = (SUBMITTED, INCLUDED, DROPPED)
ANCHOR_STATES = (*OPEN_STATES, FINAL, REVERTED)


class ChainAnchor(SQLModel, table=True):
    __tablename__ = "chain_anchor"
    __table_args__ = (
        UniqueConstraint("chain_id", "contract", "size", name="uq_chain_anchor_checkpoint"),
        CheckConstraint("length(root) = 32", name="ck_chain_anchor_root"),
        CheckConstraint(
            "state IN ('submitted', 'included', 'dropped', 'final', 'reverted')",
            name="ck_chain_anchor_state",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    chain_id: int = Field(sa_type=BigInteger)
    contract: str = Field(max_length=42)
    size: int = Field(sa_type=BigInteger)
    root: bytes = Field(sa_type=LargeBinary)
    state: str = Field(max_length=16, index=True)
    tx_hash: str = Field(max_length=66, index=True)
    raw_tx: bytes = Field(sa_type=LargeBinary)
    nonce: int = Field(sa_type=BigInteger)
    block_number: int | None = Field(default=None, sa_type=BigInteger)
    block_hash: str | None = Field(default=None, max_length=66)
    depth: int = Field(default=0, description="confirmations when last looked at")
    resubmissions: int = 0
    submitted_at: datetime
    included_at: datetime | None = None
    final_at: datetime | None = None
    entry_seq: int | None = Field(default=None, sa_type=BigInteger)


class AnchorState(SQLModel, table=True):
    """One row (id 1): who may anchor now (a lease taken by compare-and-swap), and the backoff.

    Times are POSIX seconds. With several workers, the one whose ``holder`` is written here,
    until ``lease_until``, is the only one that talks to the chain.
    """

    __tablename__ = "anchor_state"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    holder: str | None = Field(default=None, max_length=120)
    lease_until: float = Field(default=0.0, sa_type=Float)
    failures: int = 0
    retry_at: float = Field(default=0.0, sa_type=Float)
    last_error: str | None = Field(default=None, max_length=500)
    requested_at: float | None = Field(default=None, sa_type=Float)
    last_submitted_at: float = Field(default=0.0, sa_type=Float)
