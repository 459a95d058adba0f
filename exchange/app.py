"""The application factory: settings, database, log key, routes, problem details, scheduler.

The scheduler issues a checkpoint when the log has grown and then, if witnesses are
configured, asks them to cosign the latest checkpoint (``exchange.witnessing``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog.errors import CatalogError, DatasetNotFound, IndexDamaged, VersionNotFound
from exchange.anchoring import Anchorer, build_anchorer
from exchange.api import anchors as anchor_routes
from exchange.api import blobs as blob_routes
from exchange.api import catalog as catalog_routes
from exchange.api import delivery as delivery_routes
from exchange.api import ledger as ledger_routes
from exchange.api import licensing as licensing_routes
from exchange.api import members as member_routes
from exchange.api.deps import refuse_nul
from exchange.api.schemas import PROBLEM_MEDIA_TYPE, PROBLEMS
from exchange.context import Exchange
from exchange.errors import ExchangeError
from exchange.settings import Settings, load_settings
from exchange.witnessing import WitnessCollector
from ledger.errors import FormatError, LedgerError, VerificationError
from ledger.sql import SqlLedger
from licensing.errors import LicensingError
from storage import (
    BlobNotFound,
    IntegrityError,
    InvalidRange,
    StorageError,
    StorageUnavailable,
)

log = logging.getLogger("corpusx")
PROBLEM = PROBLEM_MEDIA_TYPE


def problem(request: Request, status: int, title: str, detail: str, **headers: str) -> JSONResponse:
    """An RFC 9457 problem details response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body["instance"] = request.url.path
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers or None)


def _install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ExchangeError)
    async def _exchange(request: Request, exc: ExchangeError) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.status == 503 else {}
        return problem(request, exc.status, exc.title, exc.detail, **headers)

    @app.exception_handler(FormatError)
    async def _format(request: Request, exc: FormatError) -> JSONResponse:
        return problem(request, 422, "Invalid input", str(exc))

    @app.exception_handler(VerificationError)
    async def _verification(request: Request, exc: VerificationError) -> JSONResponse:
        return problem(request, 403, "Verification failed", str(exc))

    @app.exception_handler(LedgerError)
    async def _ledger(request: Request, exc: LedgerError) -> JSONResponse:
        return problem(request, 409, "Ledger conflict", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error.get("loc", ()))
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
        return problem(request, 422, "Invalid input", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(request, exc.status_code, str(exc.detail), str(exc.detail))

    @app.exception_handler(CatalogError)
    async def _catalog(request: Request, exc: CatalogError) -> JSONResponse:
        if isinstance(exc, DatasetNotFound | VersionNotFound):
            return problem(request, 404, "Not found", str(exc))
        if isinstance(exc, IndexDamaged):  # our data went bad, as a stored blob can
            log.error("overlap index failure on %s: %s", request.url.path, exc)
            return problem(request, 500, "The overlap index failed its integrity check", str(exc))
        return problem(request, 422, "Invalid input", str(exc))

    @app.exception_handler(LicensingError)
    async def _licensing(request: Request, exc: LicensingError) -> JSONResponse:
        return problem(request, 422, "Invalid input", str(exc))

    @app.exception_handler(StorageError)
    async def _storage(request: Request, exc: StorageError) -> JSONResponse:
        if isinstance(exc, StorageUnavailable):
            return problem(
                request, 503, "Temporarily unavailable", str(exc), **{"Retry-After": "1"}
            )
        if isinstance(exc, BlobNotFound):
            return problem(request, 404, "Not found", str(exc))
        if isinstance(exc, InvalidRange):
            headers = {"Content-Range": f"bytes */{exc.size}"}
            return problem(request, 416, "Range not satisfiable", str(exc), **headers)
        if isinstance(exc, IntegrityError):  # stored bytes went bad: our fault, never served
            log.error("integrity failure on %s: %s", request.url.path, exc)
            return problem(request, 500, "Stored data failed its integrity check", str(exc))
        return problem(request, 422, "Invalid blob", str(exc))

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the routes let through (a NUL in JSON text, say): bad
        # input, answered without echoing the SQL.
        log.warning("the database refused a value on %s: %s", request.url.path, exc.orig)
        return problem(
            request,
            422,
            "Invalid input",
            "a value in the request cannot be stored or compared (a NUL character, a number "
            "out of range, or text too long)",
        )

    @app.exception_handler(OperationalError)
    async def _busy(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database busy: %s", exc.orig)
        return problem(
            request,
            503,
            "Temporarily unavailable",
            "the database is busy; retry",
            **{"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(request, 500, "Internal error", "the server failed; the error is logged")


async def _checkpoint_loop(exchange: Exchange, witnesses: WitnessCollector | None) -> None:
    """Every ``checkpoint_interval`` seconds: a checkpoint if the log grew, then its witnessing.

    Every worker of ``corpusx serve --workers N`` runs this loop. That is safe without a lease:
    issuing locks the ledger's head row and only then reads the latest checkpoint, so a worker
    that queued behind another finds that worker's checkpoint and signs nothing (two checkpoints
    of one size, or of a size already passed, cannot happen). Witnesses that have not cosigned
    the latest checkpoint are asked again at every tick, so one that was down catches up when it
    is back.
    """
    interval = exchange.settings.checkpoint_interval
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(issue_checkpoint, exchange)
            if witnesses is not None:
                await asyncio.to_thread(witnesses.witness_latest)
        except Exception:  # the loop must outlive a transient database or network error
            log.exception("scheduled checkpoint failed")


async def _anchor_loop(anchorer: Anchorer, poll: float) -> None:
    """Follow anchors in flight and send new ones when due (``exchange/anchoring.py``)."""
    while True:
        try:
            await asyncio.to_thread(anchorer.step)
        except Exception:  # a database hiccup must not end anchoring for the process's life
            log.exception("anchoring step failed")
        await asyncio.sleep(poll)


def issue_checkpoint(exchange: Exchange) -> int:
    with exchange.transaction() as session:
        return SqlLedger(session).issue_checkpoint(exchange.log_signer).size


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the exchange; raises ``NotMigratedError``/``LogKeyError`` on an unprepared data dir
    and ``SettingsError`` on chain settings that cannot work (anchoring starts with the app)."""
    settings = settings or load_settings()
    exchange = Exchange.open(settings)
    anchorer = build_anchorer(exchange)
    witnesses = WitnessCollector(exchange) if exchange.witnesses.contacted else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The derivation workers start in the background: the app serves meanwhile.
        warming = asyncio.create_task(asyncio.to_thread(exchange.verifier.start))
        tasks = []
        if settings.checkpoint_interval > 0:
            tasks.append(asyncio.create_task(_checkpoint_loop(exchange, witnesses)))
        if anchorer is not None:
            tasks.append(asyncio.create_task(_anchor_loop(anchorer, settings.chain_poll_interval)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if anchorer is not None:
                with contextlib.suppress(Exception):  # best effort: the lease expires anyway
                    await asyncio.to_thread(anchorer.release)
            if witnesses is not None:
                witnesses.close()
            with contextlib.suppress(Exception):  # a pool that failed to start: nothing to stop
                await warming
            await asyncio.to_thread(exchange.verifier.close)
            exchange.engine.dispose()

    app = FastAPI(
        title="Corpus Exchange",
        version="0.1.0",
        summary="A corpus-data exchange with a verifiable provenance ledger",
        lifespan=lifespan,
        responses=PROBLEMS,
        dependencies=[Depends(refuse_nul)],
    )
    app.state.exchange = exchange
    app.state.anchorer = anchorer
    app.state.witnesses = witnesses
    _install_problem_handlers(app)
    app.include_router(member_routes.router)
    app.include_router(ledger_routes.router)
    app.include_router(anchor_routes.router)
    app.include_router(blob_routes.router)
    app.include_router(catalog_routes.router)
    app.include_router(licensing_routes.router)
    app.include_router(delivery_routes.router)

    @app.get("/healthz/live", tags=["meta"])
    async def healthz_live() -> dict[str, str]:
        """Liveness: this process is up and serving. It touches no database, so a load balancer
        can probe it cheaply and a database outage does not get the workers restarted
        (``/healthz`` is the readiness check: it reads the ledger's head)."""
        return {"status": "ok"}

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, object]:
        """Liveness, the log's size, and which worker process answered (behind a balancer)."""
        with exchange.reading() as session:
            size = SqlLedger(session).size()
        return {"status": "ok", "origin": exchange.origin, "size": size, "worker": os.getpid()}

    return app
