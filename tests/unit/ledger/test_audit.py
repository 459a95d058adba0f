"""The auditor's rules, on logs built in memory: who may sign what, keys, replays, order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.audit import AuditFailure, LogAuditor, MemberRegistration, registration_body
from ledger.entry import Entry, Statement, b64encode, key_id_for, sign_statement
from ledger.merkle import tree_root

ORIGIN = "test.example/log"


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def member_body(member: str, key: Ed25519PrivateKey, roles: list[str] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "member": member,
        "public_key": b64encode(raw(key)),
        "key_id": key_id_for(raw(key)),
    }
    if roles is not None:
        body |= {"name": member, "roles": roles}
    return body


@dataclass
class Log:
    """A log built entry by entry, the way the server builds it."""

    entries: list[bytes] = field(default_factory=list)
    counter: int = 0

    def add(
        self,
        entry_type: str,
        body: dict[str, Any],
        member: str,
        key: Ed25519PrivateKey,
        *,
        nonce: str | None = None,
        log: str = ORIGIN,
    ) -> None:
        self.counter += 1
        statement = Statement(
            type=entry_type,
            body=body,
            member=member,
            key_id=key_id_for(raw(key)),
            nonce=nonce or f"nonce-{self.counter:012d}",
            time="2026-11-28T12:00:00.000Z",
            log=log,
        )
        previous = Entry.from_bytes(self.entries[-1]).leaf_hash() if self.entries else None
        entry = Entry.build(
            seq=len(self.entries),
            time="2026-11-28T12:00:01.000Z",
            prev=previous,
            signed=sign_statement(statement, key),
        )
        self.entries.append(entry.canonical())

    def audit(self, log_key: Ed25519PrivateKey | None = None) -> LogAuditor:
        auditor = LogAuditor(log_public_key=raw(log_key) if log_key else None, origin=ORIGIN)
        auditor.feed_all(self.entries)
        auditor.check_root(
            size=len(self.entries),
            root=tree_root([Entry.from_bytes(e).leaf_hash() for e in self.entries]),
        )
        return auditor


OPERATOR_KEY = Ed25519PrivateKey.generate()
ALICE_KEY = Ed25519PrivateKey.generate()


def base_log() -> Log:
    log = Log()
    log.add("member.registered", member_body("op", OPERATOR_KEY, ["operator"]), "op", OPERATOR_KEY)
    log.add("member.registered", member_body("alice", ALICE_KEY, ["buyer"]), "op", OPERATOR_KEY)
    return log


def failure(log: Log, log_key: Ed25519PrivateKey | None = None) -> AuditFailure:
    with pytest.raises(AuditFailure) as caught:
        log.audit(log_key)
    return caught.value


def test_a_valid_log_passes() -> None:
    log = base_log()
    log.add("attest.evaluation", {"score": 1}, "alice", ALICE_KEY)
    assert log.audit().size == 3


def test_the_first_entry_must_be_an_operator_registering_itself() -> None:
    log = Log()
    log.add("member.registered", member_body("alice", ALICE_KEY, ["buyer"]), "alice", ALICE_KEY)
    assert "must be an operator" in failure(log).reason
    log = Log()
    log.add("attest.x", {}, "op", OPERATOR_KEY)
    assert failure(log).seq == 0


def test_only_operators_register_members() -> None:
    log = base_log()
    log.add(
        "member.registered",
        member_body("bob", Ed25519PrivateKey.generate(), ["operator"]),
        "alice",
        ALICE_KEY,
    )
    caught = failure(log)
    assert caught.seq == 2 and "may not sign member.registered" in caught.reason


def test_roles_gate_every_type() -> None:
    log = base_log()
    log.add("account.deposited", {"member": "alice", "amount": 10**6}, "alice", ALICE_KEY)
    assert "needs a role of operator" in failure(log).reason


def test_the_log_key_cannot_speak_for_members() -> None:
    log_key = Ed25519PrivateKey.generate()
    log = base_log()
    log.add(
        "member.registered",
        member_body("sock", Ed25519PrivateKey.generate(), ["buyer"]),
        "exchange",
        log_key,
    )
    assert "exchange may not sign member.registered" in failure(log, log_key).reason
    log = base_log()
    log.add("checkpoint.anchored", {"size": 2}, "exchange", log_key)
    assert log.audit(log_key).size == 3
    assert "not a registered member" in failure(log).reason  # without the log key, unknown actor


def test_keys_are_added_only_by_their_owner_and_revoked_keys_are_dead() -> None:
    new_key = Ed25519PrivateKey.generate()
    log = base_log()
    log.add("member.key.added", member_body("alice", new_key, None), "op", OPERATOR_KEY)
    assert "only to itself" in failure(log).reason

    log = base_log()
    log.add("member.key.added", member_body("alice", new_key, None), "alice", ALICE_KEY)
    log.add(
        "member.key.revoked",
        {"member": "alice", "key_id": key_id_for(raw(ALICE_KEY)), "reason": "x"},
        "op",
        OPERATOR_KEY,
    )
    log.add("attest.x", {}, "alice", new_key)
    assert log.audit().size == 5
    log.add("attest.x", {}, "alice", ALICE_KEY)
    caught = failure(log)
    assert caught.seq == 5 and "was revoked" in caught.reason


def test_a_key_belongs_to_one_member() -> None:
    log = base_log()
    log.add("member.registered", member_body("bob", ALICE_KEY, ["buyer"]), "op", OPERATOR_KEY)
    assert "already registered to alice" in failure(log).reason


def test_replayed_nonces_are_caught() -> None:
    log = base_log()
    log.add("attest.x", {"a": 1}, "alice", ALICE_KEY, nonce="the-same-nonce-123")
    log.add("attest.x", {"a": 2}, "alice", ALICE_KEY, nonce="the-same-nonce-123")
    caught = failure(log)
    assert caught.seq == 3 and "replayed" in caught.reason


@pytest.mark.parametrize("roles", [[["buyer"]], [], ["king"], "buyer"])
def test_malformed_roles_are_an_audit_failure_not_a_crash(roles: Any) -> None:
    log = base_log()
    body = member_body("bob", Ed25519PrivateKey.generate(), ["buyer"]) | {"roles": roles}
    log.add("member.registered", body, "op", OPERATOR_KEY)
    assert "malformed member.registered body" in failure(log).reason


def test_an_earlier_checkpoint_must_be_a_prefix() -> None:
    log = base_log()
    log.add("attest.x", {}, "alice", ALICE_KEY)
    auditor = LogAuditor()
    auditor.expect_root(2, bytes(32))
    with pytest.raises(AuditFailure) as caught:
        auditor.feed_all(log.entries)
    assert "differs from the checkpoint seen before" in caught.value.reason


def test_statements_for_another_log_are_caught() -> None:
    log = base_log()
    log.add("attest.x", {}, "alice", ALICE_KEY, log="other.example/log")
    caught = failure(log)
    assert caught.seq == 2 and "another log" in caught.reason


def test_registration_bodies_read_back_as_written() -> None:
    public = raw(ALICE_KEY)
    body = registration_body("alice", public, name="Alice", roles=["provider", "buyer"])
    assert body == {
        "member": "alice",
        "name": "Alice",
        "roles": ["provider", "buyer"],
        "public_key": b64encode(public),
        "key_id": key_id_for(public),
    }
    read = MemberRegistration.from_body(body, with_roles=True)
    assert (read.member, read.public_key, read.roles) == ("alice", public, {"provider", "buyer"})
    added = registration_body("alice", public)  # member.key.added: no name, no roles
    assert set(added) == {"member", "public_key", "key_id"}
    assert MemberRegistration.from_body(added, with_roles=False).key_id == key_id_for(public)
