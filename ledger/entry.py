"""Ledger entries: the statement a member signs, and the entry the log appends.

A *statement* is what an actor says and signs on their own machine::

    {"type": ..., "body": {...}, "member": ..., "key_id": ..., "nonce": ..., "time": ...,
     "log": <origin of the log it is addressed to>}

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
from functools import cached_property
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.canonical import canonical_bytes, parse_json
from ledger.errors import FormatError, VerificationError
from ledger.merkle import leaf_hash

STATEMENT_CONTEXT = b"corpusx/statement/v1\n"
GENESIS_PREV = "0" * 64

EXCHANGE = "exchange"
"""The reserved member id (and role) under which the exchange itself signs, with the log key."""

ANY_MEMBER = frozenset({"provider", "buyer", "auditor", "operator"})


@dataclass(frozen=True)
class EntryType:
    description: str
    signers: frozenset[str]  # roles, any of which may sign this type


def _type(description: str, *roles: str) -> EntryType:
    return EntryType(description, frozenset(roles))


#: The closed set of entry types and who may sign each. Members add their own statements only
#: under ``attest.NAME`` (any member may). ``docs/ledger.md`` lists the body of each type.
ENTRY_TYPES: dict[str, EntryType] = {
    "member.registered": _type("an operator admits a member with roles and a key", "operator"),
    "member.key.added": _type("a member adds a key of its own (rotation)", *ANY_MEMBER),
    "member.key.revoked": _type("a member, or an operator, revokes a member's key", *ANY_MEMBER),
    "dataset.version.published": _type("a provider publishes an immutable version", "provider"),
    "dataset.version.flagged": _type("the exchange holds an overlapping version", EXCHANGE),
    "dataset.version.cleared": _type("an operator clears a flagged version", "operator"),
    "offer.published": _type("a provider offers a dataset or version under terms", "provider"),
    "offer.withdrawn": _type("a provider withdraws an offer", "provider"),
    "licence.granted": _type("a buyer accepts an offer: the signed agreement", "buyer"),
    "licence.revoked": _type("a provider revokes an agreement for cause", "provider"),
    "account.deposited": _type("an operator credits a member's account", "operator"),
    "account.withdrawn": _type("an operator debits a member's account", "operator"),
    "data.delivered": _type("the exchange delivers licensed files to a buyer", EXCHANGE),
    "model.training.attested": _type("a model builder attests its training data", "buyer"),
    "checkpoint.anchored": _type("the exchange anchors a checkpoint on a chain", EXCHANGE),
}
ATTEST_PREFIX = "attest."

_MEMBER_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_ATTEST_NAME = re.compile(r"^attest\.[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# Exactly milliseconds, so that times compare correctly as strings.
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
MAX_STATEMENT_BYTES = 60_000  # an entry must fit a c2sp entry bundle (uint16 length)


def is_known_type(entry_type: str) -> bool:
    """True for a documented type or a well-formed ``attest.NAME``."""
    return entry_type in ENTRY_TYPES or bool(_ATTEST_NAME.fullmatch(entry_type))


def signer_roles(entry_type: str) -> frozenset[str]:
    """The roles that may sign ``entry_type``; any member may sign ``attest.NAME``."""
    known = ENTRY_TYPES.get(entry_type)
    return known.signers if known is not None else ANY_MEMBER | {EXCHANGE}


def is_member_id(value: object) -> bool:
    return isinstance(value, str) and bool(_MEMBER_ID.fullmatch(value))


def key_id_for(public_key: bytes) -> str:
    """A member key's id: the first 8 bytes of SHA-256 of the raw 32-byte key, in hex."""
    return hashlib.sha256(public_key).digest()[:8].hex()


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds, the only time form in entries."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def parse_time(text: str, *, what: str = "time") -> datetime:
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        raise FormatError(
            f"{what} must be RFC 3339 UTC with milliseconds like 2026-01-31T12:00:00.000Z, "
            f"got {text!r}"
        )
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
    if b64encode(data) != text:  # one value, one encoding: no malleable leaf bytes
        raise FormatError(f"{what} is not in canonical base64")
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
    log: str

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not is_known_type(self.type):
            raise FormatError(
                f"unknown entry type {self.type!r}: use a documented type or attest.NAME"
            )
        if not isinstance(self.body, dict):
            raise FormatError("statement body must be a JSON object")
        if not isinstance(self.member, str) or not _MEMBER_ID.fullmatch(self.member):
            raise FormatError(f"member id {self.member!r} is not a valid member id")
        if not isinstance(self.key_id, str) or not _KEY_ID.fullmatch(self.key_id):
            raise FormatError(f"key id {self.key_id!r} must be 16 lowercase hex digits")
        if not isinstance(self.nonce, str) or not _NONCE.fullmatch(self.nonce):
            raise FormatError("nonce must be 16-64 characters of base64url")
        parse_time(self.time, what="statement time")
        if not isinstance(self.log, str) or not 0 < len(self.log) <= 200:
            raise FormatError("statement log must name the origin of the log it is addressed to")

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "body": self.body,
            "member": self.member,
            "key_id": self.key_id,
            "nonce": self.nonce,
            "time": self.time,
            "log": self.log,
        }

    @classmethod
    def from_json(cls, value: object) -> Statement:
        if not isinstance(value, dict):
            raise FormatError("statement must be a JSON object")
        expected = {"type", "body", "member", "key_id", "nonce", "time", "log"}
        if set(value) != expected:
            missing, extra = expected - set(value), set(value) - expected
            raise FormatError(
                f"statement fields wrong: missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        return cls(**value)

    @cached_property
    def canonical(self) -> bytes:
        """JCS of the statement, computed once (it is signed, verified and logged)."""
        data = canonical_bytes(self.to_json())
        if len(data) > MAX_STATEMENT_BYTES:
            raise FormatError(f"statement is {len(data)} bytes; the limit is {MAX_STATEMENT_BYTES}")
        return data

    def signing_bytes(self) -> bytes:
        """The exact bytes the actor signs."""
        return STATEMENT_CONTEXT + self.canonical


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
        """The entry's canonical bytes, spliced around the statement's own canonical bytes.

        JCS sorts the entry's keys as prev, seq, signature, statement, time; the other values
        are hex, base64, an integer and a timestamp, which JCS writes as they are.
        """
        prev_hex = (prev or bytes(32)).hex()
        parse_time(time, what="entry time")
        signature = b64encode(signed.signature)
        data = b"".join(
            (
                f'{{"prev":"{prev_hex}","seq":{int(seq)},"signature":"{signature}","statement":'.encode(),
                signed.statement.canonical,
                f',"time":"{time}"}}'.encode(),
            )
        )
        return cls(seq, time, prev_hex, signed, data)

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
        if not isinstance(prev, str) or not _HEX64.fullmatch(prev):
            raise FormatError("entry prev must be 64 lowercase hex digits")
        parse_time(value["time"], what="entry time")
        signed = SignedStatement.from_json(
            {"statement": value["statement"], "signature": value["signature"]}
        )
        entry = cls(seq, value["time"], prev, signed, data)
        if strict and canonical_bytes(entry.to_json()) != data:
            raise FormatError(f"entry {seq} is not in RFC 8785 canonical form")
        return entry
