"""Ledger entries: the statement a member signs, and the entry the log appends.

A *statement* is what an actor says and signs on their own machine::

    {"type": ..., "body": {...}, "member": ..., "key_id": ..., "nonce": ..., "time": ...}

The signature is Ed25519 over ``STATEMENT_CONTEXT || JCS(statement)``. The log wraps it in an
*entry* whose canonical bytes are the Merkle leaf::

    {"seq": n, "time": ..., "prev": hex(leaf hash of entry n-1), "statement": {...},
     "signature": base64(signature)}

The server chooses ``seq``, ``time`` and ``prev``; it cannot forge the signature. ``docs/ledger.md``
is the normative description.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.canonical import canonical_bytes, parse_json
from ledger.errors import FormatError, VerificationError
from ledger.merkle import leaf_hash

STATEMENT_CONTEXT = b"corpusx/statement/v1\n"
GENESIS_PREV = "0" * 64

#: The closed set of entry types. Members may add their own statements only under ``attest.``.
ENTRY_TYPES: dict[str, str] = {
    "member.registered": "an operator admits a member with a name, roles and a first public key",
    "member.key.added": "a member (or an operator) adds a public key to a member",
    "member.key.revoked": "a member (or an operator) revokes one of a member's keys",
    "dataset.version.published": "a provider publishes an immutable dataset version",
    "dataset.version.flagged": "the exchange holds a version that overlaps another provider's",
    "dataset.version.cleared": "an operator clears a flagged version",
    "offer.published": "a provider offers a dataset or version under terms",
    "offer.withdrawn": "a provider withdraws an offer",
    "licence.granted": "a buyer accepts an offer: the signed agreement",
    "licence.revoked": "a provider revokes an agreement for cause",
    "account.deposited": "an operator credits a member's account",
    "account.withdrawn": "an operator debits a member's account",
    "data.delivered": "the exchange delivers licensed files to a buyer",
    "model.training.attested": "a model builder attests that a training manifest is licensed",
    "checkpoint.anchored": "the log anchors a checkpoint to a blockchain",
}
ATTEST_PREFIX = "attest."

_MEMBER_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_ATTEST_NAME = re.compile(r"^attest\.[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z$")
MAX_STATEMENT_BYTES = 60_000  # an entry must fit a c2sp entry bundle (uint16 length)


def is_known_type(entry_type: str) -> bool:
    """True for a documented type or a well-formed ``attest.NAME``."""
    return entry_type in ENTRY_TYPES or bool(_ATTEST_NAME.match(entry_type))


def key_id_for(public_key: bytes) -> str:
    """A member key's id: the first 8 bytes of SHA-256 of the raw 32-byte key, in hex."""
    return hashlib.sha256(public_key).digest()[:8].hex()


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds, the only time form in entries."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str, *, what: str = "time") -> datetime:
    if not isinstance(text, str) or not _TIME.match(text):
        raise FormatError(f"{what} must be RFC 3339 UTC like 2026-01-31T12:00:00.000Z, got {text!r}")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise FormatError(f"{what} is not a real date and time: {text!r}") from None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object, *, what: str, length: int | None = None) -> bytes:
    if not isinstance(text, str):
        raise FormatError(f"{what} must be a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(f"{what} is not valid base64") from None
    if length is not None and len(data) != length:
        raise FormatError(f"{what} must be {length} bytes, got {len(data)}")
    return data


@dataclass(frozen=True)
class Statement:
    """What an actor says, before the log places it."""

    type: str
    body: dict[str, Any]
    member: str
    key_id: str
    nonce: str
    time: str

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not is_known_type(self.type):
            raise FormatError(
                f"unknown entry type {self.type!r}: use a documented type or attest.NAME"
            )
        if not isinstance(self.body, dict):
            raise FormatError("statement body must be a JSON object")
        if not isinstance(self.member, str) or not _MEMBER_ID.match(self.member):
            raise FormatError(f"member id {self.member!r} is not a valid member id")
        if not isinstance(self.key_id, str) or not _KEY_ID.match(self.key_id):
            raise FormatError(f"key id {self.key_id!r} must be 16 lowercase hex digits")
        if not isinstance(self.nonce, str) or not _NONCE.match(self.nonce):
            raise FormatError("nonce must be 16-64 characters of base64url")
        parse_time(self.time, what="statement time")

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "body": self.body,
            "member": self.member,
            "key_id": self.key_id,
            "nonce": self.nonce,
            "time": self.time,
        }

    @classmethod
    def from_json(cls, value: object) -> Statement:
        if not isinstance(value, dict):
            raise FormatError("statement must be a JSON object")
        expected = {"type", "body", "member", "key_id", "nonce", "time"}
        if set(value) != expected:
            missing, extra = expected - set(value), set(value) - expected
            raise FormatError(
                f"statement fields wrong: missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        return cls(**value)

    def signing_bytes(self) -> bytes:
        """The exact bytes the actor signs."""
        data = canonical_bytes(self.to_json())
        if len(data) > MAX_STATEMENT_BYTES:
            raise FormatError(f"statement is {len(data)} bytes; the limit is {MAX_STATEMENT_BYTES}")
        return STATEMENT_CONTEXT + data


@dataclass(frozen=True)
class SignedStatement:
    statement: Statement
    signature: bytes

    def verify(self, public_key: bytes) -> None:
        """Raise ``VerificationError`` unless ``public_key`` signed this statement."""
        verify_signature(public_key, self.statement.signing_bytes(), self.signature)

    def to_json(self) -> dict[str, Any]:
        return {"statement": self.statement.to_json(), "signature": b64encode(self.signature)}

    @classmethod
    def from_json(cls, value: object) -> SignedStatement:
        if not isinstance(value, dict) or set(value) != {"statement", "signature"}:
            raise FormatError("a signed statement is an object with 'statement' and 'signature'")
        return cls(
            Statement.from_json(value["statement"]),
            b64decode(value["signature"], what="signature", length=64),
        )


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise VerificationError("the Ed25519 signature does not verify") from None


def sign_statement(statement: Statement, private_key: Ed25519PrivateKey) -> SignedStatement:
    """Sign on the actor's side (the CLI); the private key never leaves the client."""
    return SignedStatement(statement, private_key.sign(statement.signing_bytes()))


@dataclass(frozen=True)
class Entry:
    """A statement as placed in the log."""

    seq: int
    time: str
    prev: str
    signed: SignedStatement
    data: bytes = field(default=b"", compare=False, repr=False)

    @property
    def statement(self) -> Statement:
        return self.signed.statement

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "prev": self.prev,
            "statement": self.signed.statement.to_json(),
            "signature": b64encode(self.signed.signature),
        }

    def canonical(self) -> bytes:
        return self.data or canonical_bytes(self.to_json())

    def leaf_hash(self) -> bytes:
        return leaf_hash(self.canonical())

    @classmethod
    def build(cls, *, seq: int, time: str, prev: bytes | None, signed: SignedStatement) -> Entry:
        entry = cls(seq=seq, time=time, prev=(prev or bytes(32)).hex(), signed=signed)
        return cls(seq, time, entry.prev, signed, canonical_bytes(entry.to_json()))

    @classmethod
    def from_bytes(cls, data: bytes, *, strict: bool = True) -> Entry:
        """Parse an entry's bytes; with ``strict``, reject bytes that are not canonical.

        The leaf hash commits to the bytes as stored, so an auditor may skip the canonical-form
        check (it costs a second serialisation) without weakening any check that matters.
        """
        value = parse_json(data, what="entry")
        if not isinstance(value, dict) or set(value) != {
            "seq",
            "time",
            "prev",
            "statement",
            "signature",
        }:
            raise FormatError("entry must have exactly seq, time, prev, statement, signature")
        seq, prev = value["seq"], value["prev"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise FormatError("entry seq must be a non-negative integer")
        if not isinstance(prev, str) or not _HEX64.match(prev):
            raise FormatError("entry prev must be 64 lowercase hex digits")
        parse_time(value["time"], what="entry time")
        signed = SignedStatement.from_json(
            {"statement": value["statement"], "signature": value["signature"]}
        )
        entry = cls(seq, value["time"], prev, signed, data)
        if strict and canonical_bytes(entry.to_json()) != data:
            raise FormatError(f"entry {seq} is not in RFC 8785 canonical form")
        return entry
