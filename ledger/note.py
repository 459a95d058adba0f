"""Signed notes (c2sp.org/signed-note) and their Ed25519 keys.

A signed note is a UTF-8 text ending in a newline, a blank line, then one or more
signature lines ``— <key name> base64(key ID || signature)``. Checkpoints, cosignatures
and proof bundles are all built on this one format, so everything here is strict: any
input that is not exactly what the spec describes raises :class:`FormatError`, and a
signature that a *known* key rejects raises :class:`VerificationError`.

Two signature types are implemented:

* ``0x01`` plain Ed25519 over the note text (logs sign checkpoints with it);
* ``0x04`` timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature), which sign
  ``"cosignature/v1\\ntime <t>\\n" || note text`` and carry ``u64 t || sig``.

Keys are exchanged as *vkeys* ``<name>+<hex key ID>+base64(type || public key)`` and, for
Ed25519 only, as Go ``sumdb/note`` *skeys* ``PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 ||
seed)``, so keys and signatures interoperate byte for byte with the Go ecosystem.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from ledger.errors import FormatError, VerificationError

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "CosignatureSigner",
    "CosignatureVerifier",
    "Ed25519Signer",
    "Ed25519Verifier",
    "Note",
    "NoteSignature",
    "Signer",
    "Verifier",
    "cosignature_timestamp",
    "decode_base64",
    "encode_base64",
    "key_id_for",
    "open_note",
    "parse_decimal",
    "sign_note",
    "validate_key_name",
    "verifier_from_vkey",
]

ALG_ED25519 = 0x01
"""Signature type byte of plain Ed25519 note signatures (signed-note)."""

ALG_COSIGNATURE_V1 = 0x04
"""Signature type byte of timestamped Ed25519 cosignatures (tlog-cosignature)."""

MAX_SIGNATURES = 100
"""The spec requires accepting at least 16; 100 (as Go's sumdb/note) bounds parsing work."""

MAX_TIMESTAMP = (1 << 63) - 1
"""tlog-cosignature: a cosignature timestamp MUST NOT exceed 2^63 - 1."""

KEY_ID_SIZE = 4
ED25519_KEY_SIZE = 32
ED25519_SIG_SIZE = 64
COSIGNATURE_SIZE = 8 + ED25519_SIG_SIZE

SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_COSIGNATURE_HEADER = "cosignature/v1\n"
_SKEY_PREFIX = "PRIVATE+KEY+"
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


# --- shared wire helpers ---------------------------------------------------------------


def decode_base64(text: str, what: str, *, size: int | None = None) -> bytes:
    """Decode standard, padded, *canonical* base64 (RFC 4648 §4) or raise FormatError.

    Canonical means re-encoding gives back the same string, so a value has exactly one
    spelling and parsed objects serialise back to the bytes they came from.
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise FormatError(f"{what}: invalid base64 {text!r}") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise FormatError(f"{what}: non-canonical base64 {text!r}")
    if size is not None and len(raw) != size:
        raise FormatError(f"{what}: expected {size} bytes, got {len(raw)}")
    return raw


def encode_base64(raw: bytes) -> str:
    """Standard padded base64, the only encoding the C2SP formats use."""
    return base64.b64encode(raw).decode("ascii")


def parse_decimal(text: str, what: str, *, maximum: int = (1 << 64) - 1) -> int:
    """Parse ASCII decimal with no leading zeroes (``0`` itself allowed), up to ``maximum``.

    ``int()`` is not used alone because it accepts signs, underscores, spaces and
    non-ASCII digits, none of which the C2SP formats allow.
    """
    if _DECIMAL.fullmatch(text) is None:
        raise FormatError(f"{what}: expected a decimal without leading zeroes, got {text!r}")
    value = int(text)
    if value > maximum:
        raise FormatError(f"{what}: {value} exceeds the maximum {maximum}")
    return value


def validate_key_name(name: str) -> str:
    """Key names MUST be non-empty and contain no Unicode spaces or ``+`` (signed-note)."""
    if not isinstance(name, str) or not name:
        raise FormatError("key name must be a non-empty string")
    if "+" in name or any(ch.isspace() for ch in name):
        raise FormatError(f"key name {name!r} contains a space or '+'")
    _check_note_chars(name, "key name")
    return name


def key_id_for(name: str, alg: int, public_key: bytes) -> bytes:
    """Key ID = SHA-256(name || 0x0A || type || public key)[:4], as the specs define it."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()
    return digest[:KEY_ID_SIZE]


def _check_note_chars(text: str, what: str) -> None:
    """Notes MUST be valid UTF-8 with no ASCII control characters other than newline."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FormatError(f"{what}: not valid UTF-8") from exc
    for pos, ch in enumerate(text):
        if ch < " " and ch != "\n":
            raise FormatError(f"{what}: control character {ch!r} at offset {pos}")


def _split_key_string(text: str, what: str) -> tuple[str, bytes, int, bytes]:
    """Split ``<name>+<hex8>+<base64(type || key)>`` into (name, key ID, type, key)."""
    name, sep1, rest = text.partition("+")
    hex8, sep2, key64 = rest.partition("+")
    if not sep1 or not sep2:
        raise FormatError(f"{what}: expected <name>+<hex key ID>+<base64 key>")
    validate_key_name(name)
    if _HEX8.fullmatch(hex8) is None:
        raise FormatError(f"{what}: key ID must be 8 hex digits, got {hex8!r}")
    material = decode_base64(key64, f"{what} key")
    if len(material) < 2:
        raise FormatError(f"{what}: key material is too short")
    return name, bytes.fromhex(hex8), material[0], material[1:]


def _parse_vkey(vkey: str, alg: int) -> tuple[str, bytes]:
    """Parse a vkey of signature type ``alg``; the embedded key ID must match the key."""
    name, key_id, got_alg, key = _split_key_string(vkey, "verifier key")
    if got_alg != alg:
        raise FormatError(f"verifier key: signature type 0x{got_alg:02x}, expected 0x{alg:02x}")
    if len(key) != ED25519_KEY_SIZE:
        raise FormatError(f"verifier key: Ed25519 key must be 32 bytes, got {len(key)}")
    if key_id_for(name, alg, key) != key_id:
        raise FormatError(f"verifier key: key ID {key_id.hex()} does not match the key")
    return name, key


def _parse_skey(skey: str, alg: int) -> tuple[str, bytes, bytes]:
    """Parse a Go-style skey into (name, claimed key ID, 32-byte seed)."""
    if not skey.startswith(_SKEY_PREFIX):
        raise FormatError("signer key: must start with 'PRIVATE+KEY+'")
    name, key_id, got_alg, seed = _split_key_string(skey[len(_SKEY_PREFIX) :], "signer key")
    if got_alg != alg:
        raise FormatError(f"signer key: signature type 0x{got_alg:02x}, expected 0x{alg:02x}")
    if len(seed) != ED25519_KEY_SIZE:
        raise FormatError(f"signer key: Ed25519 seed must be 32 bytes, got {len(seed)}")
    return name, key_id, seed


def _format_key(name: str, key_id: bytes, alg: int, key: bytes) -> str:
    return f"{name}+{key_id.hex()}+{encode_base64(bytes([alg]) + key)}"


def _load_public(raw: bytes) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise FormatError(f"invalid Ed25519 public key: {exc}") from exc


def _load_private(seed: bytes) -> Ed25519PrivateKey:
    if len(seed) != ED25519_KEY_SIZE:
        raise FormatError(f"Ed25519 private key must be 32 bytes, got {len(seed)}")
    return Ed25519PrivateKey.from_private_bytes(seed)


def _public_raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _seed_raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _ed25519_verify(key: Ed25519PublicKey, msg: bytes, sig: bytes) -> bool:
    if len(sig) != ED25519_SIG_SIZE:
        return False
    try:
        key.verify(sig, msg)
    except InvalidSignature:
        return False
    return True


# --- signatures and notes --------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID and the algorithm's signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        validate_key_name(self.name)
        if len(self.key_id) != KEY_ID_SIZE:
            raise FormatError(f"key ID must be {KEY_ID_SIZE} bytes, got {len(self.key_id)}")
        if not self.signature:
            raise FormatError("signature must not be empty")

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        """Parse ``— <name> <base64>`` (without the newline)."""
        if not line.startswith(SIGNATURE_PREFIX):
            raise FormatError(f"signature line must start with '\u2014 ': {line!r}")
        name, sep, b64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not sep:
            raise FormatError(f"signature line has no signature: {line!r}")
        raw = decode_base64(b64, f"signature of {name!r}")
        if len(raw) <= KEY_ID_SIZE:
            raise FormatError(f"signature of {name!r} is {len(raw)} bytes, too short")
        return cls(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])

    def to_line(self) -> str:
        """The signature line, without its newline."""
        return f"{SIGNATURE_PREFIX}{self.name} {encode_base64(self.key_id + self.signature)}"

    @property
    def key(self) -> tuple[str, bytes]:
        """(name, key ID): what the spec says identifies the signing key."""
        return (self.name, self.key_id)


@dataclass(frozen=True)
class Note:
    """A signed note: text (ending in newline) plus at least one signature."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        _check_note_chars(self.text, "note text")
        if not self.text.endswith("\n"):
            raise FormatError("note text must end with a newline")
        if not self.signatures:
            raise FormatError("a signed note needs at least one signature")
        if len(self.signatures) > MAX_SIGNATURES:
            raise FormatError(f"note has {len(self.signatures)} signatures (max {MAX_SIGNATURES})")

    @classmethod
    def from_text(cls, text: str) -> Note:
        """Parse a signed note; the text ends at the *last* blank line, per the spec."""
        if not isinstance(text, str):
            raise FormatError(f"note must be str, got {type(text).__name__}")
        _check_note_chars(text, "note")
        if not text.endswith("\n"):
            raise FormatError("note must end with a newline")
        split = text.rfind("\n\n")
        if split < 0:
            raise FormatError("note has no blank line before its signatures")
        block = text[split + 2 :]
        if not block:
            raise FormatError("note has no signature lines after the blank line")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise FormatError(f"note has {len(lines)} signatures (max {MAX_SIGNATURES})")
        sigs = tuple(NoteSignature.from_line(line) for line in lines)
        return cls(text[: split + 1], sigs)

    @classmethod
    def from_bytes(cls, data: bytes) -> Note:
        """Parse a note read from disk or the network (strict UTF-8)."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError("note is not valid UTF-8") from exc
        return cls.from_text(text)

    def to_text(self) -> str:
        """Serialise: text, blank line, one signature line each."""
        return self.text + "\n" + "".join(s.to_line() + "\n" for s in self.signatures)

    def with_signatures(self, signatures: Iterable[NoteSignature]) -> Note:
        """Add signatures (e.g. a witness cosignature), replacing older ones by the same key."""
        new = tuple(signatures)
        replaced = {s.key for s in new}
        kept = tuple(s for s in self.signatures if s.key not in replaced)
        return Note(self.text, kept + new)


# --- keys ------------------------------------------------------------------------------


class Verifier(Protocol):
    """What :func:`open_note` needs from a key: its identity and a verify function."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, msg: bytes, sig: bytes) -> bool: ...


class Signer(Protocol):
    """What :func:`sign_note` needs from a key."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def sign(self, text: str) -> NoteSignature: ...


@dataclass(frozen=True)
class Ed25519Verifier:
    """A plain Ed25519 (type 0x01) note verifier; logs sign their checkpoints with these."""

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_key_name(self.name)
        if len(self.public_key) != ED25519_KEY_SIZE:
            raise FormatError(f"Ed25519 public key must be 32 bytes, got {len(self.public_key)}")
        object.__setattr__(self, "key_id", key_id_for(self.name, ALG_ED25519, self.public_key))
        object.__setattr__(self, "_key", _load_public(self.public_key))

    @classmethod
    def from_vkey(cls, vkey: str) -> Ed25519Verifier:
        """Parse ``<name>+<hex8>+base64(0x01 || key)``; the key ID must match the key."""
        return cls(*_parse_vkey(vkey, ALG_ED25519))

    @property
    def vkey(self) -> str:
        return _format_key(self.name, self.key_id, ALG_ED25519, self.public_key)

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Whether ``sig`` (without the key ID) is this key's signature of ``msg``."""
        return _ed25519_verify(self._key, msg, sig)


class Ed25519Signer:
    """A plain Ed25519 (type 0x01) note signer. Not a dataclass: it holds a secret."""

    __slots__ = ("_key", "_name", "_verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._name = validate_key_name(name)
        self._key = private_key
        self._verifier = Ed25519Verifier(name, _public_raw(private_key))

    @classmethod
    def generate(cls, name: str) -> Ed25519Signer:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, name: str, raw: bytes) -> Ed25519Signer:
        """From the 32-byte RFC 8032 private key (the seed)."""
        return cls(name, _load_private(raw))

    @classmethod
    def from_skey(cls, skey: str) -> Ed25519Signer:
        """Parse Go's ``PRIVATE+KEY+<name>+<hex8>+base64(0x01 || seed)``; checks the key ID."""
        name, key_id, seed = _parse_skey(skey, ALG_ED25519)
        signer = cls.from_private_bytes(name, seed)
        if signer.key_id != key_id:
            raise FormatError(f"signer key: key ID {key_id.hex()} does not match the key")
        return signer

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._verifier.key_id

    @property
    def verifier(self) -> Ed25519Verifier:
        return self._verifier

    @property
    def skey(self) -> str:
        """The Go-compatible secret key string; keep it secret."""
        return "PRIVATE+KEY+" + _format_key(
            self._name, self.key_id, ALG_ED25519, _seed_raw(self._key)
        )

    def sign_bytes(self, message: bytes) -> bytes:
        """A plain Ed25519 signature over ``message`` (for the log's own ledger statements)."""
        return self._key.sign(message)

    def sign(self, text: str) -> NoteSignature:
        """Sign the note text (UTF-8, including its final newline)."""
        _check_note_chars(text, "note text")
        return NoteSignature(self._name, self.key_id, self._key.sign(text.encode("utf-8")))

    def __repr__(self) -> str:
        return f"Ed25519Signer({self._name!r}, key_id={self.key_id.hex()})"


def _cosigned_message(timestamp: int, body: bytes) -> bytes:
    """``cosignature/v1\\ntime <t>\\n`` followed by the whole checkpoint body."""
    return f"{_COSIGNATURE_HEADER}time {timestamp}\n".encode("ascii") + body


def _check_timestamp(timestamp: int) -> int:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise FormatError(f"cosignature timestamp must be an int, got {timestamp!r}")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise FormatError(f"cosignature timestamp {timestamp} is outside 0..2^63-1")
    return timestamp


def cosignature_timestamp(sig: NoteSignature) -> int:
    """The POSIX timestamp a tlog-cosignature/v1 Ed25519 signature carries (unverified)."""
    if len(sig.signature) != COSIGNATURE_SIZE:
        raise FormatError(
            f"cosignature by {sig.name!r} is {len(sig.signature)} bytes, expected "
            f"{COSIGNATURE_SIZE}"
        )
    return int.from_bytes(sig.signature[:8], "big")


@dataclass(frozen=True)
class CosignatureVerifier:
    """A witness's timestamped Ed25519 (type 0x04) cosignature verifier."""

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_key_name(self.name)
        if len(self.public_key) != ED25519_KEY_SIZE:
            raise FormatError(f"Ed25519 public key must be 32 bytes, got {len(self.public_key)}")
        key_id = key_id_for(self.name, ALG_COSIGNATURE_V1, self.public_key)
        object.__setattr__(self, "key_id", key_id)
        object.__setattr__(self, "_key", _load_public(self.public_key))

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        """Parse ``<name>+<hex8>+base64(0x04 || key)``; the key ID must match the key."""
        return cls(*_parse_vkey(vkey, ALG_COSIGNATURE_V1))

    @property
    def vkey(self) -> str:
        return _format_key(self.name, self.key_id, ALG_COSIGNATURE_V1, self.public_key)

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Whether ``sig`` = ``u64 timestamp || ed25519 sig`` cosigns the body ``msg``."""
        if len(sig) != COSIGNATURE_SIZE:
            return False
        timestamp = int.from_bytes(sig[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        return _ed25519_verify(self._key, _cosigned_message(timestamp, msg), sig[8:])


class CosignatureSigner:
    """The witness side of tlog-cosignature/v1 with Ed25519: signs a body at a timestamp."""

    __slots__ = ("_key", "_name", "_verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._name = validate_key_name(name)
        self._key = private_key
        self._verifier = CosignatureVerifier(name, _public_raw(private_key))

    @classmethod
    def generate(cls, name: str) -> CosignatureSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, name: str, raw: bytes) -> CosignatureSigner:
        return cls(name, _load_private(raw))

    @classmethod
    def from_skey(cls, skey: str) -> CosignatureSigner:
        """Parse ``PRIVATE+KEY+<name>+<hex8>+base64(0x04 || seed)``; checks the key ID."""
        name, key_id, seed = _parse_skey(skey, ALG_COSIGNATURE_V1)
        signer = cls.from_private_bytes(name, seed)
        if signer.key_id != key_id:
            raise FormatError(f"signer key: key ID {key_id.hex()} does not match the key")
        return signer

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._verifier.key_id

    @property
    def verifier(self) -> CosignatureVerifier:
        return self._verifier

    @property
    def skey(self) -> str:
        return "PRIVATE+KEY+" + _format_key(
            self._name, self.key_id, ALG_COSIGNATURE_V1, _seed_raw(self._key)
        )

    def sign(self, text: str, *, timestamp: int | None = None) -> NoteSignature:
        """Cosign a checkpoint body at ``timestamp`` (default: now, POSIX seconds)."""
        _check_note_chars(text, "note text")
        when = _check_timestamp(int(time.time()) if timestamp is None else timestamp)
        sig = self._key.sign(_cosigned_message(when, text.encode("utf-8")))
        return NoteSignature(self._name, self.key_id, when.to_bytes(8, "big") + sig)

    def __repr__(self) -> str:
        return f"CosignatureSigner({self._name!r}, key_id={self.key_id.hex()})"


def verifier_from_vkey(vkey: str) -> Ed25519Verifier | CosignatureVerifier:
    """Build the verifier a vkey describes, by its signature type byte (0x01 or 0x04)."""
    _, _, alg, _ = _split_key_string(vkey, "verifier key")
    if alg == ALG_ED25519:
        return Ed25519Verifier.from_vkey(vkey)
    if alg == ALG_COSIGNATURE_V1:
        return CosignatureVerifier.from_vkey(vkey)
    raise FormatError(f"verifier key: unsupported signature type 0x{alg:02x}")


# --- open / sign -----------------------------------------------------------------------


def _describe(key: tuple[str, bytes]) -> str:
    return f"{key[0]}+{key[1].hex()}"


def _index_verifiers(verifiers: Iterable[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    """Map (name, key ID) to verifier; two *different* keys with one identity is an error."""
    index: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        key = (verifier.name, bytes(verifier.key_id))
        other = index.setdefault(key, verifier)
        if other is not verifier and other != verifier:
            raise VerificationError(f"ambiguous verifiers: two different keys are {_describe(key)}")
    return index


def open_note(text: str, verifiers: Iterable[Verifier]) -> tuple[Note, list[NoteSignature]]:
    """Parse ``text`` and return it with the signatures that known keys verified.

    Per the spec: signatures from unknown keys (name *and* key ID must match) are
    ignored; a known key's signature that fails rejects the whole note; and at least
    one known signature must verify. Each known key is reported once, in note order.
    """
    note = Note.from_text(text)
    known = _index_verifiers(verifiers)
    msg = note.text.encode("utf-8")
    verified: list[NoteSignature] = []
    seen: set[tuple[str, bytes]] = set()
    for sig in note.signatures:
        verifier = known.get(sig.key)
        if verifier is None:
            continue
        if not verifier.verify(msg, sig.signature):
            raise VerificationError(f"signature by known key {_describe(sig.key)} does not verify")
        if sig.key not in seen:
            seen.add(sig.key)
            verified.append(sig)
    if not verified:
        found = ", ".join(_describe(s.key) for s in note.signatures)
        wanted = ", ".join(_describe(k) for k in known) or "none"
        raise VerificationError(f"no signature from a known key: found {found}; known {wanted}")
    return note, verified


def sign_note(text: str, signers: Iterable[Signer]) -> str:
    """Sign ``text`` (which must end in a newline) with every signer; returns the note."""
    _check_note_chars(text, "note text")
    if not text.endswith("\n"):
        raise FormatError("note text must end with a newline")
    return Note(text, tuple(signer.sign(text) for signer in signers)).to_text()
