"""A small Python client of the exchange's HTTP API; the CLI is built on it.

Statements are signed here, on the client, with the member's private key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from exchange.signing import new_statement
from ledger.entry import SignedStatement

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

    def sign(self, entry_type: str, body: dict[str, Any]) -> SignedStatement:
        """A statement signed here with this client's key, addressed to the server's log."""
        if self.key is None or self.member is None:
            raise ClientError(
                "a signing key and member id are needed: pass --key and --member, "
                "or run `corpusx login`"
            )
        return new_statement(entry_type, body, member=self.member, key=self.key, log=self.origin)

    def signed_post(self, path: str, entry_type: str, body: dict[str, Any]) -> Any:
        """Sign a statement with this client's key and POST it."""
        return self.request("POST", path, json=self.sign(entry_type, body).to_json()).json()

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
        self, digest: str, path: Path, *, progress: Callable[[int], None] | None = None
    ) -> Any:
        """Stream a file to the exchange, which stores it only if it hashes to ``digest``."""
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(UPLOAD_CHUNK):
                    if progress is not None:
                        progress(len(chunk))
                    yield chunk

        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        return self.request("PUT", f"/blobs/{digest}", content=chunks(), headers=headers).json()

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
