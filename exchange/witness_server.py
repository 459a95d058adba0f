"""The witness's HTTP service (c2sp.org/tlog-witness), a thin layer over :mod:`witness_store`.

    POST /add-checkpoint   the protocol: 200 cosignature lines, or 400/403/404/409/422
    GET  /healthz          {"status": "ok", "name", "vkey", "logs"}
    GET  /vkey             the witness's verifier key and a newline

The submission prefix is the server's root URL. Run it with ``corpusx witness serve``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from exchange.witness_store import WitnessStore
from ledger.witness import MAX_REQUEST_BYTES, Cosigned, Refused

log = logging.getLogger("corpusx.witness")


async def _read_body(request: Request) -> bytes | None:
    """The body, or None once it exceeds the limit (without reading the rest into memory)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _report(outcome: Cosigned | Refused) -> None:
    if isinstance(outcome, Cosigned):
        log.info("cosigned %s at size %d", outcome.state.origin, outcome.state.size)
    elif outcome.evidence is not None:
        level = logging.WARNING if outcome.evidence.kind == "stale" else logging.ERROR
        log.log(level, "refused (%s, kept as evidence): %s", outcome.evidence.kind, outcome.reason)
    else:
        log.info("refused with %d: %s", outcome.status, outcome.reason)


def create_witness_app(data_dir: Path) -> Starlette:
    """The witness service over the data dir ``data_dir`` (which ``witness init`` made)."""
    store = WitnessStore(data_dir)

    async def add_checkpoint(request: Request) -> Response:
        body = await _read_body(request)
        if body is None:
            return PlainTextResponse(f"the request exceeds {MAX_REQUEST_BYTES} bytes\n", 400)
        # SQLite and the fsync of the commit block: keep them off the event loop.
        outcome = await run_in_threadpool(store.add_checkpoint, body)
        _report(outcome)
        # Set as a header: Starlette would add "; charset=utf-8" to text/x.tlog.size.
        return Response(outcome.body, outcome.status, {"Content-Type": outcome.content_type})

    async def healthz(_: Request) -> JSONResponse:
        logs = await run_in_threadpool(store.logs)
        return JSONResponse(
            {"status": "ok", "name": store.signer.name, "vkey": store.vkey, "logs": len(logs)}
        )

    async def vkey(_: Request) -> PlainTextResponse:
        return PlainTextResponse(store.vkey + "\n")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()

    return Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/vkey", vkey, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
