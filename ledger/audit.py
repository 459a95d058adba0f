"""Replaying a whole log as an outside auditor does, holding only the log's public key.

The log is self-describing: members' public keys are registered in it (``member.registered``,
``member.key.added``, ``member.key.revoked``), so every actor signature can be checked against
the keys the log itself recorded *before* that entry. ``LogAuditor`` is fed entries in order and
raises ``AuditFailure`` naming the first bad sequence number and what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ledger.entry import GENESIS_PREV, Entry, b64decode, key_id_for, parse_time
from ledger.errors import FormatError, VerificationError
from ledger.merkle import RootBuilder, leaf_hash

EXCHANGE_MEMBER = "exchange"
"""The reserved member id under which the log itself makes statements (e.g. anchors)."""

OPERATOR = "operator"
ROLES = frozenset({"provider", "buyer", "auditor", "operator"})


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
    """The body of ``member.registered`` and ``member.key.added`` as the auditor reads it."""

    member: str
    public_key: bytes
    key_id: str
    roles: frozenset[str]

    @classmethod
    def from_body(cls, body: dict[str, object], *, with_roles: bool) -> MemberRegistration:
        member, key_id = body.get("member"), body.get("key_id")
        if not isinstance(member, str) or not isinstance(key_id, str):
            raise FormatError("body needs 'member' and 'key_id' strings")
        public_key = b64decode(body.get("public_key"), what="public_key", length=32)
        if key_id_for(public_key) != key_id:
            raise FormatError(f"key_id {key_id} is not the id of the public key given")
        roles: frozenset[str] = frozenset()
        if with_roles:
            raw = body.get("roles")
            if not isinstance(raw, list) or not raw or not set(raw) <= ROLES:
                raise FormatError(f"roles must be a non-empty list drawn from {sorted(ROLES)}")
            roles = frozenset(str(role) for role in raw)
        return cls(member, public_key, key_id, roles)


class LogAuditor:
    """Checks a log entry by entry; cheap enough to run over millions of entries."""

    def __init__(self, *, log_public_key: bytes | None = None) -> None:
        self._members: dict[str, _Member] = {}
        if log_public_key is not None:
            exchange = _Member(frozenset({OPERATOR}))
            exchange.keys[key_id_for(log_public_key)] = _Key(log_public_key)
            self._members[EXCHANGE_MEMBER] = exchange
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
            raise AuditFailure(seq, f"prev is {entry.prev}, but entry {seq - 1} hashes to {self._prev}")
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
            raise AuditFailure(seq, f"the tree at size {self.size} differs from the checkpoint seen before")
        return entry

    def feed_all(self, entries: Iterable[bytes]) -> None:
        for data in entries:
            self.feed(data)

    def check_root(self, *, size: int, root: bytes) -> None:
        """Compare with a signed checkpoint once every entry up to ``size`` has been fed."""
        if self.size < size:
            raise AuditFailure(self.size, f"entry is missing: the checkpoint commits to {size} entries")
        if self.size > size:
            raise AuditFailure(size, f"the log has entries beyond the checkpoint's {size}")
        if self.root() != root:
            raise AuditFailure(
                max(size - 1, 0),
                f"the root of {size} entries is {self.root().hex()}, "
                f"but the signed checkpoint says {root.hex()}",
            )

    def _check_actor(self, entry: Entry) -> None:
        statement, seq = entry.statement, entry.seq
        parse_time(statement.time)
        if (statement.member, statement.nonce) in self._nonces:
            raise AuditFailure(seq, f"nonce {statement.nonce} of {statement.member} is replayed")
        self._nonces.add((statement.member, statement.nonce))
        try:
            if seq == 0:
                self._genesis(entry)
                return
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
            self._apply_membership(entry, signer)
        except FormatError as exc:
            raise AuditFailure(seq, f"malformed {statement.type} body: {exc}") from None

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
        self._members[registration.member] = _Member(
            registration.roles, {registration.key_id: _Key(registration.public_key)}
        )

    def _apply_membership(self, entry: Entry, signer: _Member) -> None:
        statement, seq = entry.statement, entry.seq
        body = statement.body
        if statement.type == "member.registered":
            if OPERATOR not in signer.roles:
                raise AuditFailure(seq, f"{statement.member} registered a member but is no operator")
            registration = MemberRegistration.from_body(body, with_roles=True)
            if registration.member in self._members:
                raise AuditFailure(seq, f"member {registration.member} is already registered")
            self._members[registration.member] = _Member(
                registration.roles, {registration.key_id: _Key(registration.public_key)}
            )
        elif statement.type in ("member.key.added", "member.key.revoked"):
            target = self._target(entry, signer)
            if statement.type == "member.key.added":
                added = MemberRegistration.from_body(body, with_roles=False)
                if added.key_id in target.keys:
                    raise AuditFailure(seq, f"key {added.key_id} is already registered")
                target.keys[added.key_id] = _Key(added.public_key)
            else:
                key = target.keys.get(str(body.get("key_id")))
                if key is None:
                    raise AuditFailure(seq, f"revokes unknown key {body.get('key_id')!r}")
                key.revoked = True

    def _target(self, entry: Entry, signer: _Member) -> _Member:
        statement = entry.statement
        member = statement.body.get("member")
        target = self._members.get(member) if isinstance(member, str) else None
        if target is None:
            raise AuditFailure(entry.seq, f"names unknown member {member!r}")
        if member != statement.member and OPERATOR not in signer.roles:
            raise AuditFailure(entry.seq, f"{statement.member} may not change keys of {member}")
        return target
