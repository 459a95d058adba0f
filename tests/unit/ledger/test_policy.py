"""Witness policies (c2sp.org/tlog-policy): parsing, k-of-n, nested groups, verification."""

from __future__ import annotations

import pytest

from ledger.errors import FormatError, VerificationError
from ledger.note import CosignatureSigner, Ed25519Signer, Note
from ledger.policy import NONE, PolicyWitness, WitnessPolicy
from tests.unit.ledger.toylog import ToyLog

LOG = Ed25519Signer.generate("example.com/log")
SIGNERS = {name: CosignatureSigner.generate(f"witness.example/{name}") for name in
           ("X1", "X2", "X3", "Y1", "Y2", "Y3")}  # fmt: skip
V = {name: signer.verifier.vkey for name, signer in SIGNERS.items()}

EXAMPLE = f"""
# the example policy of the spec, with real keys
log {LOG.verifier.vkey}

witness X1 {V["X1"]}
witness X2 {V["X2"]}
\twitness X3 {V["X3"]}   https://x3.example/
group X-witnesses 2 X1 X2 X3

witness Y1 {V["Y1"]}
witness Y2 {V["Y2"]}
witness Y3 {V["Y3"]}
group Y-witnesses any Y1 Y2 Y3

group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
"""


def test_the_spec_example_parses_and_evaluates():
    policy = WitnessPolicy.from_text(EXAMPLE)
    assert [w.name for w in policy.witnesses] == ["X1", "X2", "X3", "Y1", "Y2", "Y3"]
    assert policy.witnesses[2].url == "https://x3.example/"
    assert [(g.name, g.threshold) for g in policy.groups] == [
        ("X-witnesses", 2),
        ("Y-witnesses", 1),
        ("X-and-Y", 2),
    ]
    assert policy.witnessed_by(["X1", "X3", "Y2"])
    assert not policy.witnessed_by(["X1", "Y1", "Y2", "Y3"])  # only one X
    assert not policy.witnessed_by(["X1", "X2", "X3"])  # no Y
    assert policy.witnessed_by([SIGNERS["X1"].verifier, SIGNERS["X2"].verifier, "Y3"])
    assert policy.describe("X-and-Y") == "2 of (2 of (X1, X2, X3), 1 of (Y1, Y2, Y3))"
    assert WitnessPolicy.from_text(policy.to_text()) == policy


def test_k_of_n_and_none():
    witnesses = [PolicyWitness(n, SIGNERS[n].verifier, f"http://{n}") for n in ("X1", "X2", "X3")]
    two = WitnessPolicy.k_of_n(witnesses, 2)
    assert two.requires_cosignatures
    assert two.witnessed_by(["X1", "X3"]) and not two.witnessed_by(["X2"])
    assert not two.witnessed_by(["someone-else", "X2"])  # unknown names count for nothing
    zero = WitnessPolicy.k_of_n(witnesses, 0)
    assert zero.quorum == NONE and zero.witnessed_by([]) and len(zero.witnesses) == 3
    assert WitnessPolicy.none().witnessed_by([])
    with pytest.raises(FormatError):
        WitnessPolicy.k_of_n(witnesses, 4)


def test_verify_requires_the_quorum_and_names_what_is_missing():
    policy = WitnessPolicy.from_text(EXAMPLE)
    log = ToyLog(LOG, [b"a", b"b"])
    note = Note.from_text(log.checkpoint())

    def cosigned(*names: str) -> str:
        return note.with_signatures(
            [SIGNERS[n].sign(note.text, timestamp=1) for n in names]
        ).to_text()

    signed = policy.verify(cosigned("X1", "X2", "Y1"), LOG.verifier)
    assert len(signed.cosignatures) == 3
    needs = r"needs 2 of \(2 of \(X1, X2, X3\), 1 of \(Y1, Y2, Y3\)\); .*from: X1, Y1"
    with pytest.raises(VerificationError, match=needs):
        policy.verify(cosigned("X1", "Y1"), LOG.verifier)
    with pytest.raises(VerificationError, match="does not list the log"):
        other_log = Ed25519Signer.generate("example.com/log").verifier
        policy.verify(cosigned("X1", "X2", "Y1"), other_log)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no quorum"),
        ("quorum none\nquorum none\n", "second quorum"),
        ("quorum W\n", "not a witness or group defined above"),
        (f"quorum X1\nwitness X1 {V['X1']}\n", "not a witness or group defined above"),
        (f"witness X1 {V['X1']}\nwitness X1 {V['X2']}\nquorum X1\n", "already defined"),
        (f"witness none {V['X1']}\nquorum none\n", "already defined"),
        (f"witness X1 {V['X1']}\nwitness X2 {V['X1']}\nquorum X1\n", "appears twice"),
        (f"witness X1 {LOG.verifier.vkey}\nquorum X1\n", "signature type"),
        (f"log {V['X1']}\nquorum none\n", "signature type"),
        (f"log {LOG.verifier.vkey}\nlog {LOG.verifier.vkey}\nquorum none\n", "appears twice"),
        (f"witness X1 {V['X1']}\ngroup G 2 X1\nquorum G\n", "outside 1..1"),
        (f"witness X1 {V['X1']}\ngroup G 0 X1\nquorum G\n", "outside 1..1"),
        (f"witness X1 {V['X1']}\ngroup G 01 X1\nquorum G\n", "leading zeroes"),
        (f"witness X1 {V['X1']}\ngroup G any X1 X1\nquorum G\n", "twice"),
        (f"witness X1 {V['X1']}\ngroup G any X1 none\nquorum G\n", "not a witness or group"),
        (f"witness X1 {V['X1']}\ngroup G any\nquorum G\n", "expected 'group"),
        ("witness X1\nquorum none\n", "expected 'witness"),
        (f"witness X1 {V['X1']} http://a http://b\nquorum none\n", "expected 'witness"),
        ("quorum none extra\n", "expected 'quorum"),
        ("cosigner X1\nquorum none\n", "unknown keyword"),
        ("quorum none\r\n", "control character"),
        (f"witness X1 {V['X1']}\x0bx\nquorum none\n", "control character"),
    ],
)
def test_bad_policies_are_refused_with_the_line(text: str, message: str):
    with pytest.raises(FormatError, match=message):
        WitnessPolicy.from_text(text)


def test_whitespace_is_only_space_and_tab():
    """A non-ASCII space is part of a name, not a separator (names are opaque octets)."""
    policy = WitnessPolicy.from_text(f"witness X\u00a01 {V['X1']}\nquorum X\u00a01\n")
    assert policy.witnesses[0].name == "X\u00a01"
