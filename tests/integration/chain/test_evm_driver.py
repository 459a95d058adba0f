"""The web3 driver against a real anvil node: deploy, sign, send, read back; errors translated."""

from __future__ import annotations

import pytest

from ledger.anchor import EVENT_TOPIC, contract_artifact, decode_anchor_event
from ledger.anchor_evm import EvmChain, account_address
from ledger.checkpoint import Checkpoint
from ledger.errors import ChainError, ChainUnavailable, NonceConflict
from tests.anvil import DEV_KEYS
from tests.conftest import ChainSetup

ROOT = bytes(range(32))


def test_the_deployed_code_is_the_compiled_contract(chain: ChainSetup) -> None:
    reader = EvmChain(chain.node.url)
    assert reader.code_at(chain.contract) == contract_artifact().deployed_bytecode
    assert reader.view().chain_id == 31337


def test_an_anchor_is_sent_once_and_read_back_by_hash_and_by_root(chain: ChainSetup) -> None:
    writer = EvmChain(chain.node.url, contract=chain.contract, private_key=chain.key)
    prepared = writer.prepare(Checkpoint("corpusx.test/ledger", 12, ROOT))
    assert writer.receipt(prepared.tx_hash) is None and not writer.is_pending(prepared.tx_hash)
    chain.node.set_automine(False)
    assert writer.broadcast(prepared.raw) == prepared.tx_hash
    assert writer.broadcast(prepared.raw) == prepared.tx_hash  # again: the node has it already
    assert writer.is_pending(prepared.tx_hash) and writer.receipt(prepared.tx_hash) is None
    chain.node.mine(1)
    receipt = writer.receipt(prepared.tx_hash)
    assert receipt is not None and receipt.status == 1
    (log,) = receipt.logs
    assert log.address == chain.contract and log.topics == (EVENT_TOPIC, ROOT)
    event = decode_anchor_event(log)
    assert (event.origin, event.size) == ("corpusx.test/ledger", 12)
    ((found, by_root),) = writer.events_for_root(ROOT)
    assert found == receipt and by_root == event
    assert writer.events_for_root(bytes(32)) == []
    with pytest.raises(NonceConflict):  # mined: its nonce is spent, it can never be sent again
        writer.broadcast(prepared.raw)


def test_only_the_owner_may_anchor(chain: ChainSetup) -> None:
    stranger = EvmChain(
        chain.node.url, contract=chain.contract, private_key=bytes.fromhex(DEV_KEYS[1])
    )
    with pytest.raises(ChainError, match="revert") as caught:
        stranger.prepare(Checkpoint("corpusx.test/ledger", 1, ROOT))
    assert DEV_KEYS[1] not in str(caught.value) and DEV_KEYS[1] not in repr(stranger)
    assert account_address(bytes.fromhex(DEV_KEYS[1])) in repr(stranger)


def test_an_unreachable_node_is_chain_unavailable() -> None:
    down = EvmChain("http://127.0.0.1:9", contract="0x" + "11" * 20, timeout=1)
    with pytest.raises(ChainUnavailable, match="unreachable"):
        down.view()
    with pytest.raises(ChainUnavailable):
        down.receipt("0x" + "00" * 32)
