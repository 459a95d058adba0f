"""Witness policies (c2sp.org/tlog-policy): which logs and witnesses, and the quorum rule.

A policy file is lines of ``log <vkey> [<url>]``, ``witness <name> <vkey> [<url>]``,
``group <name> <k>|all|any <member>...`` and exactly one ``quorum <name>|none``, with ``#``
comment lines and blank lines allowed. A checkpoint satisfies the policy when the quorum's
witness or group has *witnessed* it: a witness by a valid cosignature, a group when at least
``k`` of its members have. :meth:`WitnessPolicy.k_of_n` builds the common case (one group of
all the witnesses with threshold ``k``) without a file.

Pure: parsing and evaluation only; nothing here fetches or stores anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ledger.checkpoint import SignedCheckpoint, open_checkpoint
from ledger.errors import FormatError, VerificationError
from ledger.note import CosignatureVerifier, Ed25519Verifier, parse_decimal

__all__ = ["MAX_ITEMS", "NONE", "PolicyGroup", "PolicyLog", "PolicyWitness", "WitnessPolicy"]

NONE = "none"
"""The predefined quorum name that requires no cosignature."""

MAX_ITEMS = 256
"""At most this many logs, witnesses and groups each (the spec asks for at least 32)."""

_WHITESPACE = re.compile(r"[ \t]+")
"""Items are separated by spaces and tabs only: other bytes, non-ASCII ones too, are opaque."""


@dataclass(frozen=True)
class PolicyLog:
    verifier: Ed25519Verifier
    url: str | None = None


@dataclass(frozen=True)
class PolicyWitness:
    name: str
    verifier: CosignatureVerifier
    url: str | None = None
    """The witness's submission prefix (``<url>/add-checkpoint``), for logs that contact it."""


@dataclass(frozen=True)
class PolicyGroup:
    name: str
    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class WitnessPolicy:
    """Known logs, known witnesses, groups, and the name whose witnessing is the quorum."""

    logs: tuple[PolicyLog, ...]
    witnesses: tuple[PolicyWitness, ...]
    groups: tuple[PolicyGroup, ...]
    quorum: str

    @classmethod
    def none(cls) -> WitnessPolicy:
        """No witnesses and no cosignature required."""
        return cls((), (), (), NONE)

    @classmethod
    def k_of_n(cls, witnesses: Sequence[PolicyWitness], k: int) -> WitnessPolicy:
        """At least ``k`` of ``witnesses`` (``k = 0``: none required)."""
        if not 0 <= k <= len(witnesses):
            raise FormatError(f"a quorum of {k} is outside 0..{len(witnesses)} witnesses")
        if k == 0:
            return cls((), tuple(witnesses), (), NONE)
        group = PolicyGroup("quorum", k, tuple(w.name for w in witnesses))
        policy = cls((), tuple(witnesses), (group,), group.name)
        return cls.from_text(policy.to_text())  # one set of checks for both ways in

    @classmethod
    def from_text(cls, text: str) -> WitnessPolicy:
        """Parse a policy file; any line the spec does not allow raises FormatError."""
        return _Parser().parse(text)

    def to_text(self) -> str:
        lines = [_join("log", log.verifier.vkey, log.url) for log in self.logs]
        lines += [_join("witness", w.name, w.verifier.vkey, w.url) for w in self.witnesses]
        lines += [_join("group", g.name, _threshold_text(g), *g.members) for g in self.groups]
        lines.append(f"quorum {self.quorum}")
        return "".join(line + "\n" for line in lines)

    @property
    def requires_cosignatures(self) -> bool:
        return self.quorum != NONE

    def witnessed_by(self, cosigners: Iterable[CosignatureVerifier | str]) -> bool:
        """Whether the quorum holds when exactly ``cosigners`` (keys or names) cosigned."""
        names = {c if isinstance(c, str) else self._name_of(c) for c in cosigners}
        return self._witnessed(self.quorum, {n for n in names if n is not None})

    def verify(self, note_text: str, log_verifier: Ed25519Verifier) -> SignedCheckpoint:
        """Open a checkpoint and require the quorum; names what is missing if it fails."""
        self.check_log(log_verifier)
        signed = open_checkpoint(
            note_text, log_verifier, cosigners=[w.verifier for w in self.witnesses]
        )
        cosigners = [n for s in signed.cosignatures if (n := self._name_of(s.key)) is not None]
        if not self.witnessed_by(cosigners):
            have = ", ".join(cosigners) or "none"
            raise VerificationError(
                f"the checkpoint of size {signed.checkpoint.size} does not satisfy the witness "
                f"policy, which needs {self.describe(self.quorum)}; valid cosignatures from: "
                f"{have}"
            )
        return signed

    def check_log(self, log_verifier: Ed25519Verifier) -> None:
        """A policy that lists logs must list this one (by key)."""
        keys = {log.verifier.public_key for log in self.logs}
        if keys and log_verifier.public_key not in keys:
            raise VerificationError(f"the witness policy does not list the log {log_verifier.vkey}")

    def describe(self, name: str) -> str:
        """``name`` as a rule a person can read, e.g. ``2 of (w1, w2, w3)``."""
        group = self._group(name)
        if group is None:
            return "no cosignature" if name == NONE else name
        inner = ", ".join(self.describe(m) for m in group.members)
        return f"{group.threshold} of ({inner})"

    def witness(self, verifier: CosignatureVerifier) -> PolicyWitness | None:
        return next((w for w in self.witnesses if w.verifier == verifier), None)

    def _name_of(self, key: CosignatureVerifier | tuple[str, bytes]) -> str | None:
        """The policy's name for a witness key (name and key id), None if it is not listed."""
        ident = key if isinstance(key, tuple) else (key.name, bytes(key.key_id))
        for w in self.witnesses:
            if (w.verifier.name, bytes(w.verifier.key_id)) == ident:
                return w.name
        return None

    def _group(self, name: str) -> PolicyGroup | None:
        return next((g for g in self.groups if g.name == name), None)

    def _witnessed(self, name: str, cosigned: set[str]) -> bool:
        if name == NONE:
            return True
        group = self._group(name)
        if group is None:
            return name in cosigned
        return sum(self._witnessed(m, cosigned) for m in group.members) >= group.threshold


def _join(*parts: str | None) -> str:
    return " ".join(p for p in parts if p is not None)


def _threshold_text(group: PolicyGroup) -> str:
    return "all" if group.threshold == len(group.members) else str(group.threshold)


class _Parser:
    """One pass over the lines; a name can refer only to names defined on earlier lines."""

    def __init__(self) -> None:
        self.logs: list[PolicyLog] = []
        self.witnesses: list[PolicyWitness] = []
        self.groups: list[PolicyGroup] = []
        self.names: set[str] = set()
        self.keys: dict[str, set[bytes]] = {"log": set(), "witness": set()}
        self.quorum: str | None = None

    def parse(self, text: str) -> WitnessPolicy:
        for number, raw in enumerate(text.split("\n"), start=1):
            _check_chars(raw, number)
            fields = [f for f in _WHITESPACE.split(raw) if f]
            if not fields or fields[0].startswith("#"):
                continue
            try:
                self._line(fields)
            except FormatError as exc:
                raise FormatError(f"policy line {number}: {exc}") from None
        if self.quorum is None:
            raise FormatError("the policy has no quorum line")
        return WitnessPolicy(
            tuple(self.logs), tuple(self.witnesses), tuple(self.groups), self.quorum
        )

    def _line(self, fields: list[str]) -> None:
        keyword, args = fields[0], fields[1:]
        if keyword == "log":
            self._log(args)
        elif keyword == "witness":
            self._witness(args)
        elif keyword == "group":
            self._group(args)
        elif keyword == "quorum":
            self._quorum(args)
        else:
            raise FormatError(f"unknown keyword {keyword!r}")

    def _log(self, args: list[str]) -> None:
        if len(args) not in (1, 2):
            raise FormatError("expected 'log <vkey> [<url>]'")
        verifier = Ed25519Verifier.from_vkey(args[0])
        self._new_key(verifier.public_key, "log")
        self._limit(self.logs, "logs")
        self.logs.append(PolicyLog(verifier, args[1] if len(args) == 2 else None))

    def _witness(self, args: list[str]) -> None:
        if len(args) not in (2, 3):
            raise FormatError("expected 'witness <name> <vkey> [<url>]'")
        verifier = CosignatureVerifier.from_vkey(args[1])
        self._new_name(args[0])
        self._new_key(verifier.public_key, "witness")
        self._limit(self.witnesses, "witnesses")
        self.witnesses.append(PolicyWitness(args[0], verifier, args[2] if len(args) == 3 else None))

    def _group(self, args: list[str]) -> None:
        if len(args) < 3:
            raise FormatError("expected 'group <name> <k>|all|any <member>...'")
        name, threshold, members = args[0], args[1], args[2:]
        for member in members:
            if member == NONE or member not in self.names:
                raise FormatError(
                    f"group member {member!r} is not a witness or group defined above"
                )
        if len(set(members)) != len(members):
            raise FormatError(f"group {name!r} lists a member twice")
        k = {"all": len(members), "any": 1}.get(threshold)
        if k is None:
            k = parse_decimal(threshold, f"threshold of group {name!r}")
            if not 1 <= k <= len(members):
                raise FormatError(f"threshold {k} of group {name!r} is outside 1..{len(members)}")
        self._new_name(name)
        self._limit(self.groups, "groups")
        self.groups.append(PolicyGroup(name, k, tuple(members)))

    def _quorum(self, args: list[str]) -> None:
        if len(args) != 1:
            raise FormatError("expected 'quorum <name>'")
        if self.quorum is not None:
            raise FormatError("a second quorum line")
        if args[0] != NONE and args[0] not in self.names:
            raise FormatError(f"quorum {args[0]!r} is not a witness or group defined above")
        self.quorum = args[0]

    def _new_name(self, name: str) -> None:
        if name == NONE or name in self.names:
            raise FormatError(f"the name {name!r} is already defined")
        self.names.add(name)

    def _new_key(self, public_key: bytes, what: str) -> None:
        # Duplicates are by the underlying key, whatever name or key id the vkeys carry.
        if public_key in self.keys[what]:
            raise FormatError(f"a {what} key that appears twice in the policy")
        self.keys[what].add(public_key)

    @staticmethod
    def _limit(items: Sequence[object], what: str) -> None:
        if len(items) >= MAX_ITEMS:
            raise FormatError(f"more than {MAX_ITEMS} {what}")


def _check_chars(line: str, number: int) -> None:
    """Only tab and newline among the control characters (tlog-policy, "Character set")."""
    for ch in line:
        if (ch < " " and ch != "\t") or ch == "\x7f":
            raise FormatError(f"policy line {number}: control character {ch!r}")
