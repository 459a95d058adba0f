"""Delivery routes: ask for licensed files, download them (HTTP Range), fetch receipts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from exchange import delivery as service
from exchange import ledger_service
from exchange.api.deps import CurrentMember, ExchangeDep, require_role
from exchange.api.schemas import SeqPath, problem_responses
from exchange.errors import InvalidInput
from ledger.entry import b64encode
from licensing.errors import LicensingError
from storage import InvalidRange

router = APIRouter(tags=["delivery"])
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class DeliveryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(max_length=71, description="the exact version id licensed")
    purpose: str = Field(max_length=32, description="training, fine-tuning, evaluation, research")
    commercial: bool = False
    territory: str | None = Field(default=None, pattern="^[A-Za-z]{2}$")
    files: list[str] | None = Field(default=None, description="default: every file")


class FileLink(BaseModel):
    name: str
    sha256: str
    size: int
    url: str = Field(description="short-lived: a presigned S3 URL or /downloads/<token>")


class DeliveryOut(BaseModel):
    seq: int = Field(description="the data.delivered ledger entry")
    leaf_hash: str
    agreement: str
    version: str
    expires: str
    files: list[FileLink]


class DeliveryPublic(BaseModel):
    seq: int
    agreement: str
    member: str
    version: str
    purpose: str
    files: list[dict[str, Any]]
    expires: str
    created_at: str


class ReceiptOut(BaseModel):
    delivery: DeliveryPublic
    entry: str = Field(description="base64 of the data.delivered entry's exact bytes")
    proof: str = Field(description="a c2sp.org/tlog-proof@v1 bundle for the entry")


@router.post("/deliveries", status_code=status.HTTP_201_CREATED, response_model=DeliveryOut)
def request_delivery(
    body: DeliveryIn, request: Request, caller: CurrentMember, exchange: ExchangeDep
) -> Any:
    """Deliver a licensed version's files: recorded as ``data.delivered``, with download URLs."""
    require_role(caller, "buyer")
    wanted = service.DeliveryRequest(
        version=body.version,
        purpose=body.purpose,
        commercial=body.commercial,
        territory=body.territory.upper() if body.territory else None,
        files=tuple(body.files) if body.files is not None else None,
    )
    base_url = exchange.settings.public_url or str(request.base_url).rstrip("/")
    with exchange.transaction() as session:
        service.version_exists(session, body.version)
        try:
            return service.deliver(
                session,
                wanted,
                caller=caller,
                log_signer=exchange.log_signer,
                store=exchange.store,
                ttl_seconds=exchange.settings.download_ttl,
                base_url=base_url,
            )
        except LicensingError as exc:  # an unknown purpose, say
            raise InvalidInput(str(exc)) from None


@router.get("/deliveries", response_model=list[DeliveryPublic])
def list_deliveries(caller: CurrentMember, exchange: ExchangeDep) -> Any:
    with exchange.reading() as session:
        return [service.delivery_public(d) for d in service.deliveries_of(session, caller.id)]


@router.get("/deliveries/{seq}/receipt", response_model=ReceiptOut)
def receipt(seq: SeqPath, caller: CurrentMember, exchange: ExchangeDep) -> ReceiptOut:
    """The delivery's ledger entry with an offline inclusion proof (the buyer's receipt)."""
    with exchange.transaction() as session:
        row = service.visible_delivery(session, seq, caller)
        bundle = ledger_service.proof_bundle(
            session, exchange.log_signer, seq, policy=exchange.witnesses.policy
        )
        data = ledger_service.entry_bytes(session, seq)
        public = service.delivery_public(row)
    return ReceiptOut(
        delivery=DeliveryPublic(**public), entry=b64encode(data), proof=bundle.to_text()
    )


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``[start, end)`` of a single-range ``Range`` header; None for the whole blob."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise InvalidRange(start=0, end=0, size=size)
    first, last = match.groups()
    if first == "":  # the last N bytes
        return max(size - int(last), 0), size
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size or end <= start:
        raise InvalidRange(start=start, end=end, size=size)
    return start, end


def _attachment(name: str) -> str:
    """A Content-Disposition for a file's base name: RFC 6266 with RFC 8187 UTF-8 encoding (a
    name may hold quotes or any Unicode)."""
    base = name.rsplit("/", 1)[-1]
    return f"attachment; filename*=UTF-8''{quote(base, safe='')}"


@router.get(
    "/downloads/{token}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        206: {"description": "the requested range", "content": {"application/octet-stream": {}}},
        **problem_responses(416),
    },
)
def download(
    token: str,
    exchange: ExchangeDep,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> StreamingResponse:
    """Stream a delivered file (the token is the capability; ``Range`` resumes a download)."""
    now = datetime.now(UTC)
    claims = service.DownloadClaims.from_token(
        token, service.token_key(exchange.log_signer), now=now
    )
    with exchange.reading() as session:
        service.check_download(session, claims, now=now)
    byte_range = _byte_range(range_header, claims.size)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{claims.sha256}"',
        "Content-Disposition": _attachment(claims.name),
        "Cache-Control": "private, no-store",
    }
    start, end = byte_range or (0, claims.size)
    # read_range checks the whole blob against its digest before the first byte goes out (the
    # local store remembers blobs it verified), so corrupted bytes are never served.
    reader = exchange.store.read_range(claims.sha256, start, end)
    headers["Content-Length"] = str(end - start)
    if byte_range is None:
        return StreamingResponse(reader, media_type="application/octet-stream", headers=headers)
    headers["Content-Range"] = f"bytes {start}-{end - 1}/{claims.size}"
    return StreamingResponse(
        reader, status_code=206, media_type="application/octet-stream", headers=headers
    )
