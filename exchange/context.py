"""What a running exchange holds: settings, database engine, log key, blobs, witness policy,
and the worker processes that derive uploaded files."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session

from exchange.db import check_migrated, make_engine, read_only, unit_of_work
from exchange.logkey import load_log_key
from exchange.settings import Settings
from exchange.statements import StatementPolicy
from exchange.verification import Verifier
from exchange.witnessing import WitnessConfig, load_witness_config
from ledger.entry import key_id_for
from ledger.note import Ed25519Signer
from storage import BlobStore, open_store


@dataclass(frozen=True)
class Exchange:
    settings: Settings
    engine: Engine
    log_signer: Ed25519Signer
    store: BlobStore
    witnesses: WitnessConfig
    verifier: Verifier

    @classmethod
    def open(cls, settings: Settings) -> Exchange:
        """Open a prepared data dir; refuses an unmigrated database or a missing log key."""
        engine = make_engine(settings.resolved_database_url)
        check_migrated(engine)
        signer = load_log_key(settings.resolved_log_key_file, settings.log_origin)
        witnesses = load_witness_config(settings, signer.verifier)
        store = open_store(settings.resolved_blob_store, **settings.blob_store_options())
        return cls(
            settings, engine, signer, store, witnesses, Verifier(workers=settings.ingest_workers)
        )

    @property
    def statement_policy(self) -> StatementPolicy:
        return StatementPolicy(self.origin, self.settings.statement_window, self.log_key_id)

    @property
    def origin(self) -> str:
        return self.log_signer.name

    @property
    def log_key_id(self) -> str:
        """The log key's id in the member-key form, for statements the exchange itself makes."""
        return key_id_for(self.log_signer.verifier.public_key)

    def reading(self) -> AbstractContextManager[Session]:
        """A read-only transaction, for routes that change nothing."""
        return read_only(self.engine)

    def transaction(self) -> AbstractContextManager[Session]:
        """One use case's unit of work: everything in it commits together or not at all."""
        return unit_of_work(self.engine)
