"""Anchors: a checkpoint published on an EVM chain, and the pure rules that verify one.

The exchange calls ``CheckpointAnchor.anchor(origin, size, root)`` (``ledger/contracts/``), which
emits ``CheckpointAnchored(bytes32 indexed root, string origin, uint64 treeSize)``. Once the
transaction is final, the log records the claim as a ``checkpoint.anchored`` entry whose body is
an :class:`AnchorRecord`. A verifier fetches the transaction's receipt from any node of that
chain and checks it with :func:`verify_anchor`; docs/ledger.md section 5.5 is the normative text.

This module is pure: the ABI of the one call and the one event is encoded and decoded here by
hand (three fixed fields), so an auditor needs no web3 to check an anchor, only a receipt. The
chain is reached through the small Protocols below; ``ledger.anchor_evm`` implements them with
web3.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Protocol

from ledger.checkpoint import Checkpoint
from ledger.errors import AnchorMismatch, FormatError

EVENT_SIGNATURE = "CheckpointAnchored(bytes32,string,uint64)"
#: keccak256(EVENT_SIGNATURE): topic 0 of every anchor event (a unit test recomputes it).
EVENT_TOPIC = bytes.fromhex("f585867ac403915471c152556b90c57e1072683518a255fecf260c214a43d0f9")
CALL_SIGNATURE = "anchor(string,uint64,bytes32)"
#: The first four bytes of keccak256(CALL_SIGNATURE): the call's function selector.
CALL_SELECTOR = bytes.fromhex("d0ee1f22")

FINALITY_CONFIRMATIONS = "confirmations"
FINALITY_FINALIZED = "finalized"

_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")
_HASH = re.compile(r"^0x[0-9a-f]{64}$")
_ROOT = re.compile(r"^[0-9a-f]{64}$")
_WORD = 32
_MAX_UINT64 = (1 << 64) - 1
_MAX_JSON_INT = (1 << 53) - 1


@dataclass(frozen=True)
class ContractArtifact:
    """``ledger/contracts/CheckpointAnchor.json``: what solc made of the contract's source."""

    abi: list[dict[str, Any]]
    bytecode: bytes  # creation code, to deploy
    deployed_bytecode: bytes  # runtime code: what ``eth_getCode`` returns at a deployment
    compiler: str


@cache
def contract_artifact() -> ContractArtifact:
    """The compiled CheckpointAnchor contract, shipped with this package."""
    text = resources.files("ledger").joinpath("contracts/CheckpointAnchor.json").read_text()
    data = json.loads(text)
    return ContractArtifact(
        abi=data["abi"],
        bytecode=bytes.fromhex(data["bytecode"].removeprefix("0x")),
        deployed_bytecode=bytes.fromhex(data["deployedBytecode"].removeprefix("0x")),
        compiler=data["compiler"]["version"],
    )


# -- ABI of the call and the event -------------------------------------------------------------


def _word(value: int) -> bytes:
    return value.to_bytes(_WORD, "big")


def _padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % _WORD)


def encode_anchor_call(checkpoint: Checkpoint) -> bytes:
    """Calldata of ``anchor(origin, size, root)`` (Solidity ABI, as solc's encoder writes it)."""
    origin = checkpoint.origin.encode()
    head = _word(3 * _WORD) + _word(checkpoint.size) + checkpoint.root
    return CALL_SELECTOR + head + _word(len(origin)) + _padded(origin)


@dataclass(frozen=True)
class ChainLog:
    """One log (event) of a receipt: emitting contract (lowercase hex), topics, data."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True)
class AnchorEvent:
    """A decoded ``CheckpointAnchored`` event."""

    root: bytes
    origin: str
    size: int


def decode_anchor_event(log: ChainLog) -> AnchorEvent:
    """Decode our event strictly: the canonical ABI encoding, nothing before, after or between."""
    if len(log.topics) != 2 or log.topics[0] != EVENT_TOPIC or len(log.topics[1]) != _WORD:
        raise FormatError("the log is not a CheckpointAnchored event")
    data = log.data
    if len(data) < 3 * _WORD or int.from_bytes(data[:_WORD], "big") != 2 * _WORD:
        raise FormatError("CheckpointAnchored data is not (string, uint64) in canonical ABI form")
    size = int.from_bytes(data[_WORD : 2 * _WORD], "big")
    length = int.from_bytes(data[2 * _WORD : 3 * _WORD], "big")
    tail = data[3 * _WORD :]
    if size > _MAX_UINT64 or len(tail) != length + (-length % _WORD) or any(tail[length:]):
        raise FormatError("CheckpointAnchored data is not (string, uint64) in canonical ABI form")
    try:
        origin = tail[:length].decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("CheckpointAnchored origin is not UTF-8") from None
    return AnchorEvent(root=log.topics[1], origin=origin, size=size)


# -- what a verifier sees of the chain -----------------------------------------------------------


@dataclass(frozen=True)
class ChainReceipt:
    """The parts of a transaction receipt that verification reads (hashes as 0x-hex)."""

    tx_hash: str
    status: int
    block_number: int
    block_hash: str
    logs: tuple[ChainLog, ...]


@dataclass(frozen=True)
class ChainView:
    """The chain at one moment: its id, the latest block and the ``finalized`` block (if any)."""

    chain_id: int
    head: int
    finalized: int | None


def confirmations(block_number: int, head: int) -> int:
    """How deep a block is: 1 when it is the latest block, 0 if the head is below it."""
    return max(0, head - block_number + 1)


@dataclass(frozen=True)
class FinalityRule:
    """When an anchor counts as final: ``confirmations`` deep, or at or below ``finalized``."""

    confirmations: int
    finalized_tag: bool = False

    def __post_init__(self) -> None:
        if self.confirmations < 1:
            raise FormatError("an anchor needs at least 1 confirmation")

    def is_final(self, block_number: int, chain: ChainView) -> bool:
        if self.finalized_tag:
            return chain.finalized is not None and block_number <= chain.finalized
        return confirmations(block_number, chain.head) >= self.confirmations

    @property
    def name(self) -> str:
        return FINALITY_FINALIZED if self.finalized_tag else FINALITY_CONFIRMATIONS


class AnchorPhase(StrEnum):
    """Where an anchor transaction is, as one look at the chain shows it."""

    PENDING = "pending"  # known to the node, in no block
    DROPPED = "dropped"  # the node knows nothing of it: never sent, evicted or reorged away
    REVERTED = "reverted"  # included but failed (status 0): resending cannot help
    INCLUDED = "included"  # in a block, not yet final
    FINAL = "final"


def anchor_phase(
    receipt: ChainReceipt | None, *, pending: bool, chain: ChainView, rule: FinalityRule
) -> AnchorPhase:
    """Classify an anchor transaction from its receipt (``None``: none on the canonical chain).

    Depth is always measured from the block the receipt names *now*: after a reorg the receipt
    moves or disappears, so an anchor is never final on the strength of a block that is gone.
    """
    if receipt is None:
        return AnchorPhase.PENDING if pending else AnchorPhase.DROPPED
    if receipt.status != 1:
        return AnchorPhase.REVERTED
    if rule.is_final(receipt.block_number, chain):
        return AnchorPhase.FINAL
    return AnchorPhase.INCLUDED


# -- the checkpoint.anchored body ----------------------------------------------------------------


def _int(value: object, what: str, *, minimum: int, maximum: int = _MAX_JSON_INT) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise FormatError(f"{what} must be an integer from {minimum} to {maximum}")
    return value


def _text(value: object, what: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise FormatError(f"{what} must match {pattern.pattern}")
    return value


@dataclass(frozen=True)
class AnchorRecord:
    """The body of ``checkpoint.anchored``: which transaction anchors which checkpoint."""

    chain_id: int
    contract: str
    tx_hash: str
    block_number: int
    block_hash: str
    origin: str
    size: int
    root: bytes
    finality: str
    confirmations: int

    FIELDS = (
        "chain_id",
        "contract",
        "tx_hash",
        "block_number",
        "block_hash",
        "origin",
        "size",
        "root",
        "finality",
        "confirmations",
    )

    def to_body(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "contract": self.contract,
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "origin": self.origin,
            "size": self.size,
            "root": self.root.hex(),
            "finality": self.finality,
            "confirmations": self.confirmations,
        }

    @classmethod
    def from_body(cls, body: object) -> AnchorRecord:
        """Parse a body strictly: exactly the documented members, each in its one form."""
        if not isinstance(body, dict) or set(body) != set(cls.FIELDS):
            raise FormatError(f"a checkpoint.anchored body has exactly {', '.join(cls.FIELDS)}")
        origin = body["origin"]
        if not isinstance(origin, str) or not 0 < len(origin) <= 200:
            raise FormatError("origin must be a string of 1-200 characters")
        if body["finality"] not in (FINALITY_CONFIRMATIONS, FINALITY_FINALIZED):
            raise FormatError(f"finality must be {FINALITY_CONFIRMATIONS} or {FINALITY_FINALIZED}")
        return cls(
            chain_id=_int(body["chain_id"], "chain_id", minimum=1),
            contract=_text(body["contract"], "contract", _ADDRESS),
            tx_hash=_text(body["tx_hash"], "tx_hash", _HASH),
            block_number=_int(body["block_number"], "block_number", minimum=0),
            block_hash=_text(body["block_hash"], "block_hash", _HASH),
            origin=origin,
            size=_int(body["size"], "size", minimum=1),
            root=bytes.fromhex(_text(body["root"], "root", _ROOT)),
            finality=body["finality"],
            confirmations=_int(body["confirmations"], "confirmations", minimum=1),
        )

    @property
    def rule(self) -> FinalityRule:
        """The finality the exchange waited for before it recorded this anchor."""
        return FinalityRule(self.confirmations, self.finality == FINALITY_FINALIZED)


# -- verification ----------------------------------------------------------------------------------


def verify_anchor(
    record: AnchorRecord,
    receipt: ChainReceipt | None,
    *,
    chain: ChainView,
    rule: FinalityRule,
    log_root: bytes,
) -> AnchorEvent:
    """Check one anchor against the chain and the log; raise ``AnchorMismatch`` with evidence.

    ``receipt`` is the receipt of ``record.tx_hash`` as the verifier's node returns it (``None``
    if it has none), ``chain`` what that node says now, ``rule`` the finality the verifier
    demands and ``log_root`` the log's own root at ``record.size`` (from the verified entries).
    Consistency from that size to the log's current checkpoint is the caller's second check.
    """
    evidence: dict[str, object] = {"tx_hash": record.tx_hash, "size": record.size}
    if chain.chain_id != record.chain_id:
        raise AnchorMismatch(
            f"the node is on chain {chain.chain_id}, the anchor is on chain {record.chain_id}",
            evidence=evidence,
        )
    if receipt is None or receipt.tx_hash != record.tx_hash:
        raise AnchorMismatch(
            f"transaction {record.tx_hash} is not on the chain (dropped by a reorg?)",
            evidence=evidence,
        )
    evidence |= {"block_number": receipt.block_number, "block_hash": receipt.block_hash}
    if receipt.status != 1:
        raise AnchorMismatch(
            f"transaction {record.tx_hash} failed (status {receipt.status})", evidence=evidence
        )
    if (receipt.block_number, receipt.block_hash) != (record.block_number, record.block_hash):
        raise AnchorMismatch(
            f"the transaction is in block {receipt.block_number} {receipt.block_hash}, the log "
            f"recorded block {record.block_number} {record.block_hash} (a reorg after the log "
            "counted it final)",
            evidence=evidence,
        )
    event = _the_event(record, receipt, evidence)
    if not rule.is_final(receipt.block_number, chain):
        depth = confirmations(receipt.block_number, chain.head)
        wanted = (
            f"at or below the finalized block {chain.finalized}"
            if rule.finalized_tag
            else f"{rule.confirmations} confirmations"
        )
        raise AnchorMismatch(
            f"block {receipt.block_number} is not final: {depth} confirmations, need {wanted}",
            evidence=evidence | {"head": chain.head, "finalized": chain.finalized},
        )
    if log_root != record.root:
        raise AnchorMismatch(
            f"the log's root at size {record.size} is {log_root.hex()}, the chain anchors "
            f"{record.root.hex()}",
            evidence=evidence | {"log_root": log_root.hex(), "anchored_root": record.root.hex()},
        )
    return event


def _the_event(
    record: AnchorRecord, receipt: ChainReceipt, evidence: dict[str, object]
) -> AnchorEvent:
    """The one CheckpointAnchored event of our contract in the receipt, matching the record."""
    ours = [
        log
        for log in receipt.logs
        if log.address == record.contract and log.topics[:1] == (EVENT_TOPIC,)
    ]
    if len(ours) != 1:
        raise AnchorMismatch(
            f"the transaction has {len(ours)} CheckpointAnchored events of contract "
            f"{record.contract}, expected 1",
            evidence=evidence,
        )
    try:
        event = decode_anchor_event(ours[0])
    except FormatError as exc:
        raise AnchorMismatch(str(exc), evidence=evidence) from None
    claimed = AnchorEvent(record.root, record.origin, record.size)
    if event != claimed:
        raise AnchorMismatch(
            f"the event anchors {event.origin} size {event.size} root {event.root.hex()}, the log "
            f"recorded {record.origin} size {record.size} root {record.root.hex()}",
            evidence=evidence,
        )
    return event


# -- the chain, as anchoring and verification use it -------------------------------------------


@dataclass(frozen=True)
class PreparedAnchor:
    """A signed anchor transaction, kept before it is sent so that resending is idempotent."""

    tx_hash: str
    raw: bytes
    nonce: int


@dataclass(frozen=True)
class AnchoredEvent:
    """An anchor event found on the chain, with the transaction and block that carry it."""

    tx_hash: str
    block_number: int
    event: AnchorEvent


class ChainReader(Protocol):
    """What a verifier reads from a node (``ledger.anchor_evm.EvmChain``)."""

    def view(self) -> ChainView: ...

    def receipt(self, tx_hash: str) -> ChainReceipt | None: ...

    def code_at(self, address: str) -> bytes: ...

    def anchor_events(self, contract: str, *, from_block: int = 0) -> list[AnchoredEvent]: ...


class AnchorChain(ChainReader, Protocol):
    """What the anchorer needs: sign, send, look up transactions and our events by root."""

    @property
    def contract(self) -> str: ...

    def prepare(self, checkpoint: Checkpoint) -> PreparedAnchor: ...

    def broadcast(self, raw: bytes) -> str: ...

    def is_pending(self, tx_hash: str) -> bool: ...

    def events_for_root(self, root: bytes) -> list[tuple[ChainReceipt, AnchorEvent]]: ...
