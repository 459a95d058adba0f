"""The provenance ledger: entries, RFC 6962 Merkle tree, proofs, C2SP checkpoints, audit.

The pure core (``canonical``, ``entry``, ``merkle``, ``note``, ``checkpoint``, ``tiles``,
``proofbundle``, ``audit``, ``witness``, ``policy``) imports no SQL, HTTP or web3 code, so an
auditor (or a witness) can use it alone.
``ledger.sql`` is the database driver.
"""
