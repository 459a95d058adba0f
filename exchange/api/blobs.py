"""Blob routes: providers upload corpus files by digest before publishing a version.

An upload streams straight into the store, which refuses bytes that do not match the digest in
the URL; nothing half-written is ever visible. An upload that says which file it is
(``?name=web/a.jsonl&rule=field:text``) is also read by the exchange, in its worker processes,
into the manifest and overlap sketch that publishing needs (``exchange.verification``), so that
publishing does not read the bytes again: on the local store from its temporary file before the
blob is named, that read hashing the bytes for the store (``LocalStore.put_read``); on S3 from a
copy of the bytes that streamed into the store, which hashed them while writing.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated

import anyio.from_thread
from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from catalog.errors import CatalogError
from exchange import verification
from exchange.api.deps import CurrentMember, ExchangeDep, require_role
from exchange.errors import InvalidInput, NotFound
from exchange.verification import MAX_RULE_LENGTH, Reading, upload_copy
from storage import BlobInfo, BlobNotFound, IntegrityError, LocalStore, validate_digest
from storage.local import BlockWriter

router = APIRouter(prefix="/blobs", tags=["blobs"])


class DigestList(BaseModel):
    digests: list[str] = Field(max_length=10_000)


class Missing(BaseModel):
    missing: list[str]


class Stored(BaseModel):
    digest: str
    size: int
    derived: bool = Field(
        default=False, description="read by the exchange as the file named in the upload"
    )
    problem: str | None = Field(default=None, description="why the bytes did not ingest")


@router.post("/missing", response_model=Missing)
def missing(body: DigestList, caller: CurrentMember, exchange: ExchangeDep) -> Missing:
    """Which of these digests the exchange does not hold yet (so only those are uploaded)."""
    require_role(caller, "provider")
    for digest in body.digests:
        validate_digest(digest)
    return Missing(missing=[d for d in dict.fromkeys(body.digests) if not exchange.store.exists(d)])


@router.head("/{digest}")
def head(digest: str, caller: CurrentMember, exchange: ExchangeDep) -> Response:
    """Whether the exchange holds a blob (providers, like ``/blobs/missing``): nobody else may
    probe for files the exchange holds but has not published."""
    require_role(caller, "provider")
    try:
        info = exchange.store.stat(validate_digest(digest))
    except BlobNotFound:
        raise NotFound(f"no blob {digest}") from None
    return Response(headers={"Content-Length": str(info.size)})


PULL_BYTES = 1 << 20
"""Body bytes handed to the store's thread at a time: the server receives chunks of at most
64 KiB, and each hand-over is a round trip between the event loop and the thread."""


def _pull(stream: AsyncIterator[bytes], copy: BlockWriter | None) -> Iterator[bytes]:
    """The request body as a blocking iterator, for the store running in a worker thread, handed
    over about PULL_BYTES at a time (as received: the store copies them into its own blocks, so
    joining them here would be one more copy on the event loop); each chunk is also written to
    ``copy``, if given."""

    async def next_chunks() -> list[bytes] | None:
        parts: list[bytes] = []
        size = 0
        try:
            while size < PULL_BYTES:
                chunk = await stream.__anext__()
                parts.append(chunk)
                size += len(chunk)
        except StopAsyncIteration:
            if not parts:
                return None
        return parts

    while (parts := anyio.from_thread.run(next_chunks)) is not None:
        for chunk in parts:
            if chunk:
                if copy is not None:
                    copy.write(chunk)
                yield chunk
    if copy is not None:
        copy.flush()


@router.put("/{digest}", status_code=status.HTTP_201_CREATED, response_model=Stored)
async def upload(
    digest: str,
    request: Request,
    caller: CurrentMember,
    exchange: ExchangeDep,
    name: Annotated[
        str | None, Query(max_length=1024, description="the file's name in the corpus")
    ] = None,
    rule: Annotated[
        str, Query(max_length=MAX_RULE_LENGTH, description="its document rule")
    ] = "field:text",
) -> Stored:
    """Store a blob under its SHA-256 (providers); the body must hash to ``digest``.

    With ``name`` (and ``rule``, if not ``field:text``), the exchange also reads the stored
    file as the corpus file of that name: ``derived`` says it did, ``problem`` why it could not.
    """
    require_role(caller, "provider")
    validate_digest(digest)
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise InvalidInput("send the blob with a Content-Length")
    try:
        reading = Reading.of(name, rule) if name is not None else None
    except CatalogError as exc:
        raise InvalidInput(f"name and rule: {exc}") from None
    store = exchange.store
    # On the local store a named upload is derived from the temporary file before it takes the
    # blob's name: one read, which also hashes the bytes for the store.
    put: Callable[..., BlobInfo] = store.put
    derivation = None
    if reading is not None and isinstance(store, LocalStore):
        derivation = verification.UploadDerivation(exchange.verifier, digest, reading)
        put = functools.partial(store.put_read, read=derivation)
    with upload_copy(store, wanted=reading is not None) as copy:
        body = _pull(request.stream(), copy.file if copy else None)
        try:
            info = await run_in_threadpool(put, digest, body, size=int(length))
        except IntegrityError as exc:  # the upload, not the store, is at fault
            raise InvalidInput(f"the uploaded bytes do not match their digest: {exc}") from None
        if reading is None:
            return Stored(digest=info.digest, size=info.size)
        outcome = None
        if derivation is not None:
            outcome = await run_in_threadpool(derivation.remember, store, exchange.transaction)
        if outcome is None:  # S3, or a blob the local store already held: read it now
            outcome = await run_in_threadpool(
                verification.derive_upload,
                store,
                exchange.transaction,
                exchange.verifier,
                digest=digest,
                size=info.size,
                reading=reading,
                copy=copy.path if copy else None,
            )
    return Stored(
        digest=info.digest, size=info.size, derived=outcome.derived, problem=outcome.problem
    )
