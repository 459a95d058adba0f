"""The ledger's one error tree.

    LedgerError
     ├── FormatError          input that does not parse: a note, checkpoint, key, proof or bundle
     ├── VerificationError    well-formed input that does not verify: says what was expected/found
     │    ├── InconsistencyError   two views of the log that cannot both be true (with evidence)
     │    └── AnchorMismatch       an anchor that the chain does not bear out (with evidence)
     ├── StoreError           the store cannot do what was asked (e.g. a tree size it does not have)
     └── ChainError           the chain node refused a request (anchoring, ``ledger.anchor_evm``)
          ├── ChainUnavailable     the node cannot be reached or timed out: retry later
          └── NonceConflict        the transaction's nonce is used: sign a new one

Parsers never leak a bare ``ValueError``: they raise ``FormatError``.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error raised by the ledger package."""


class FormatError(LedgerError):
    """Input that does not parse as the format it claims to be."""


class VerificationError(LedgerError):
    """Well-formed input that fails verification."""


class InconsistencyError(VerificationError):
    """Two views of the log that cannot both be true; ``evidence`` holds both."""

    def __init__(self, message: str, *, evidence: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.evidence: dict[str, object] = evidence or {}


class AnchorMismatch(VerificationError):
    """A ``checkpoint.anchored`` claim the chain does not bear out; ``evidence`` says why."""

    def __init__(self, message: str, *, evidence: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.evidence: dict[str, object] = evidence or {}


class StoreError(LedgerError):
    """The store cannot serve the request (for example, a size beyond the log)."""


class ChainError(LedgerError):
    """The chain node refused a request; the message is the node's, never a key."""


class ChainUnavailable(ChainError):
    """The chain node cannot be reached or did not answer in time (retryable)."""


class NonceConflict(ChainError):
    """The transaction's nonce is already used on the chain: it can never be included."""
