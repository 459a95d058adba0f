// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Public anchors of a transparency log's checkpoints.
/// @notice One contract per log. Its owner (the exchange's anchoring account, the deployer)
/// publishes the log's checkpoints as (origin, tree size, root hash); anyone can read them back
/// by root from the event log and compare them with what the log shows. The contract keeps no
/// checkpoint in storage: the events are the record, which keeps an anchor cheap.
/// docs/ledger.md section 5.5 specifies how a verifier checks an anchor.
contract CheckpointAnchor {
    /// @notice A checkpoint of the log `origin`: the RFC 6962 root of its first `treeSize` entries.
    event CheckpointAnchored(bytes32 indexed root, string origin, uint64 treeSize);

    /// @notice Only this account may anchor, so every event of the contract is the log's own.
    address public owner;

    error NotOwner(address caller);

    constructor() {
        owner = msg.sender;
    }

    function anchor(string calldata origin, uint64 treeSize, bytes32 root) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        emit CheckpointAnchored(root, origin, treeSize);
    }
}
