"""The provenance ledger: entries, RFC 6962 Merkle tree, proofs, C2SP checkpoints, audit.

The pure core (``canonical``, ``entry``, ``merkle``, ``note``, ``checkpoint``, ``tiles``,
``proofbundle``, ``audit``, ``witness``, ``policy``, ``anchor``) imports no SQL, HTTP or web3
code, so an auditor (or a witness) can use it alone. ``ledger.sql`` is the database driver and
``ledger.anchor_evm`` the chain driver (web3); ``ledger/contracts/`` holds the anchor contract's
source and its compiled artifact.
"""
