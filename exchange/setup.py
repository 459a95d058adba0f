"""Preparing a data dir: database, log key and the first operator (the genesis entry)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.db import make_engine, unit_of_work, upgrade
from exchange.errors import InvalidInput
from exchange.keys import raw_public_key
from exchange.logkey import create_log_key, new_origin
from exchange.members import bootstrap_operator
from exchange.settings import Settings
from exchange.signing import new_statement
from ledger.audit import registration_body
from ledger.entry import EXCHANGE
from ledger.sql import SqlLedger


@dataclass(frozen=True)
class Initialised:
    operator: str
    token: str
    vkey: str
    checkpoint: str


def initialise(
    settings: Settings, *, operator: str, operator_name: str, operator_key: Ed25519PrivateKey
) -> Initialised:
    """Create the data dir, migrate, make the log key and register the first operator.

    The operator's private key stays with the caller: only the signed genesis statement and
    the public key reach the database.
    """
    if operator == EXCHANGE:
        raise InvalidInput(f"the member id {EXCHANGE!r} is reserved for the exchange itself")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    origin = settings.log_origin or new_origin()
    signer = create_log_key(settings.resolved_log_key_file, origin)
    public = raw_public_key(operator_key)
    genesis = new_statement(
        "member.registered",
        registration_body(operator, public, name=operator_name, roles=["operator"]),
        member=operator,
        key=operator_key,
        log=origin,
    )
    engine = make_engine(settings.resolved_database_url)
    try:
        with unit_of_work(engine) as session:
            done = bootstrap_operator(session, genesis, origin=origin)
            checkpoint = SqlLedger(session).issue_checkpoint(signer)
    finally:
        engine.dispose()
    return Initialised(operator, done.token, signer.verifier.vkey, checkpoint.note)
