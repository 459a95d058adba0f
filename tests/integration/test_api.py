"""The HTTP API against a real server, on SQLite and PostgreSQL.

Every refusal is checked for its status, its problem-details body, and that nothing was written.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.client import ClientError
from ledger.checkpoint import open_checkpoint
from ledger.entry import Entry, SignedStatement, Statement, sign_statement
from ledger.merkle import leaf_hash, tree_root, verify_consistency, verify_inclusion
from ledger.note import Ed25519Verifier
from ledger.proofbundle import ProofBundle, verify_proof_bundle
from ledger.tiles import decode_entry_bundle, decode_hash_tile
from tests.conftest import PG_ADMIN, LiveServer
from tests.integration.helpers import new_member_body, register, statement


def size(live: LiveServer) -> int:
    return int(httpx.get(live.url + "/healthz").json()["size"])


def post_raw(live: LiveServer, path: str, token: str | None, body: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(live.url + path, json=body, headers=headers)


def assert_problem(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert words in problem["detail"], problem["detail"]


def test_register_attest_and_read_back(live_server: LiveServer) -> None:
    with live_server.operator() as operator:
        alice = register(operator, live_server.url, "alice", ["provider", "buyer"])
    me = alice.client.me()
    assert me["id"] == "alice" and me["roles"] == ["buyer", "provider"]
    recorded = alice.client.attest("attest.evaluation", {"model": "m1", "score": 0.93})
    entry = alice.client.entry(recorded["seq"])
    assert entry["entry"]["statement"]["body"] == {"model": "m1", "score": 0.93}
    assert entry["entry"]["statement"]["member"] == "alice"
    data = base64.b64decode(entry["canonical"])
    assert leaf_hash(data).hex() == entry["leaf_hash"] == recorded["leaf_hash"]
    parsed = Entry.from_bytes(data)
    parsed.signed.verify(base64.b64decode(me["keys"][0]["public_key"]))
    previous = base64.b64decode(alice.client.entry(recorded["seq"] - 1)["canonical"])
    assert parsed.prev == leaf_hash(previous).hex()


def test_tiles_checkpoint_and_proofs_agree(live_server: LiveServer) -> None:
    with live_server.operator() as operator:
        for n in range(5):
            operator.attest("attest.note", {"n": n})
        note = operator.issue_checkpoint()
        verifier = Ed25519Verifier.from_vkey(operator.vkey())
        checkpoint = open_checkpoint(note, verifier).checkpoint
        assert checkpoint.size == 6
        entries = decode_entry_bundle(operator.tile("tile/entries/000.p/6"), 6)
        leaves = decode_hash_tile(operator.tile("tile/0/000.p/6"), 6)
        assert [leaf_hash(e) for e in entries] == leaves
        assert tree_root(leaves) == checkpoint.root
        for seq in range(6):
            answer = operator.inclusion_proof(seq)
            proof = [base64.b64decode(h) for h in answer["proof"]]
            verify_inclusion(
                leaf_hash=leaves[seq], index=seq, size=6, proof=proof, root=checkpoint.root
            )
        consistency = operator.consistency_proof(2, 6)
        verify_consistency(
            size1=2,
            size2=6,
            proof=[base64.b64decode(h) for h in consistency["proof"]],
            root1=tree_root(leaves[:2]),
            root2=checkpoint.root,
        )
        bundle = ProofBundle.from_text(operator.proof_bundle(4))
        verify_proof_bundle(bundle, entry=entries[4], log_verifier=verifier)
        with pytest.raises(ClientError) as missing:
            operator.tile("tile/entries/000.p/7")
        assert missing.value.status == 404


def test_refusals_write_nothing(live_server: LiveServer) -> None:
    with live_server.operator() as operator:
        bob = register(operator, live_server.url, "bob", ["buyer"])
    before = size(live_server)
    good = statement("attest.x", {"a": 1}, member="bob", key=bob.key).to_json()

    assert_problem(post_raw(live_server, "/ledger/attest", None, good), 401, "Bearer")
    assert_problem(
        post_raw(live_server, "/ledger/attest", "cx_wrong", good), 401, "unknown or revoked"
    )

    forged = dict(good, signature=base64.b64encode(bytes(64)).decode())
    assert_problem(
        post_raw(live_server, "/ledger/attest", bob.token, forged), 403, "does not verify"
    )

    other_key = Ed25519PrivateKey.generate()
    unknown = statement("attest.x", {}, member="bob", key=other_key).to_json()
    assert_problem(
        post_raw(live_server, "/ledger/attest", bob.token, unknown), 403, "is not a key of bob"
    )

    as_operator = statement(
        "attest.x", {}, member="operator", key=live_server.prepared.operator_key
    )
    assert_problem(
        post_raw(live_server, "/ledger/attest", bob.token, as_operator.to_json()),
        403,
        "token is bob's",
    )

    stale = statement(
        "attest.x", {}, member="bob", key=bob.key, now=datetime.now(UTC) - timedelta(hours=1)
    )
    assert_problem(
        post_raw(live_server, "/ledger/attest", bob.token, stale.to_json()), 403, "window"
    )

    elsewhere = statement("attest.x", {}, member="bob", key=bob.key, log="other.example/log")
    assert_problem(
        post_raw(live_server, "/ledger/attest", bob.token, elsewhere.to_json()), 403, "addressed to"
    )

    wrong_type = statement("offer.published", {}, member="bob", key=bob.key).to_json()
    assert_problem(post_raw(live_server, "/ledger/attest", bob.token, wrong_type), 422, "attest.")

    unknown_type = dict(good, statement=dict(good["statement"], type="made.up"))
    assert_problem(
        post_raw(live_server, "/ledger/attest", bob.token, unknown_type), 422, "unknown entry type"
    )

    response = httpx.post(
        live_server.url + "/ledger/attest",
        content=b"{not json",
        headers={"Authorization": f"Bearer {bob.token}", "content-type": "application/json"},
    )
    assert_problem(response, 422, "JSON")

    body = new_member_body("mallory", ["operator"], Ed25519PrivateKey.generate())
    by_buyer = statement("member.registered", body, member="bob", key=bob.key).to_json()
    assert_problem(post_raw(live_server, "/members", bob.token, by_buyer), 403, "only an operator")

    assert size(live_server) == before

    first = post_raw(live_server, "/ledger/attest", bob.token, good)
    assert first.status_code == 201
    assert_problem(post_raw(live_server, "/ledger/attest", bob.token, good), 409, "replay")
    assert size(live_server) == before + 1


def test_key_rotation_and_token_revocation(live_server: LiveServer) -> None:
    with live_server.operator() as operator:
        carol = register(operator, live_server.url, "carol", ["provider"])
    old_key, new_key = carol.key, Ed25519PrivateKey.generate()
    carol.client.add_key("carol", new_member_body("carol", ["provider"], new_key) | {"roles": None})
    carol.client.revoke_key(
        "carol",
        {"member": "carol", "key_id": carol.client.me()["keys"][0]["key_id"], "reason": "rotated"},
    )
    stale = statement("attest.x", {}, member="carol", key=old_key).to_json()
    assert_problem(post_raw(live_server, "/ledger/attest", carol.token, stale), 403, "revoked")
    carol.client.key = new_key
    assert carol.client.attest("attest.x", {"after": "rotation"})["seq"] > 0
    keys = carol.client.me()["keys"]
    assert [k["revoked_seq"] is not None for k in keys] == [True, False]

    extra = carol.client.new_token("laptop")
    carol.client.revoke_token(extra["id"])
    assert_problem(
        httpx.get(live_server.url + "/me", headers={"Authorization": f"Bearer {extra['token']}"}),
        401,
        "revoked",
    )


def test_member_cannot_change_anothers_keys(live_server: LiveServer) -> None:
    with live_server.operator() as operator:
        dave = register(operator, live_server.url, "dave", ["buyer"])
        register(operator, live_server.url, "erin", ["buyer"])
    before = size(live_server)
    body = new_member_body("erin", ["buyer"], Ed25519PrivateKey.generate())
    del body["roles"], body["name"]
    with pytest.raises(ClientError) as refused:
        dave.client.add_key("erin", body)
    assert refused.value.status == 403
    assert size(live_server) == before


def test_statement_signature_covers_every_field(live_server: LiveServer) -> None:
    with live_server.operator() as operator:
        frank = register(operator, live_server.url, "frank", ["buyer"])
    signed = statement("attest.x", {"price": 1}, member="frank", key=frank.key)
    tampered = SignedStatement(
        Statement(**(signed.statement.to_json() | {"body": {"price": 2}})), signed.signature
    )
    assert_problem(
        post_raw(live_server, "/ledger/attest", frank.token, tampered.to_json()),
        403,
        "does not verify",
    )
    resigned = sign_statement(tampered.statement, frank.key)
    assert (
        post_raw(live_server, "/ledger/attest", frank.token, resigned.to_json()).status_code == 201
    )


def test_operators_revoke_but_never_add_keys_of_others(live_server: LiveServer) -> None:
    with live_server.operator() as operator:
        gina = register(operator, live_server.url, "gina", ["buyer"])
        before = size(live_server)
        body = new_member_body("gina", ["buyer"], Ed25519PrivateKey.generate())
        with pytest.raises(ClientError) as refused:
            operator.add_key("gina", body)
        assert refused.value.status == 403 and size(live_server) == before
        key_id = gina.client.me()["keys"][0]["key_id"]
        with pytest.raises(ClientError) as not_theirs:
            register(operator, live_server.url, "hank", ["buyer"]).client.revoke_key(
                "gina", {"member": "gina", "key_id": key_id, "reason": "no"}
            )
        assert not_theirs.value.status == 403
        operator.revoke_key("gina", {"member": "gina", "key_id": key_id, "reason": "compromised"})
    with pytest.raises(ClientError) as revoked:
        gina.client.attest("attest.x", {})
    assert revoked.value.status == 403 and "revoked" in str(revoked.value)


def test_member_ids_are_exact_and_exchange_is_reserved(live_server: LiveServer) -> None:
    with live_server.operator() as operator:
        for bad in ["alice\n", "Not Valid", "exchange", "-x"]:
            body = new_member_body("placeholder", ["buyer"], Ed25519PrivateKey.generate())
            body["member"] = bad
            with pytest.raises(ClientError) as refused:
                operator.register_member(body)
            assert refused.value.status == 422, bad


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_liveness_needs_no_token_and_no_database(live_server: LiveServer) -> None:
    live = httpx.get(live_server.url + "/healthz/live")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert httpx.get(live_server.url + "/healthz").status_code == 200
    database = live_server.prepared.settings.database_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')  # type: ignore[arg-type]
    assert httpx.get(live_server.url + "/healthz").status_code == 503  # not ready
    live = httpx.get(live_server.url + "/healthz/live")
    assert live.status_code == 200 and live.json() == {"status": "ok"}  # but alive
