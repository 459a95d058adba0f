"""The chain node goes down under a running exchange: appends go on, anchoring backs off, and it
catches up when the node is back. The node here is this module's own anvil (its state kept in a
file across the restart), so stopping it disturbs no other test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exchange.chainkey import write_chain_key
from ledger.anchor import contract_artifact
from ledger.anchor_evm import EvmChain
from tests.anvil import DEV_KEYS, running_anvil
from tests.conftest import ChainSetup, LiveServer
from tests.integration.chain.test_anchor_service import final_anchor, wait_for

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[ChainSetup]:
    """Overrides the shared fixture: a node of our own, which survives a restart."""
    key = bytes.fromhex(DEV_KEYS[0])
    key_file = tmp_path / "chain.key"
    write_chain_key(key_file, key)
    try:
        with running_anvil(state_file=tmp_path / "anvil-state.json") as node:
            deployment = EvmChain(node.url, private_key=key).deploy(contract_artifact().bytecode)
            yield ChainSetup(node, deployment.contract, key_file, key)
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.mark.anchoring(anchor_every_entries=3, chain_confirmations=1, chain_backoff_max=0.8)
def test_appends_go_on_while_the_node_is_down_and_anchoring_catches_up(
    live_server: LiveServer, chain: ChainSetup
) -> None:
    with live_server.operator() as operator:
        for n in range(2):
            operator.attest("attest.note", {"n": n})
        wait_for(final_anchor(live_server, 3), what="the first anchor")

        chain.node.stop()
        sizes = [operator.attest("attest.note", {"down": n})["seq"] + 1 for n in range(6)]
        assert sizes == list(range(5, 11))  # every append answered, in order, while down
        status = wait_for(
            lambda: (s := operator.anchors())["failures"] >= 3 and s, what="failed attempts"
        )
        assert "unreachable" in status["last_error"]
        assert 0 < status["retry_in"] <= 0.8  # backing off, capped

        chain.node.start()
        caught_up = wait_for(final_anchor(live_server, 10), what="anchoring to catch up")
        assert caught_up["size"] >= 10
        assert operator.anchors()["failures"] == 0
        anchors = operator.anchors()["anchors"]
        assert [a["state"] for a in anchors] == ["final"] * len(anchors)
