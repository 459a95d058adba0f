"""Replaying a whole log as an outside auditor does, holding only the log's public key.

The log is self-describing: members' public keys are registered in it (``member.registered``,
``member.key.added``, ``member.key.revoked``), so every actor signature is checked against the
keys the log itself recorded *before* that entry, and every type against the roles that may sign
it (``ledger.entry.ENTRY_TYPES``). ``LogAuditor`` is fed entries in order and raises
``AuditFailure`` naming the first bad sequence number and what is wrong with it.

The log key signs only as the reserved member ``exchange``, whose one role is ``exchange``: it
can sign the exchange's own records (deliveries, anchors, overlap flags) and nothing a member
signs, so it cannot register members, add keys, or speak for anyone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ledger.entry import (
    ANY_MEMBER,
    EXCHANGE,
    GENESIS_PREV,
    Entry,
    b64decode,
    b64encode,
    is_member_id,
    key_id_for,
    signer_roles,
)
from ledger.errors import FormatError, VerificationError
from ledger.merkle import RootBuilder, leaf_hash

EXCHANGE_MEMBER = EXCHANGE
OPERATOR = "operator"
ROLES = ANY_MEMBER


class AuditFailure(VerificationError):
    """The log is not what it claims to be; ``seq`` is the first bad sequence number."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"entry {seq}: {reason}")
        self.seq = seq
        self.reason = reason


@dataclass
class _Key:
    public_key: bytes
    revoked: bool = False


@dataclass
class _Member:
    roles: frozenset[str]
    keys: dict[str, _Key] = field(default_factory=dict)


@dataclass(frozen=True)
class MemberRegistration:
    """The body of ``member.registered`` / ``member.key.added``, validated."""

    member: str
    public_key: bytes
    key_id: str
    roles: frozenset[str]

    @classmethod
    def from_body(cls, body: dict[str, object], *, with_roles: bool) -> MemberRegistration:
        member, key_id = body.get("member"), body.get("key_id")
        if not is_member_id(member) or member == EXCHANGE:
            raise FormatError(f"member {member!r} is not a valid member id (or is reserved)")
        if not isinstance(key_id, str):
            raise FormatError("body needs a 'key_id' string")
        public_key = b64decode(body.get("public_key"), what="public_key", length=32)
        if key_id_for(public_key) != key_id:
            raise FormatError(f"key_id {key_id} is not the id of the public key given")
        roles: frozenset[str] = frozenset()
        if with_roles:
            raw = body.get("roles")
            if (
                not isinstance(raw, list)
                or not raw
                or not all(isinstance(r, str) and r in ROLES for r in raw)
            ):
                raise FormatError(f"roles must be a non-empty list drawn from {sorted(ROLES)}")
            roles = frozenset(raw)
        return cls(str(member), public_key, key_id, roles)


def registration_body(
    member: str, public_key: bytes, *, name: str | None = None, roles: Iterable[str] = ()
) -> dict[str, object]:
    """The body of ``member.registered`` (with ``name`` and ``roles``) or ``member.key.added``
    (without): what :meth:`MemberRegistration.from_body` reads back."""
    body: dict[str, object] = {"member": member}
    if name is not None:
        body["name"] = name
        body["roles"] = list(roles)
    body["public_key"] = b64encode(public_key)
    body["key_id"] = key_id_for(public_key)
    return body


class LogAuditor:
    """Checks a log entry by entry; cheap enough to run over millions of entries."""

    def __init__(self, *, log_public_key: bytes | None = None, origin: str | None = None) -> None:
        """``origin``: when given, every statement must be addressed to this log."""
        self._origin = origin
        self._members: dict[str, _Member] = {}
        self._key_owner: dict[str, str] = {}
        if log_public_key is not None:
            self._admit(EXCHANGE, frozenset({EXCHANGE}), key_id_for(log_public_key), log_public_key)
        self._nonces: set[tuple[str, str]] = set()
        self._roots = RootBuilder()
        self._prev = GENESIS_PREV
        self._last_time = ""
        self._expected_roots: dict[int, bytes] = {}

    @property
    def size(self) -> int:
        return self._roots.size

    def root(self) -> bytes:
        return self._roots.root()

    def expect_root(self, size: int, root: bytes) -> None:
        """Check, on the way, that the tree at ``size`` had ``root`` (an earlier checkpoint)."""
        if size == 0 or size < self.size:
            raise ValueError("expect_root needs a size beyond what has been fed")
        self._expected_roots[size] = root

    def feed(self, data: bytes, *, stored_leaf_hash: bytes | None = None) -> Entry:
        """Check the next entry; ``stored_leaf_hash`` is the hash the log's tree holds for it."""
        seq = self.size
        try:
            entry = Entry.from_bytes(data, strict=False)
        except FormatError as exc:
            raise AuditFailure(seq, f"entry does not parse: {exc}") from None
        if entry.seq != seq:
            raise AuditFailure(seq, f"entry at position {seq} says it is entry {entry.seq}")
        if entry.prev != self._prev:
            raise AuditFailure(
                seq, f"prev is {entry.prev}, but entry {seq - 1} hashes to {self._prev}"
            )
        if entry.time < self._last_time:
            raise AuditFailure(seq, f"time {entry.time} is before the previous entry's")
        self._check_actor(entry)
        # Checked after the signature, so an edited statement is reported as what it is.
        this_hash = leaf_hash(data)
        if stored_leaf_hash is not None and stored_leaf_hash != this_hash:
            raise AuditFailure(seq, "entry bytes do not hash to the leaf hash stored in the tree")
        self._roots.append(this_hash)
        self._prev, self._last_time = this_hash.hex(), entry.time
        expected = self._expected_roots.pop(self.size, None)
        if expected is not None and expected != self.root():
            raise AuditFailure(
                seq, f"the tree at size {self.size} differs from the checkpoint seen before"
            )
        return entry

    def feed_all(self, entries: Iterable[bytes]) -> None:
        for data in entries:
            self.feed(data)

    def check_root(self, *, size: int, root: bytes) -> None:
        """Compare with a signed checkpoint once every entry up to ``size`` has been fed."""
        if self.size < size:
            raise AuditFailure(
                self.size, f"entry is missing: the checkpoint commits to {size} entries"
            )
        if self.size > size:
            raise AuditFailure(size, f"the log has entries beyond the checkpoint's {size}")
        if self.root() != root:
            raise AuditFailure(
                max(size - 1, 0),
                f"the root of {size} entries is {self.root().hex()}, "
                f"but the signed checkpoint says {root.hex()}",
            )

    # -- who may say what --------------------------------------------------------------------

    def _check_actor(self, entry: Entry) -> None:
        statement, seq = entry.statement, entry.seq
        if self._origin is not None and statement.log != self._origin:
            raise AuditFailure(seq, f"the statement is addressed to another log, {statement.log!r}")
        if (statement.member, statement.nonce) in self._nonces:
            raise AuditFailure(seq, f"nonce {statement.nonce} of {statement.member} is replayed")
        self._nonces.add((statement.member, statement.nonce))
        try:
            if seq == 0:
                self._genesis(entry)
                return
            signer = self._verify_signer(entry)
            allowed = signer_roles(statement.type)
            if not signer.roles & allowed:
                raise AuditFailure(
                    seq,
                    f"{statement.member} may not sign {statement.type} (needs a role of "
                    f"{', '.join(sorted(allowed))})",
                )
            self._apply_membership(entry, signer)
        except FormatError as exc:
            raise AuditFailure(seq, f"malformed {statement.type} body: {exc}") from None

    def _verify_signer(self, entry: Entry) -> _Member:
        statement, seq = entry.statement, entry.seq
        signer = self._members.get(statement.member)
        if signer is None:
            raise AuditFailure(seq, f"actor {statement.member} is not a registered member")
        key = signer.keys.get(statement.key_id)
        if key is None:
            raise AuditFailure(seq, f"key {statement.key_id} is not a key of {statement.member}")
        if key.revoked:
            raise AuditFailure(seq, f"key {statement.key_id} of {statement.member} was revoked")
        try:
            entry.signed.verify(key.public_key)
        except VerificationError:
            raise AuditFailure(seq, "the actor signature does not verify") from None
        return signer

    def _genesis(self, entry: Entry) -> None:
        statement = entry.statement
        if statement.type != "member.registered":
            raise AuditFailure(0, "the first entry must register the first operator")
        registration = MemberRegistration.from_body(statement.body, with_roles=True)
        if registration.member != statement.member or registration.key_id != statement.key_id:
            raise AuditFailure(0, "the first operator must register itself with its own key")
        if OPERATOR not in registration.roles:
            raise AuditFailure(0, "the first member must be an operator")
        try:
            entry.signed.verify(registration.public_key)
        except VerificationError:
            raise AuditFailure(0, "the actor signature does not verify") from None
        self._register(entry, registration)

    def _register(self, entry: Entry, registration: MemberRegistration) -> None:
        if registration.member in self._members:
            raise AuditFailure(entry.seq, f"member {registration.member} is already registered")
        self._check_new_key(entry, registration.key_id)
        self._admit(
            registration.member, registration.roles, registration.key_id, registration.public_key
        )

    def _admit(self, member: str, roles: frozenset[str], key_id: str, public_key: bytes) -> None:
        self._members[member] = _Member(roles, {key_id: _Key(public_key)})
        self._key_owner[key_id] = member

    def _check_new_key(self, entry: Entry, key_id: str) -> None:
        if key_id in self._key_owner:
            raise AuditFailure(
                entry.seq, f"key {key_id} is already registered to {self._key_owner[key_id]}"
            )

    def _apply_membership(self, entry: Entry, signer: _Member) -> None:
        statement, seq, body = entry.statement, entry.seq, entry.statement.body
        if statement.type == "member.registered":
            self._register(entry, MemberRegistration.from_body(body, with_roles=True))
        elif statement.type == "member.key.added":
            added = MemberRegistration.from_body(body, with_roles=False)
            if added.member != statement.member:
                raise AuditFailure(seq, "a member may add keys only to itself")
            self._check_new_key(entry, added.key_id)
            self._members[added.member].keys[added.key_id] = _Key(added.public_key)
            self._key_owner[added.key_id] = added.member
        elif statement.type == "member.key.revoked":
            target_id = body.get("member")
            target = self._members.get(target_id) if isinstance(target_id, str) else None
            if target is None or target_id == EXCHANGE:
                raise AuditFailure(seq, f"revokes a key of unknown member {target_id!r}")
            if target_id != statement.member and OPERATOR not in signer.roles:
                raise AuditFailure(seq, f"{statement.member} may not revoke keys of {target_id}")
            key = target.keys.get(str(body.get("key_id")))
            if key is None or key.revoked:
                raise AuditFailure(seq, f"revokes unknown or revoked key {body.get('key_id')!r}")
            key.revoked = True
