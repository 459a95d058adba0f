"""Licence-gated delivery: the files of exactly the licensed version, with a ledger receipt.

A buyer asks for a version's files for a purpose. The exchange evaluates the use against the
buyer's agreements (``licensing.evaluation``); if an agreement permits it, one transaction records
``data.delivered`` (signed by the exchange: agreement, buyer, version, purpose, files and their
digests) and the delivery row, and the buyer gets one short-lived URL per file:

- with an S3 store, a presigned URL of the blob;
- otherwise ``/downloads/<token>``, where the token is the exchange's own signed capability:
  ``base64url(JSON claims) "." base64url(HMAC-SHA256(key, claims))`` with the delivery, the
  agreement, the version, the file and an expiry. The key is derived from the log key (HKDF over
  the log key's deterministic Ed25519 signature of a fixed context), so every worker of the
  exchange shares it without another secret to manage, and nobody without the log key can mint
  one. A download re-checks the token, its expiry, and that the agreement is still in force.

A refused delivery (no agreement, expired, revoked, another version, another purpose) records
nothing and names the reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlmodel import Session, col, select

from catalog import services as catalog
from catalog.models import DatasetVersion
from exchange.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from exchange.evaluation import decide_use
from exchange.models import Delivery, Member
from exchange.statements import exchange_statement, record_statement
from ledger.audit import OPERATOR
from ledger.entry import format_time
from ledger.note import Ed25519Signer
from licensing.evaluation import Use
from licensing.models import Agreement
from storage import BlobStore

DELIVERED = "data.delivered"
TOKEN_CONTEXT = b"corpusx/download-token/v1"
MAX_FILES = 10_000
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def token_key(log_signer: Ed25519Signer) -> bytes:
    """The download tokens' HMAC key, derived from the log key (see the module docstring)."""
    seed = log_signer.sign_bytes(TOKEN_CONTEXT)  # Ed25519 is deterministic (RFC 8032)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=TOKEN_CONTEXT).derive(seed)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class DownloadClaims:
    delivery: int
    agreement: str
    version: str
    name: str
    sha256: str
    size: int
    expires: int  # POSIX seconds

    def to_token(self, key: bytes) -> str:
        payload = json.dumps(
            {
                "d": self.delivery,
                "a": self.agreement,
                "v": self.version,
                "n": self.name,
                "h": self.sha256,
                "s": self.size,
                "e": self.expires,
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        mac = hmac.new(key, payload, hashlib.sha256).digest()
        return f"{_b64(payload)}.{_b64(mac)}"

    @classmethod
    def from_token(cls, token: str, key: bytes, *, now: datetime) -> DownloadClaims:
        """The claims of a genuine, unexpired token; ``Unauthenticated`` otherwise."""
        try:
            payload_text, mac_text = token.split(".")
            payload, mac = _unb64(payload_text), _unb64(mac_text)
        except ValueError:
            raise Unauthenticated("the download token is malformed") from None
        if not hmac.compare_digest(mac, hmac.new(key, payload, hashlib.sha256).digest()):
            raise Unauthenticated("the download token was not issued by this exchange")
        try:
            data = json.loads(payload)
            claims = cls(
                delivery=int(data["d"]),
                agreement=str(data["a"]),
                version=str(data["v"]),
                name=str(data["n"]),
                sha256=str(data["h"]),
                size=int(data["s"]),
                expires=int(data["e"]),
            )
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise Unauthenticated("the download token is malformed") from None
        if now.timestamp() >= claims.expires:
            raise Unauthenticated(
                "the download token has expired: ask for a new delivery (corpusx data fetch)"
            )
        return claims


@dataclass(frozen=True)
class DeliveryRequest:
    version: str
    purpose: str
    commercial: bool = False
    territory: str | None = None
    files: tuple[str, ...] | None = None  # None: every file of the version


def deliver(
    session: Session,
    request: DeliveryRequest,
    *,
    caller: Member,
    log_signer: Ed25519Signer,
    store: BlobStore,
    ttl_seconds: int,
    base_url: str,
) -> dict[str, Any]:
    """Record a delivery if an agreement permits the use now; the files' download URLs."""
    now = datetime.now(UTC)
    use = Use(
        member=caller.id,
        version=request.version,
        purpose=request.purpose,
        commercial=request.commercial,
        territory=request.territory,
        at=now,
    )
    decision = decide_use(session, use)
    if not decision.permitted or decision.agreement is None:
        reasons = "; ".join(r.message for r in decision.reasons)
        raise Forbidden(f"{caller.id} is not licensed for this delivery: {reasons}")
    files = _chosen_files(session, request)
    expires = now + timedelta(seconds=ttl_seconds)
    listed: list[dict[str, object]] = [
        {"name": f.name, "sha256": f.sha256, "size": f.size} for f in files
    ]
    body = {
        "agreement": decision.agreement,
        "buyer": caller.id,
        "version": request.version,
        "purpose": request.purpose,
        "commercial": request.commercial,
        "files": listed,
        "expires": format_time(expires),
    }
    entry = record_statement(session, exchange_statement(log_signer, DELIVERED, body))
    session.add(
        Delivery(
            seq=entry.seq,
            agreement_id=decision.agreement,
            member_id=caller.id,
            version_id=request.version,
            purpose=request.purpose,
            files=listed,
            expires_at=expires,
            created_at=now,
        )
    )
    session.flush()
    key = token_key(log_signer)
    urls = []
    for file in files:
        url = store.presigned_url(file.sha256, expires_in=ttl_seconds)
        if url is None:
            claims = DownloadClaims(
                delivery=entry.seq,
                agreement=decision.agreement,
                version=request.version,
                name=file.name,
                sha256=file.sha256,
                size=file.size,
                expires=int(expires.timestamp()),
            )
            url = f"{base_url}/downloads/{claims.to_token(key)}"
        urls.append({"name": file.name, "sha256": file.sha256, "size": file.size, "url": url})
    return {
        "seq": entry.seq,
        "leaf_hash": entry.leaf_hash().hex(),
        "agreement": decision.agreement,
        "version": request.version,
        "expires": format_time(expires),
        "files": urls,
    }


def _chosen_files(session: Session, request: DeliveryRequest) -> list[Any]:
    files = list(catalog.version_files(session, request.version))
    if request.files is None:
        return files
    if not 0 < len(request.files) <= MAX_FILES:
        raise InvalidInput(f"name 1-{MAX_FILES} files, or none for all of them")
    by_name = {f.name: f for f in files}
    unknown = [name for name in request.files if name not in by_name]
    if unknown:
        raise InvalidInput(f"version {request.version} has no file {unknown[0]!r}")
    return [by_name[name] for name in dict.fromkeys(request.files)]


def check_download(session: Session, claims: DownloadClaims, *, now: datetime) -> None:
    """A genuine token still needs its agreement in force and its file in its version."""
    agreement = session.get(Agreement, claims.agreement)
    if agreement is None or agreement.version_id != claims.version:
        raise Forbidden("the download's agreement does not license this version")
    if agreement.revoked_at is not None and agreement.revoked_at <= now:
        raise Forbidden(
            f"agreement {agreement.id} was revoked: {agreement.revocation_reason}; "
            "nothing more is delivered under it"
        )
    if agreement.valid_until is not None and now >= agreement.valid_until:
        raise Forbidden(f"agreement {agreement.id} expired at {format_time(agreement.valid_until)}")
    named = [f for f in catalog.version_files(session, claims.version) if f.name == claims.name]
    if not named or named[0].sha256 != claims.sha256:
        raise Forbidden("the download's file is not in the licensed version")


# -- receipts and listings ------------------------------------------------------------------


def visible_delivery(session: Session, seq: int, caller: Member) -> Delivery:
    row = session.get(Delivery, seq)
    if row is None or (row.member_id != caller.id and not caller.role_set & {OPERATOR, "auditor"}):
        raise NotFound(f"no delivery {seq} of yours")
    return row


def deliveries_of(session: Session, member: str) -> list[Delivery]:
    return list(
        session.exec(
            select(Delivery).where(Delivery.member_id == member).order_by(col(Delivery.seq))
        ).all()
    )


def delivery_public(row: Delivery) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "agreement": row.agreement_id,
        "member": row.member_id,
        "version": row.version_id,
        "purpose": row.purpose,
        "files": row.files,
        "expires": format_time(row.expires_at),
        "created_at": format_time(row.created_at),
    }


def version_exists(session: Session, version_id: str) -> None:
    if session.get(DatasetVersion, version_id) is None:
        raise NotFound(f"no version {version_id!r}")


__all__ = ["DELIVERED", "DeliveryRequest", "DownloadClaims", "check_download", "deliver"]
