"""The pure anchor rules: the ABI of our call and event, the checkpoint.anchored body, finality,
and every way ``verify_anchor`` refuses an anchor (cross-checked against web3's own encoders)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from eth_abi import encode
from eth_utils import keccak

from ledger.anchor import (
    CALL_SELECTOR,
    CALL_SIGNATURE,
    EVENT_SIGNATURE,
    EVENT_TOPIC,
    AnchorPhase,
    AnchorRecord,
    ChainLog,
    ChainReceipt,
    ChainView,
    FinalityRule,
    anchor_phase,
    confirmations,
    contract_artifact,
    decode_anchor_event,
    encode_anchor_call,
    verify_anchor,
)
from ledger.checkpoint import Checkpoint
from ledger.errors import AnchorMismatch, FormatError

ROOT = bytes(range(32))
CONTRACT = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
TX = "0x" + "ab" * 32
BLOCK = "0x" + "cd" * 32
ORIGIN = "corpusx.test/ledger"


def event_log(*, origin: str = ORIGIN, size: int = 40, root: bytes = ROOT) -> ChainLog:
    return ChainLog(CONTRACT, (EVENT_TOPIC, root), encode(["string", "uint64"], [origin, size]))


RECORD = AnchorRecord(
    chain_id=31337,
    contract=CONTRACT,
    tx_hash=TX,
    block_number=12,
    block_hash=BLOCK,
    origin=ORIGIN,
    size=40,
    root=ROOT,
    finality="confirmations",
    confirmations=3,
)
RECEIPT = ChainReceipt(TX, 1, 12, BLOCK, (event_log(),))
VIEW = ChainView(chain_id=31337, head=14, finalized=None)


def test_the_constants_are_the_keccak_of_the_signatures_in_the_compiled_abi() -> None:
    assert keccak(text=EVENT_SIGNATURE) == EVENT_TOPIC
    assert keccak(text=CALL_SIGNATURE)[:4] == CALL_SELECTOR
    abi = {item.get("name"): item for item in contract_artifact().abi}
    event_types = [i["type"] for i in abi["CheckpointAnchored"]["inputs"]]
    call_types = [i["type"] for i in abi["anchor"]["inputs"]]
    assert f"CheckpointAnchored({','.join(event_types)})" == EVENT_SIGNATURE
    assert f"anchor({','.join(call_types)})" == CALL_SIGNATURE
    assert [i["indexed"] for i in abi["CheckpointAnchored"]["inputs"]] == [True, False, False]


@pytest.mark.parametrize("origin", ["", "o", ORIGIN, "x" * 32, "x" * 33, "ünïcode/log"])
def test_the_call_is_encoded_as_the_abi_encoder_does(origin: str) -> None:
    checkpoint = Checkpoint.__new__(Checkpoint)  # an empty origin is not a valid checkpoint
    object.__setattr__(checkpoint, "origin", origin)
    object.__setattr__(checkpoint, "size", 2**64 - 1)
    object.__setattr__(checkpoint, "root", ROOT)
    expected = CALL_SELECTOR + encode(["string", "uint64", "bytes32"], [origin, 2**64 - 1, ROOT])
    assert encode_anchor_call(checkpoint) == expected


def test_the_event_decodes_and_anything_else_is_refused() -> None:
    event = decode_anchor_event(event_log(origin="ünï", size=7))
    assert (event.origin, event.size, event.root) == ("ünï", 7, ROOT)
    good = event_log()
    bad_logs = [
        dataclasses.replace(good, topics=(EVENT_TOPIC,)),
        dataclasses.replace(good, topics=(bytes(32), ROOT)),
        dataclasses.replace(good, data=good.data + bytes(32)),  # trailing word
        dataclasses.replace(good, data=good.data[:-1] + b"\x01"),  # dirty padding
        dataclasses.replace(good, data=(0x60).to_bytes(32, "big") + good.data[32:]),  # offset
        dataclasses.replace(good, data=good.data[:64]),  # truncated
        ChainLog(CONTRACT, (EVENT_TOPIC, ROOT), encode(["bytes", "uint64"], [b"\xff", 1])),
    ]
    for log in bad_logs:
        with pytest.raises(FormatError):
            decode_anchor_event(log)


def test_the_body_round_trips_and_is_parsed_strictly() -> None:
    body = RECORD.to_body()
    assert body["root"] == ROOT.hex() and body["contract"] == CONTRACT
    assert AnchorRecord.from_body(body) == RECORD
    changes: list[dict[str, Any]] = [
        {"extra": 1},
        {"size": 0},
        {"size": True},
        {"size": "40"},
        {"chain_id": 0},
        {"contract": CONTRACT.upper().replace("0X", "0x")},  # one form: lowercase
        {"tx_hash": TX[2:]},
        {"block_hash": "0x" + "cd" * 31},
        {"root": "0x" + ROOT.hex()},
        {"finality": "safe"},
        {"confirmations": 0},
        {"origin": ""},
    ]
    for change in changes:
        with pytest.raises(FormatError):
            AnchorRecord.from_body({**body, **change})
    del body["root"]
    with pytest.raises(FormatError):
        AnchorRecord.from_body(body)


def test_depth_and_the_two_finality_rules() -> None:
    assert [confirmations(10, head) for head in (9, 10, 11, 12)] == [0, 1, 2, 3]
    rule = FinalityRule(3)
    assert not rule.is_final(10, ChainView(1, 11, None))
    assert rule.is_final(10, ChainView(1, 12, None))
    tagged = FinalityRule(1, finalized_tag=True)
    assert not tagged.is_final(10, ChainView(1, 1000, None))  # a node without the tag
    assert not tagged.is_final(10, ChainView(1, 1000, 9))
    assert tagged.is_final(10, ChainView(1, 1000, 10))
    with pytest.raises(FormatError):
        FinalityRule(0)


def test_the_phase_of_an_anchor_follows_its_receipt_now() -> None:
    rule = FinalityRule(3)
    assert anchor_phase(None, pending=True, chain=VIEW, rule=rule) is AnchorPhase.PENDING
    assert anchor_phase(None, pending=False, chain=VIEW, rule=rule) is AnchorPhase.DROPPED
    failed = dataclasses.replace(RECEIPT, status=0)
    assert anchor_phase(failed, pending=False, chain=VIEW, rule=rule) is AnchorPhase.REVERTED
    shallow = ChainView(31337, 13, None)
    assert anchor_phase(RECEIPT, pending=False, chain=shallow, rule=rule) is AnchorPhase.INCLUDED
    assert anchor_phase(RECEIPT, pending=False, chain=VIEW, rule=rule) is AnchorPhase.FINAL
    # After a reorg the receipt names a later block: depth counts from there.
    moved = dataclasses.replace(RECEIPT, block_number=14)
    assert anchor_phase(moved, pending=False, chain=VIEW, rule=rule) is AnchorPhase.INCLUDED


def test_a_sound_anchor_verifies() -> None:
    event = verify_anchor(RECORD, RECEIPT, chain=VIEW, rule=FinalityRule(3), log_root=ROOT)
    assert (event.origin, event.size, event.root) == (ORIGIN, 40, ROOT)


@pytest.mark.parametrize(
    ("receipt", "view", "rule", "log_root", "words"),
    [
        (RECEIPT, ChainView(1, 14, None), FinalityRule(3), ROOT, "on chain 1"),
        (None, VIEW, FinalityRule(3), ROOT, "not on the chain"),
        (dataclasses.replace(RECEIPT, status=0), VIEW, FinalityRule(3), ROOT, "failed"),
        (dataclasses.replace(RECEIPT, block_number=13), VIEW, FinalityRule(3), ROOT, "reorg"),
        (dataclasses.replace(RECEIPT, logs=()), VIEW, FinalityRule(3), ROOT, "0 Checkpoint"),
        (
            dataclasses.replace(RECEIPT, logs=(event_log(), event_log())),
            VIEW,
            FinalityRule(3),
            ROOT,
            "2 Checkpoint",
        ),
        (
            dataclasses.replace(
                RECEIPT, logs=(dataclasses.replace(event_log(), address="0x" + "11" * 20),)
            ),
            VIEW,
            FinalityRule(3),
            ROOT,
            "0 Checkpoint",
        ),
        (
            dataclasses.replace(RECEIPT, logs=(event_log(size=41),)),
            VIEW,
            FinalityRule(3),
            ROOT,
            "size 41",
        ),
        (
            dataclasses.replace(RECEIPT, logs=(event_log(root=bytes(32)),)),
            VIEW,
            FinalityRule(3),
            ROOT,
            "the event anchors",
        ),
        (RECEIPT, VIEW, FinalityRule(4), ROOT, "3 confirmations, need 4"),
        (RECEIPT, VIEW, FinalityRule(1, finalized_tag=True), ROOT, "finalized block None"),
        (RECEIPT, VIEW, FinalityRule(3), bytes(32), "the log's root at size 40"),
    ],
)
def test_every_mismatch_is_refused_with_evidence(
    receipt: ChainReceipt | None,
    view: ChainView,
    rule: FinalityRule,
    log_root: bytes,
    words: str,
) -> None:
    with pytest.raises(AnchorMismatch) as caught:
        verify_anchor(RECORD, receipt, chain=view, rule=rule, log_root=log_root)
    assert words in str(caught.value)
    assert caught.value.evidence["tx_hash"] == TX


def test_the_pure_core_loads_no_web3_sql_or_http() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, ledger.anchor, ledger.audit, ledger.checkpoint;"
        "loaded = {m.split('.')[0] for m in sys.modules};"
        "print(sorted(loaded & {'web3', 'eth_account', 'sqlalchemy', 'sqlmodel', 'httpx', "
        "'requests'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
