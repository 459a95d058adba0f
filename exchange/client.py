"""A small Python client of the exchange's HTTP API; the CLI is built on it.

Statements are signed here, on the client, with the member's private key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.signing import new_statement
from ledger.entry import SignedStatement, format_time
from licensing import statements
from licensing.attestation import ATTESTED, attestation_body
from licensing.compliance import ComplianceReport, TrainingManifest
from licensing.terms import Price, Terms

UPLOAD_CHUNK = 1 << 20


class ClientError(Exception):
    """The exchange refused a request or could not be reached; ``str()`` is one line."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ExchangeClient:
    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        member: str | None = None,
        key: Ed25519PrivateKey | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.server = server.rstrip("/")
        self.member = member
        self.key = key
        self._origin: str | None = None
        self._http = httpx.Client(
            base_url=self.server, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ExchangeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def origin(self) -> str:
        """The origin of the server's log, which every statement names (fetched once)."""
        if self._origin is None:
            self._origin = self.vkey().split("+", 1)[0]
        return self._origin

    # -- transport -------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach the exchange at {self.server}: {exc}") from None
        if response.status_code >= 400:
            raise ClientError(_problem_text(response), status=response.status_code)
        return response

    def get_json(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None).json()

    def get_text(self, path: str) -> str:
        return self.request("GET", path).text

    def get_bytes(self, path: str) -> bytes:
        return self.request("GET", path).content

    def sign(
        self, entry_type: str, body: dict[str, Any], *, now: datetime | None = None
    ) -> SignedStatement:
        """A statement signed here with this client's key, addressed to the server's log."""
        if self.key is None or self.member is None:
            raise ClientError(
                "a signing key and member id are needed: pass --key and --member, "
                "or run `corpusx login`"
            )
        return new_statement(
            entry_type, body, member=self.member, key=self.key, log=self.origin, now=now
        )

    def signed_post(
        self, path: str, entry_type: str, body: dict[str, Any], *, now: datetime | None = None
    ) -> Any:
        """Sign a statement with this client's key and POST it."""
        return self.request(
            "POST", path, json=self.sign(entry_type, body, now=now).to_json()
        ).json()

    def require_member(self) -> str:
        if self.member is None:
            raise ClientError("a member id is needed: pass --member, or run `corpusx login`")
        return self.member

    # -- members ---------------------------------------------------------------------------

    def me(self) -> Any:
        return self.get_json("/me")

    def get_member(self, member_id: str) -> Any:
        return self.get_json(f"/members/{member_id}")

    def members(self) -> Any:
        return self.get_json("/members")

    def register_member(self, body: dict[str, Any]) -> Any:
        return self.signed_post("/members", "member.registered", body)

    def add_key(self, member_id: str, body: dict[str, Any]) -> Any:
        return self.signed_post(f"/members/{member_id}/keys", "member.key.added", body)

    def revoke_key(self, member_id: str, body: dict[str, Any]) -> Any:
        return self.signed_post(f"/members/{member_id}/keys/revoke", "member.key.revoked", body)

    def new_token(self, label: str) -> Any:
        return self.request("POST", "/tokens", json={"label": label}).json()

    def tokens(self) -> Any:
        return self.get_json("/tokens")

    def revoke_token(self, token_id: str) -> None:
        self.request("DELETE", f"/tokens/{token_id}")

    # -- catalogue -------------------------------------------------------------------------

    def missing_blobs(self, digests: list[str]) -> list[str]:
        missing: list[str] = self.request(
            "POST", "/blobs/missing", json={"digests": digests}
        ).json()["missing"]
        return missing

    def upload_blob(
        self,
        digest: str,
        path: Path,
        *,
        progress: Callable[[int], None] | None = None,
        name: str | None = None,
        rule: str | None = None,
    ) -> Any:
        """Stream a file to the exchange, which stores it only if it hashes to ``digest``.

        With ``name`` (the file's name in the corpus) and ``rule`` (its document rule), the
        exchange also reads it as that file right away, so that publishing need not."""
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(UPLOAD_CHUNK):
                    if progress is not None:
                        progress(len(chunk))
                    yield chunk

        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        params = {"name": name, "rule": rule} if name is not None else None
        if params is not None and rule is None:
            del params["rule"]
        # No read timeout: a named upload is answered once the exchange has read the file.
        return self.request(
            "PUT",
            f"/blobs/{digest}",
            content=chunks(),
            headers=headers,
            params=params,
            timeout=httpx.Timeout(self._http.timeout.connect, read=None),
        ).json()

    def publish_version(self, slug: str, body: dict[str, Any]) -> Any:
        return self.request("POST", f"/datasets/{slug}/versions", json=body, timeout=None).json()

    def search(self, **params: Any) -> Any:
        return self.get_json(
            "/datasets", **{k: v for k, v in params.items() if v not in (None, [], "")}
        )

    def dataset(self, slug: str) -> Any:
        return self.get_json(f"/datasets/{slug}")

    def version(self, version_id: str) -> Any:
        return self.get_json(f"/versions/{version_id}")

    def manifest_bytes(self, version_id: str) -> bytes:
        return self.get_bytes(f"/versions/{version_id}/manifest")

    def document_proof(
        self, version_id: str, *, file: str, record: int | None = None, document: str | None = None
    ) -> Any:
        params: dict[str, Any] = {"file": file, "record": record, "document": document}
        return self.get_json(
            f"/versions/{version_id}/proof", **{k: v for k, v in params.items() if v is not None}
        )

    def clear_version(self, version_id: str, reason: str) -> Any:
        body = {"version": version_id, "reason": reason}
        return self.signed_post(f"/versions/{version_id}/clear", "dataset.version.cleared", body)

    def croissant(self, version_id: str) -> Any:
        return self.get_json(f"/versions/{version_id}/croissant")

    # -- offers, licences, accounts ------------------------------------------------------------

    def publish_offer(
        self,
        *,
        dataset: str,
        version: str | None,
        terms: Terms,
        price: Price,
        valid_until: datetime | None = None,
        buyer: str | None = None,
    ) -> Any:
        now = datetime.now(UTC)
        body = statements.offer_body(
            offer_id=statements.new_offer_id(),
            dataset=dataset,
            version=version,
            terms=terms,
            price=price,
            valid_from=format_time(now),
            valid_until=format_time(valid_until) if valid_until else None,
            buyer=buyer,
        )
        return self.signed_post("/offers", statements.OFFER_PUBLISHED, body, now=now)

    def offers(self, **params: Any) -> Any:
        return self.get_json("/offers", **{k: v for k, v in params.items() if v is not None})

    def offer(self, offer_id: str) -> Any:
        return self.get_json(f"/offers/{offer_id}")

    def withdraw_offer(self, offer_id: str, reason: str) -> Any:
        body = {"offer": offer_id, "reason": reason}
        return self.signed_post(f"/offers/{offer_id}/withdraw", statements.OFFER_WITHDRAWN, body)

    def buy(self, offer_id: str, *, version: str | None = None) -> Any:
        """Accept an offer for one exact version: sign the agreement and pay.

        Before signing, the offer the server shows is compared with the provider's own signed
        ``offer.published`` entry, so the buyer signs the terms the provider signed.
        """
        offer = self.offer(offer_id)
        self._check_offer_entry(offer)
        target = version or offer["version"]
        if target is None:
            target = self.dataset(offer["dataset"])["latest_version"]
            if target is None:
                raise ClientError(f"dataset {offer['dataset']} has no published version to buy")
        now = datetime.now(UTC)
        body = statements.agreement_body(
            offer,
            agreement_id=statements.new_agreement_id(),
            buyer=self.require_member(),
            version=target,
            at=format_time(now),
        )
        return self.signed_post(f"/offers/{offer_id}/accept", statements.GRANTED, body, now=now)

    def _check_offer_entry(self, offer: dict[str, Any]) -> None:
        entry = self.entry(offer["published_seq"])["entry"]
        statement = entry["statement"]
        signed = statement["body"]
        expected = {
            "offer": offer["id"],
            "dataset": offer["dataset"],
            "version": offer["version"],
            "terms": offer["terms"],
            "price": offer["price"],
            "buyer": offer["buyer"],
        }
        if (
            statement["type"] != statements.OFFER_PUBLISHED
            or statement["member"] != offer["provider"]
            or any(signed.get(k) != v for k, v in expected.items())
        ):
            raise ClientError(
                f"offer {offer['id']} as served differs from the provider's signed entry "
                f"{offer['published_seq']}: refusing to sign"
            )

    def licences(self, **params: Any) -> Any:
        return self.get_json("/licences", **{k: v for k, v in params.items() if v is not None})

    def licence(self, agreement_id: str) -> Any:
        return self.get_json(f"/licences/{agreement_id}")

    def revoke_licence(self, agreement_id: str, reason: str) -> Any:
        body = {"agreement": agreement_id, "reason": reason}
        return self.signed_post(f"/licences/{agreement_id}/revoke", statements.REVOKED, body)

    def may(self, **params: Any) -> Any:
        return self.get_json("/may", **{k: v for k, v in params.items() if v is not None})

    def odrl(self, kind: str, identifier: str) -> Any:
        return self.get_json(f"/{kind}/{identifier}/odrl")

    def account(self, member_id: str) -> Any:
        return self.get_json(f"/accounts/{member_id}")

    def books(self) -> Any:
        return self.get_json("/accounts")

    def deposit(self, member_id: str, amount: int, reference: str) -> Any:
        body = {"member": member_id, "amount": amount, "reference": reference}
        return self.signed_post(f"/accounts/{member_id}/deposits", "account.deposited", body)

    def withdraw(self, member_id: str, amount: int, reference: str) -> Any:
        body = {"member": member_id, "amount": amount, "reference": reference}
        return self.signed_post(f"/accounts/{member_id}/withdrawals", "account.withdrawn", body)

    def import_dpi(self, summaries: dict[str, Any]) -> Any:
        body = {"summaries": summaries}
        return self.request("POST", "/listings/dpi", json=body, timeout=None).json()

    def listing(self, slug: str) -> Any:
        return self.get_json(f"/datasets/{slug}/listing")

    # -- delivery ------------------------------------------------------------------------------

    def request_delivery(
        self,
        version: str,
        *,
        purpose: str,
        commercial: bool = False,
        territory: str | None = None,
        files: Sequence[str] | None = None,
    ) -> Any:
        body = {
            "version": version,
            "purpose": purpose,
            "commercial": commercial,
            "territory": territory,
            "files": list(files) if files is not None else None,
        }
        return self.request("POST", "/deliveries", json=body).json()

    def deliveries(self) -> Any:
        return self.get_json("/deliveries")

    def delivery_receipt(self, seq: int) -> Any:
        return self.get_json(f"/deliveries/{seq}/receipt")

    # -- compliance and lineage ---------------------------------------------------------------

    def compliance_check(self, manifest: dict[str, Any], *, member: str | None = None) -> Any:
        body = {"manifest": manifest, "member": member}
        return self.request("POST", "/compliance/check", json=body, timeout=None).json()

    def compliance_spdx(self, manifest: dict[str, Any], *, member: str | None = None) -> Any:
        body = {"manifest": manifest, "member": member}
        return self.request("POST", "/compliance/spdx", json=body, timeout=None).json()

    def attest_training(self, manifest: dict[str, Any]) -> Any:
        """Check, then sign the attestation of exactly that manifest and report."""
        report = ComplianceReport.from_json(self.compliance_check(manifest))
        parsed = TrainingManifest.from_json(manifest)
        signed = self.sign(ATTESTED, attestation_body(parsed, report))
        body = {"manifest": manifest, "signed": signed.to_json()}
        return self.request("POST", "/compliance/attestations", json=body, timeout=None).json()

    def attestations(self, member: str | None = None) -> Any:
        return self.get_json("/compliance/attestations", member=member)

    def attestation_bundle(self, seq: int) -> Any:
        return self.get_json(f"/compliance/attestations/{seq}/bundle")

    def lineage(self, version_id: str) -> Any:
        return self.get_json(f"/versions/{version_id}/lineage")

    def lineage_prov(self, version_id: str, fmt: str) -> str:
        return self.request(
            "GET", f"/versions/{version_id}/lineage/prov", params={"format": fmt}
        ).text

    # -- ledger ----------------------------------------------------------------------------

    def attest(self, entry_type: str, body: dict[str, Any]) -> Any:
        return self.signed_post("/ledger/attest", entry_type, body)

    def checkpoint(self) -> str:
        return self.get_text("/ledger/checkpoint")

    def issue_checkpoint(self) -> str:
        return self.request("POST", "/ledger/checkpoint").text

    def vkey(self) -> str:
        return self.get_text("/ledger/vkey").strip()

    def entry(self, seq: int) -> Any:
        return self.get_json(f"/ledger/entries/{seq}")

    def tile(self, path: str) -> bytes:
        return self.get_bytes(f"/ledger/{path}")

    def inclusion_proof(self, seq: int, size: int | None = None) -> Any:
        params: dict[str, int] = {"seq": seq}
        if size is not None:
            params["size"] = size
        return self.get_json("/ledger/proof/inclusion", **params)

    def consistency_proof(self, size1: int, size2: int) -> Any:
        return self.get_json("/ledger/proof/consistency", size1=size1, size2=size2)

    def proof_bundle(self, seq: int) -> str:
        return self.get_text(f"/ledger/proof/bundle/{seq}")

    def anchors(self) -> Any:
        return self.get_json("/ledger/anchors")

    def anchor_now(self) -> Any:
        return self.request("POST", "/ledger/anchors").json()


def _problem_text(response: httpx.Response) -> str:
    try:
        problem = response.json()
        detail = problem.get("detail") or problem.get("title")
    except ValueError:
        detail = response.text[:200] or response.reason_phrase
    return f"{response.status_code} {response.reason_phrase}: {detail}"
