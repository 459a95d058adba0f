"""The anchoring driver for EVM chains, over JSON-RPC with web3.py: the only module that uses web3.

:class:`EvmChain` implements ``ledger.anchor.AnchorChain``: it signs anchor transactions with the
operator's account key (held in memory only, never printed), sends them, and reads receipts,
blocks and our contract's events back. Errors are translated at this boundary: an unreachable or
silent node is ``ChainUnavailable`` (retry later), a used nonce ``NonceConflict``, any other
refusal ``ChainError`` with the node's message; nothing of requests or web3 leaks out.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

# eth_account imports py_ecc, which raises the interpreter's recursion limit to 100,000 for the
# whole process. Python's C JSON parser then overflows the C stack on deeply nested input
# instead of raising RecursionError: a request body of 100,000 '[' would crash the server. The
# limit is put back as soon as the imports are done.
_RECURSION_LIMIT = sys.getrecursionlimit()

import requests  # noqa: E402
from eth_account import Account  # noqa: E402
from eth_account.signers.local import LocalAccount  # noqa: E402
from web3 import Web3  # noqa: E402
from web3.exceptions import (  # noqa: E402
    BlockNotFound,
    ContractLogicError,
    TransactionNotFound,
    Web3Exception,
    Web3RPCError,
)

from ledger.anchor import (  # noqa: E402
    EVENT_TOPIC,
    AnchoredEvent,
    AnchorEvent,
    ChainLog,
    ChainReceipt,
    ChainView,
    PreparedAnchor,
    decode_anchor_event,
    encode_anchor_call,
)
from ledger.checkpoint import Checkpoint  # noqa: E402
from ledger.errors import ChainError, ChainUnavailable, FormatError, NonceConflict  # noqa: E402

sys.setrecursionlimit(_RECURSION_LIMIT)

T = TypeVar("T")
GAS_MARGIN = 1.2  # over the node's estimate: the event's cost is fixed, the margin is cheap
_ALREADY_KNOWN = ("already known", "known transaction", "already imported")
_NONCE_USED = ("nonce too low", "nonce has already been used", "oldnonce", "invalid nonce")
_NOT_OWNER = "0x245aecd3"  # the selector of the contract's error NotOwner(address)


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn what requests and web3 raise into the ledger's chain errors (no key is ever in it)."""
    try:
        yield
    except requests.exceptions.RequestException as exc:
        raise ChainUnavailable(
            f"{action}: the chain node is unreachable ({type(exc).__name__})"
        ) from None
    except ContractLogicError as exc:
        raise ChainError(f"{action}: the contract would revert: {_revert_reason(exc)}") from None
    except (Web3Exception, ValueError) as exc:  # web3 raises ValueError for some node answers
        message = _message(exc)
        lowered = message.lower()
        if any(words in lowered for words in _NONCE_USED):
            raise NonceConflict(f"{action}: {message}") from None
        raise ChainError(f"{action}: {message}") from None


def _message(exc: Exception) -> str:
    """The node's words: the ``message`` of a JSON-RPC error, else the first line of the error."""
    if isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, dict):
        error = exc.rpc_response.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _revert_reason(exc: ContractLogicError) -> str:
    data = str(exc.data or "")
    if data.startswith(_NOT_OWNER):
        return f"NotOwner(0x{data[-40:]}): this account does not own the contract"
    return exc.message or data or "no reason given"


def _receipt(raw: Any) -> ChainReceipt:
    logs = tuple(
        ChainLog(
            address=str(log["address"]).lower(),
            topics=tuple(bytes(topic) for topic in log["topics"]),
            data=bytes(log["data"]),
        )
        for log in raw["logs"]
    )
    return ChainReceipt(
        tx_hash=_hex(raw["transactionHash"]),
        status=int(raw["status"]),
        block_number=int(raw["blockNumber"]),
        block_hash=_hex(raw["blockHash"]),
        logs=logs,
    )


def account_address(private_key: bytes) -> str:
    """The EIP-55 address of the account a private key controls."""
    address: str = Account.from_key(private_key).address
    return address


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    contract: str  # lowercase 0x-hex
    tx_hash: str
    block_number: int


class EvmChain:
    """One JSON-RPC endpoint, our anchor contract on it and (to write) the account that owns it."""

    def __init__(
        self,
        rpc_url: str,
        *,
        contract: str | None = None,
        private_key: bytes | None = None,
        timeout: float = 5.0,
        start_block: int = 0,
    ) -> None:
        provider = Web3.HTTPProvider(
            rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
        )
        self.rpc_url = rpc_url
        self._w3 = Web3(provider)
        self._contract = contract.lower() if contract else None
        self._account: LocalAccount | None = (
            Account.from_key(private_key) if private_key is not None else None
        )
        self._start_block = start_block
        self._chain_id: int | None = None

    def __repr__(self) -> str:  # never the key
        return f"EvmChain({self.rpc_url!r}, contract={self._contract}, account={self.address})"

    # -- identity -----------------------------------------------------------------------------

    @property
    def contract(self) -> str:
        if self._contract is None:
            raise ChainError("no anchor contract is configured (run `corpusx chain deploy`)")
        return self._contract

    @property
    def address(self) -> str | None:
        """The signing account's address (EIP-55), if this chain object can sign."""
        return self._account.address if self._account is not None else None

    def _signer(self) -> LocalAccount:
        if self._account is None:
            raise ChainError("no chain account key is configured (CORPUSX_CHAIN_KEY_FILE)")
        return self._account

    def chain_id(self) -> int:
        if self._chain_id is None:
            with _translated("reading the chain id"):
                self._chain_id = int(self._w3.eth.chain_id)
        return self._chain_id

    # -- reading ------------------------------------------------------------------------------

    def view(self) -> ChainView:
        chain_id = self.chain_id()
        with _translated("reading the latest block"):
            head = int(self._w3.eth.block_number)
        return ChainView(chain_id=chain_id, head=head, finalized=self._finalized())

    def _finalized(self) -> int | None:
        """The ``finalized`` block, or None on a node that has no such tag."""
        try:
            with _translated("reading the finalized block"):
                return int(self._w3.eth.get_block("finalized")["number"])
        except ChainUnavailable:
            raise
        except (ChainError, BlockNotFound, KeyError):
            return None

    def receipt(self, tx_hash: str) -> ChainReceipt | None:
        with _translated(f"reading the receipt of {tx_hash}"):
            try:
                raw = self._w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                return None
        if raw.get("blockNumber") is None:  # some nodes answer for pending transactions
            return None
        return _receipt(raw)

    def is_pending(self, tx_hash: str) -> bool:
        """True if the node holds the transaction in its pool, in no block yet."""
        with _translated(f"looking up transaction {tx_hash}"):
            try:
                found = self._w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                return False
        return found.get("blockNumber") is None

    def code_at(self, address: str) -> bytes:
        with _translated(f"reading the code at {address}"):
            return bytes(self._w3.eth.get_code(Web3.to_checksum_address(address)))

    def events_for_root(self, root: bytes) -> list[tuple[ChainReceipt, AnchorEvent]]:
        """Every successful anchor of ``root`` by our contract, with its receipt."""
        query: Any = {
            "address": Web3.to_checksum_address(self.contract),
            "topics": [_hex(EVENT_TOPIC), _hex(root)],
            "fromBlock": self._start_block,
            "toBlock": "latest",
        }
        with _translated("searching the contract's events"):
            logs = self._w3.eth.get_logs(query)
        found = []
        for log in logs:
            receipt = self.receipt(_hex(log["transactionHash"]))
            if receipt is None or receipt.status != 1:
                continue
            for entry in receipt.logs:
                if entry.address == self.contract and entry.topics[:1] == (EVENT_TOPIC,):
                    try:
                        found.append((receipt, decode_anchor_event(entry)))
                    except FormatError:
                        continue
        return found

    def anchor_events(self, contract: str, *, from_block: int = 0) -> list[AnchoredEvent]:
        """Every CheckpointAnchored event of ``contract`` on the canonical chain, oldest first.

        Only successful transactions leave events, so each one is an anchor the owner made.
        """
        query: Any = {
            "address": Web3.to_checksum_address(contract),
            "topics": [_hex(EVENT_TOPIC)],
            "fromBlock": from_block,
            "toBlock": "latest",
        }
        with _translated(f"reading the events of {contract}"):
            logs = self._w3.eth.get_logs(query)
        found = []
        for log in logs:
            raw = ChainLog(
                str(log["address"]).lower(),
                tuple(bytes(topic) for topic in log["topics"]),
                bytes(log["data"]),
            )
            try:
                event = decode_anchor_event(raw)
            except FormatError:
                continue  # not ours to judge: the code check says whether this is our contract
            tx_hash = _hex(log["transactionHash"])
            found.append(AnchoredEvent(tx_hash, int(log["blockNumber"]), event))
        return found

    # -- writing ------------------------------------------------------------------------------

    def _fees(self) -> dict[str, int]:
        """EIP-1559 fees that survive a doubling of the base fee; legacy gas price otherwise."""
        base = self._w3.eth.get_block("latest").get("baseFeePerGas")
        if base is None:
            return {"gasPrice": int(self._w3.eth.gas_price)}
        tip = int(self._w3.eth.max_priority_fee)
        return {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * int(base) + tip, "type": 2}

    def _sign(self, fields: dict[str, Any], action: str) -> PreparedAnchor:
        account = self._signer()
        with _translated(action):
            nonce = int(self._w3.eth.get_transaction_count(account.address, "pending"))
            estimate = int(self._w3.eth.estimate_gas({"from": account.address, **fields}))  # type: ignore[typeddict-item]
            tx: Any = {
                "chainId": self.chain_id(),
                "nonce": nonce,
                "gas": int(estimate * GAS_MARGIN),
                "value": 0,
                **fields,
                **self._fees(),
            }
            signed = account.sign_transaction(tx)
        return PreparedAnchor(_hex(signed.hash), bytes(signed.raw_transaction), nonce)

    def prepare(self, checkpoint: Checkpoint) -> PreparedAnchor:
        """Sign ``anchor(origin, size, root)`` at the account's next nonce, without sending it."""
        fields = {
            "to": Web3.to_checksum_address(self.contract),
            "data": _hex(encode_anchor_call(checkpoint)),
        }
        return self._sign(fields, f"preparing the anchor of size {checkpoint.size}")

    def broadcast(self, raw: bytes) -> str:
        """Send a signed transaction; sending one the node already has is not an error."""
        tx_hash = _hex(Web3.keccak(raw))
        try:
            with _translated(f"sending transaction {tx_hash}"):
                self._w3.eth.send_raw_transaction(raw)
        except NonceConflict:
            raise
        except ChainError as exc:
            if not any(words in str(exc).lower() for words in _ALREADY_KNOWN):
                raise
        return tx_hash

    def deploy(self, bytecode: bytes, *, timeout: float = 60.0) -> Deployment:
        """Create the anchor contract (owned by this account) and wait for it to be mined."""
        prepared = self._sign({"data": _hex(bytecode)}, "preparing the contract deployment")
        tx_hash = self.broadcast(prepared.raw)
        receipt = _wait(lambda: self._raw_receipt(tx_hash), timeout, f"deployment {tx_hash}")
        if int(receipt["status"]) != 1 or receipt.get("contractAddress") is None:
            raise ChainError(f"the deployment transaction {tx_hash} failed")
        return Deployment(
            chain_id=self.chain_id(),
            contract=str(receipt["contractAddress"]).lower(),
            tx_hash=tx_hash,
            block_number=int(receipt["blockNumber"]),
        )

    def _raw_receipt(self, tx_hash: str) -> Any:
        with _translated(f"reading the receipt of {tx_hash}"):
            try:
                return self._w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                return None


def _wait(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while (found := probe()) is None:
        if time.monotonic() > deadline:
            raise ChainError(f"{what} was not mined within {timeout:.0f}s")
        time.sleep(0.2)
    return found
