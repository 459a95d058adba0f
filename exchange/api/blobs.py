"""Blob routes: providers upload corpus files by digest before publishing a version.

An upload streams straight into the store, which hashes while writing and refuses bytes that
do not match the digest in the URL; nothing half-written is ever visible.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio.from_thread
from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from exchange.api.deps import CurrentMember, ExchangeDep, require_role
from exchange.errors import InvalidInput, NotFound
from storage import BlobNotFound, IntegrityError, validate_digest

router = APIRouter(prefix="/blobs", tags=["blobs"])


class DigestList(BaseModel):
    digests: list[str] = Field(max_length=10_000)


class Missing(BaseModel):
    missing: list[str]


class Stored(BaseModel):
    digest: str
    size: int


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


def _pull(stream: AsyncIterator[bytes]) -> Iterator[bytes]:
    """The request body as a blocking iterator, for the store running in a worker thread."""

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    while (chunk := anyio.from_thread.run(next_chunk)) is not None:
        if chunk:
            yield chunk


@router.put("/{digest}", status_code=status.HTTP_201_CREATED, response_model=Stored)
async def upload(
    digest: str, request: Request, caller: CurrentMember, exchange: ExchangeDep
) -> Stored:
    """Store a blob under its SHA-256 (providers); the body must hash to ``digest``."""
    require_role(caller, "provider")
    validate_digest(digest)
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise InvalidInput("send the blob with a Content-Length")
    try:
        info = await run_in_threadpool(
            exchange.store.put, digest, _pull(request.stream()), size=int(length)
        )
    except IntegrityError as exc:  # the upload, not the store, is at fault
        raise InvalidInput(f"the uploaded bytes do not match their digest: {exc}") from None
    return Stored(digest=info.digest, size=info.size)
