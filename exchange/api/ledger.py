"""The ledger's read API (public, c2sp tlog-tiles layout plus JSON) and its write routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from exchange import ledger_service as service
from exchange.api.deps import CurrentMember, ExchangeDep, WitnessesDep, require_role
from exchange.api.members import recorded
from exchange.api.schemas import (
    MAX_INTEGER,
    ConsistencyProofOut,
    EntryPublic,
    EntryRecorded,
    InclusionProofOut,
    SeqPath,
    SeqQuery,
    SignedStatementIn,
    SizeQuery,
)
from exchange.errors import InvalidInput, NotFound
from exchange.statements import parse_signed_statement
from exchange.witnessing import cosigned_note, served_checkpoint
from ledger.entry import Entry, b64encode
from ledger.errors import FormatError, StoreError
from ledger.merkle import leaf_hash
from ledger.sql import SqlLedger
from ledger.tiles import parse_tile_path

router = APIRouter(prefix="/ledger", tags=["ledger"])

TEXT = "text/plain; charset=utf-8"
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}


@router.get("/checkpoint", response_class=Response, responses={200: {"content": {TEXT: {}}}})
def checkpoint(exchange: ExchangeDep) -> Response:
    """The latest checkpoint the witness policy accepts, with its cosignatures (signed note)."""
    policy = exchange.witnesses.policy
    with exchange.reading() as session:
        served = served_checkpoint(session, policy)
        note = cosigned_note(session, served) if served is not None else None
    if note is None:
        if policy.requires_cosignatures:
            raise NotFound(
                f"no checkpoint satisfies the witness policy yet ({policy.describe(policy.quorum)})"
            )
        raise NotFound("the log has issued no checkpoint yet")
    return Response(note, media_type=TEXT, headers={"Cache-Control": "no-cache"})


@router.post("/checkpoint", response_class=Response, responses={200: {"content": {TEXT: {}}}})
def issue_checkpoint(
    caller: CurrentMember, exchange: ExchangeDep, witnesses: WitnessesDep
) -> Response:
    """Issue a checkpoint now (operators), have the witnesses cosign it, return it cosigned."""
    require_role(caller, "operator")
    with exchange.transaction() as session:
        row = SqlLedger(session).issue_checkpoint(exchange.log_signer)
    if witnesses is not None:  # after the commit: no transaction is open during network I/O
        witnesses.witness_latest()
    with exchange.reading() as session:
        note = cosigned_note(session, row)
    return Response(note, media_type=TEXT)


@router.get("/vkey", response_class=Response, responses={200: {"content": {TEXT: {}}}})
def vkey(exchange: ExchangeDep) -> Response:
    """The log's verifier key (c2sp.org/signed-note vkey)."""
    return Response(exchange.log_signer.verifier.vkey + "\n", media_type=TEXT)


@router.get(
    "/tile/{path:path}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def tile(path: str, exchange: ExchangeDep) -> Response:
    """c2sp.org/tlog-tiles: ``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``."""
    try:
        ref = parse_tile_path("tile/" + path)
    except FormatError as exc:
        raise NotFound(str(exc)) from None
    with exchange.reading() as session:
        ledger = SqlLedger(session)
        try:
            if ref.entries:
                data = ledger.entry_bundle(ref.index, ref.count)
            else:
                data = ledger.hash_tile(ref.level, ref.index, ref.count)
        except StoreError as exc:
            raise NotFound(str(exc)) from None
    return Response(data, media_type="application/octet-stream", headers=IMMUTABLE)


@router.get("/entries/{seq}", response_model=EntryPublic)
def entry(seq: SeqPath, exchange: ExchangeDep) -> EntryPublic:
    with exchange.reading() as session:
        data = service.entry_bytes(session, seq)
    parsed = Entry.from_bytes(data, strict=False)
    return EntryPublic(
        seq=seq, leaf_hash=leaf_hash(data).hex(), entry=parsed.to_json(), canonical=b64encode(data)
    )


@router.get("/proof/inclusion", response_model=InclusionProofOut)
def inclusion(
    exchange: ExchangeDep,
    seq: SeqQuery,
    size: Annotated[
        int | None, Query(ge=1, le=MAX_INTEGER, description="default: the latest checkpoint")
    ] = None,
) -> InclusionProofOut:
    with exchange.reading() as session:
        ledger = SqlLedger(session)
        latest = ledger.latest_checkpoint()
        tree_size = size if size is not None else (latest.size if latest else 0)
        if not seq < tree_size <= ledger.head().size:
            raise InvalidInput(
                f"entry {seq} is not in a tree of size {tree_size} "
                f"(the log has {ledger.head().size})"
            )
        proof = ledger.inclusion_proof(seq, tree_size)
        data = service.entry_bytes(session, seq)
        at_size = ledger.checkpoint_at(tree_size)
        note = cosigned_note(session, at_size) if at_size else None
    return InclusionProofOut(
        seq=seq,
        size=tree_size,
        leaf_hash=leaf_hash(data).hex(),
        proof=[b64encode(h) for h in proof],
        checkpoint=note,
    )


@router.get("/proof/consistency", response_model=ConsistencyProofOut)
def consistency(
    exchange: ExchangeDep,
    size1: SizeQuery,
    size2: SizeQuery,
) -> ConsistencyProofOut:
    with exchange.reading() as session:
        ledger = SqlLedger(session)
        if not size1 <= size2 <= ledger.head().size:
            raise InvalidInput(f"need 1 <= size1 <= size2 <= {ledger.head().size}")
        proof = ledger.consistency_proof(size1, size2)
    return ConsistencyProofOut(size1=size1, size2=size2, proof=[b64encode(h) for h in proof])


@router.get(
    "/proof/bundle/{seq}", response_class=Response, responses={200: {"content": {TEXT: {}}}}
)
def bundle(seq: SeqPath, exchange: ExchangeDep) -> Response:
    """An offline c2sp.org/tlog-proof@v1 bundle for entry ``seq``."""
    with exchange.transaction() as session:
        proof = service.proof_bundle(
            session, exchange.log_signer, seq, policy=exchange.witnesses.policy
        )
    return Response(proof.to_text(), media_type=TEXT)


@router.post("/attest", status_code=status.HTTP_201_CREATED, response_model=EntryRecorded)
def attest(body: SignedStatementIn, caller: CurrentMember, exchange: ExchangeDep) -> EntryRecorded:
    """Record the caller's own signed ``attest.NAME`` statement."""
    signed = parse_signed_statement(body.model_dump())
    with exchange.transaction() as session:
        entry = service.attest(session, signed, caller=caller, policy=exchange.statement_policy)
    return recorded(entry)
