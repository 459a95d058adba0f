"""The exchange's anchorer against a real anvil node, on SQLite and PostgreSQL.

Each step of ``Anchorer`` is driven by hand here, and the chain by anvil's mining controls, so
every state (submitted, included, dropped, final) can be observed between steps.
"""

from __future__ import annotations

import threading

import pytest

from exchange.anchor_models import DROPPED, FINAL, INCLUDED, SUBMITTED
from exchange.anchoring import Anchorer
from ledger.anchor import FinalityRule, verify_anchor
from ledger.anchor_evm import EvmChain
from ledger.errors import ChainUnavailable
from ledger.sql import SqlLedger
from tests.conftest import ChainSetup, Prepared
from tests.integration.chain.helpers import anchor_entries, anchoring_exchange, anchors, append


def test_an_anchor_is_recorded_once_and_only_when_final(
    prepared: Prepared, chain: ChainSetup
) -> None:
    with anchoring_exchange(prepared, chain) as (exchange, anchorer):
        size = append(exchange, 4)  # genesis + 4: the schedule wants 5 new entries
        assert anchorer.step().submitted == size
        (anchor,) = anchors(exchange)
        assert anchor.state == SUBMITTED and anchor.size == size

        assert anchorer.step().finalised == ()  # automine: in a block, 1 of 3 confirmations
        (anchor,) = anchors(exchange)
        assert (anchor.state, anchor.depth) == (INCLUDED, 1)
        assert anchor_entries(exchange) == []

        chain.node.mine(2)
        assert anchorer.step().finalised == (size,)
        (anchor,) = anchors(exchange)
        assert anchor.state == FINAL and anchor.depth == 3
        ((entry, record),) = anchor_entries(exchange)
        assert entry.seq == anchor.entry_seq == size  # the next entry after the anchored tree
        assert entry.statement.member == "exchange"
        assert (record.size, record.tx_hash, record.block_number) == (
            size,
            anchor.tx_hash,
            anchor.block_number,
        )
        with exchange.reading() as session:
            root = SqlLedger(session).checkpoint_at(size)
        assert root is not None and record.root == root.root

        # The recorded claim is what any node of the chain bears out.
        reader = EvmChain(chain.node.url, contract=chain.contract)
        verify_anchor(
            record,
            reader.receipt(record.tx_hash),
            chain=reader.view(),
            rule=FinalityRule(3),
            log_root=root.root,
        )

        # The anchor entry is no growth to anchor: nothing more is due, however often we look.
        chain.node.mine(5)
        for _ in range(3):
            assert anchorer.step().submitted is None
        assert len(anchors(exchange)) == 1


def test_the_schedule_counts_entries_and_time(prepared: Prepared, chain: ChainSetup) -> None:
    now = [1000.0]
    with anchoring_exchange(
        prepared, chain, anchor_every_entries=10, anchor_interval=60.0, chain_confirmations=1
    ) as (exchange, built):
        anchorer = Anchorer(exchange, built.chain, built.policy, clock=lambda: now[0])
        append(exchange, 2)
        assert anchorer.step().submitted == 3  # never anchored: the interval has passed
        assert anchorer.step().finalised == (3,)
        append(exchange, 3)
        now[0] += 30
        assert anchorer.step().submitted is None  # 3 new entries, 30 s: not yet
        now[0] += 31
        assert anchorer.step().submitted == 7  # 61 s since the last anchor
        anchorer.step()
        size = append(exchange, 10)
        assert anchorer.step().submitted == size  # 10 new entries, whatever the clock says


def test_a_reorg_drops_the_anchor_and_it_is_sent_again_not_final_before_its_confirmations(
    prepared: Prepared, chain: ChainSetup
) -> None:
    node = chain.node
    with anchoring_exchange(prepared, chain) as (exchange, anchorer):
        size = append(exchange, 4)
        snapshot = node.snapshot()
        anchorer.step()
        node.mine(1)
        anchorer.step()
        (anchor,) = anchors(exchange)
        assert (anchor.state, anchor.depth) == (INCLUDED, 2)
        first_block = anchor.block_number

        # The reorg: the blocks holding the anchor are replaced by a longer chain without it.
        node.revert(snapshot)
        node.set_automine(False)
        node.mine(5)
        assert anchorer.step().finalised == ()
        (anchor,) = anchors(exchange)
        assert anchor.state == SUBMITTED and anchor.resubmissions == 1
        assert anchor.block_number is None

        # Sent again, but in no block yet: the chain is 5 blocks past the old one, still not final.
        for _ in range(3):
            assert anchorer.step().finalised == ()
        assert anchors(exchange)[0].state == SUBMITTED
        assert anchor_entries(exchange) == []

        node.mine(1)
        anchorer.step()
        (anchor,) = anchors(exchange)
        assert (anchor.state, anchor.depth) == (INCLUDED, 1)
        node.mine(2)
        assert anchorer.step().finalised == (size,)
        ((_, record),) = anchor_entries(exchange)
        assert record.block_number == anchors(exchange)[0].block_number != first_block


def test_a_transaction_evicted_from_the_pool_is_sent_again(
    prepared: Prepared, chain: ChainSetup
) -> None:
    node = chain.node
    with anchoring_exchange(prepared, chain) as (exchange, anchorer):
        append(exchange, 4)
        node.set_automine(False)
        anchorer.step()
        (anchor,) = anchors(exchange)
        anchorer.step()
        assert anchors(exchange)[0].resubmissions == 0  # pending: nothing to do
        node.drop(anchor.tx_hash)
        anchorer.step()
        (resent,) = anchors(exchange)
        assert (resent.state, resent.resubmissions) == (SUBMITTED, 1)
        assert resent.tx_hash == anchor.tx_hash  # the same signed bytes: idempotent
        node.mine(3)
        assert anchorer.step().finalised == (anchor.size,)


class _FailingOnce(EvmChain):
    """The real chain, but the first send is lost (a crash between storing and sending)."""

    lost = False

    def broadcast(self, raw: bytes) -> str:
        if not self.lost:
            self.lost = True
            raise ChainUnavailable("the connection broke while sending")
        return super().broadcast(raw)


def test_a_send_lost_after_storing_is_repeated_with_the_same_transaction(
    prepared: Prepared, chain: ChainSetup
) -> None:
    with anchoring_exchange(prepared, chain, chain_poll_interval=0.01) as (exchange, anchorer):
        flaky = _FailingOnce(chain.node.url, contract=chain.contract, private_key=chain.key)
        anchorer = Anchorer(exchange, flaky, anchorer.policy)
        append(exchange, 4)
        report = anchorer.step()
        assert report.error is not None and "connection broke" in report.error
        (anchor,) = anchors(exchange)
        assert anchor.state == SUBMITTED
        assert anchorer.status().failures == 1
        anchorer.step(force=True)
        (resent,) = anchors(exchange)
        assert (resent.tx_hash, resent.resubmissions) == (anchor.tx_hash, 1)
        assert anchorer.status().failures == 0
        chain.node.mine(3)
        anchorer.step()
        assert [a.state for a in anchors(exchange)] == [FINAL]


def test_only_the_lease_holder_anchors_and_nothing_is_recorded_twice(
    prepared: Prepared, chain: ChainSetup
) -> None:
    with anchoring_exchange(prepared, chain) as (exchange, first):
        second = Anchorer(exchange, first.chain, first.policy)
        append(exchange, 4)
        assert first.step().submitted is not None
        report = second.step()
        assert not report.ran and "another worker" in report.reason
        first.release()  # the first worker stops: the second takes over its anchor
        chain.node.mine(3)
        assert second.step().finalised != ()

        # Both workers racing, many times over: one anchor per checkpoint, one entry per anchor.
        for _ in range(3):
            append(exchange, 5)
            for _ in range(4):
                threads = [threading.Thread(target=w.step) for w in (first, second)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                chain.node.mine(3)
            second.release()
            first.release()
        rows = anchors(exchange)
        entries = anchor_entries(exchange)
        assert len({a.size for a in rows}) == len(rows) == 4
        assert all(a.state == FINAL for a in rows)
        assert sorted(r.size for _, r in entries) == [a.size for a in rows]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_with_the_finalized_tag_an_anchor_waits_for_the_finalized_block(
    prepared: Prepared, chain: ChainSetup
) -> None:
    with anchoring_exchange(prepared, chain, chain_finality="finalized") as (exchange, anchorer):
        append(exchange, 4)
        anchorer.step()
        chain.node.mine(40)  # deep, but anvil finalizes only 64 blocks back
        anchorer.step()
        assert anchors(exchange)[0].state == INCLUDED
        chain.node.mine(30)
        anchorer.step()
        ((_, record),) = anchor_entries(exchange)
        assert record.finality == "finalized" and record.confirmations >= 65


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_node_unreachable_is_backed_off_and_appends_go_on(
    prepared: Prepared, chain: ChainSetup
) -> None:
    with anchoring_exchange(
        prepared, chain, chain_rpc_url="http://127.0.0.1:9", chain_poll_interval=0.1
    ) as (exchange, anchorer):
        append(exchange, 4)
        delays = []
        for _ in range(4):
            report = anchorer.step(force=True)
            assert report.error is not None and "unreachable" in report.error
            state = anchorer.status()
            delays.append(state.retry_at - anchorer.clock())
        assert anchorer.step().reason.startswith("backing off")
        assert delays[0] < delays[1] < delays[2] and delays[3] <= 0.4 + 0.05
        assert append(exchange, 3) == 8  # the ledger never waits for the chain
        assert anchors(exchange) == [] or anchors(exchange)[0].state in (SUBMITTED, DROPPED)
