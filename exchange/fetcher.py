"""The buyer's side of delivery: fetch a licensed version's files, resumably, and verify them.

``fetch_version`` checks the version's manifest against the version id, asks the exchange for a
delivery (which the exchange records on the ledger), downloads each file to ``NAME.part``
(resuming with HTTP ``Range`` where a previous attempt stopped, retrying dropped connections),
and accepts a file only when its SHA-256 is the manifest's and re-ingesting it reproduces the
manifest entry — record count, document root and all. The delivery's receipt (its ledger entry
and an inclusion proof) is saved beside the files. The download URLs are fetched without the
member's API token: they are capabilities of their own, and may point at another host (S3).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from catalog.errors import CatalogError
from catalog.ingest import verify_file
from catalog.manifest import FileManifest, VersionManifest
from exchange.client import ClientError, ExchangeClient

CHUNK = 1 << 20
RETRIES = 5
RECEIPTS = ".corpusx"


@dataclass
class FetchProgress:
    started: Callable[[int], None] = lambda total: None
    advanced: Callable[[int], None] = lambda n: None
    verifying: Callable[[str], None] = lambda name: None


@dataclass(frozen=True)
class FetchResult:
    delivery: int
    version: str
    files: list[str]
    downloaded_bytes: int
    resumed_bytes: int
    already_present: list[str] = field(default_factory=list)
    receipt: Path | None = None


def fetch_version(
    client: ExchangeClient,
    version: str,
    out_dir: Path,
    *,
    purpose: str,
    commercial: bool = False,
    territory: str | None = None,
    files: Sequence[str] | None = None,
    progress: FetchProgress | None = None,
) -> FetchResult:
    hooks = progress or FetchProgress()
    manifest = _manifest(client, version)
    delivery = client.request_delivery(
        version, purpose=purpose, commercial=commercial, territory=territory, files=files
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    receipt = _save_receipt(client, out_dir, delivery["seq"])
    links = delivery["files"]
    present = [link["name"] for link in links if _is_complete(_target(out_dir, link), link)]
    todo = [link for link in links if link["name"] not in present]
    hooks.started(sum(link["size"] for link in todo))
    downloaded = resumed = 0
    with httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=True) as http:
        for link in todo:
            got, kept = _download(http, link, _target(out_dir, link), hooks)
            downloaded, resumed = downloaded + got, resumed + kept
            hooks.verifying(link["name"])
            _verify(_target(out_dir, link), manifest.file(link["name"]))
    return FetchResult(
        delivery=delivery["seq"],
        version=version,
        files=[link["name"] for link in links],
        downloaded_bytes=downloaded,
        resumed_bytes=resumed,
        already_present=present,
        receipt=receipt,
    )


def _manifest(client: ExchangeClient, version: str) -> VersionManifest:
    data = client.manifest_bytes(version)
    if "sha256:" + hashlib.sha256(data).hexdigest() != version:
        raise ClientError(f"the exchange served a manifest that is not version {version}")
    return VersionManifest.from_bytes(data)


def _target(out_dir: Path, link: dict[str, Any]) -> Path:
    """Where a file goes; names are checked again here so no server can write outside."""
    name = PurePosixPath(link["name"])
    if name.is_absolute() or any(part in ("", ".", "..") for part in name.parts):
        raise ClientError(f"refusing to write a file named {link['name']!r}")
    return out_dir.joinpath(*name.parts)


def _is_complete(path: Path, link: dict[str, Any]) -> bool:
    if not path.is_file() or path.stat().st_size != link["size"]:
        return False
    return _sha256(path) == str(link["sha256"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _download(
    http: httpx.Client, link: dict[str, Any], target: Path, hooks: FetchProgress
) -> tuple[int, int]:
    """Download to ``target.part``, resuming; returns (bytes fetched now, bytes kept)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    size = link["size"]
    kept = part.stat().st_size if part.exists() else 0
    if kept > size:  # not a prefix of this file: start again
        part.unlink()
        kept = 0
    hooks.advanced(kept)
    fetched = 0
    for attempt in range(RETRIES):
        offset = kept + fetched
        if offset == size:
            break
        try:
            fetched += _stream(http, link["url"], part, offset, hooks)
        except httpx.TransportError:
            if attempt == RETRIES - 1:
                raise ClientError(f"{link['name']}: the download kept failing") from None
            time.sleep(min(2**attempt * 0.2, 5))
    if not part.exists():  # an empty file: nothing to fetch
        part.write_bytes(b"")
    if part.stat().st_size != size:
        raise ClientError(f"{link['name']}: got {part.stat().st_size} of {size} bytes")
    part.replace(target)
    return fetched, kept


def _stream(http: httpx.Client, url: str, part: Path, offset: int, hooks: FetchProgress) -> int:
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    written = 0
    with http.stream("GET", url, headers=headers) as response:
        if response.status_code >= 400:
            response.read()
            raise ClientError(_refusal(response))
        if offset and response.status_code != 206:
            raise ClientError("the server ignored the Range request: cannot resume")
        with part.open("ab" if offset else "wb") as out:
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                written += len(chunk)
                hooks.advanced(len(chunk))
    return written


def _refusal(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = response.text[:200]
    return f"download refused: {response.status_code} {detail}"


def _verify(path: Path, claimed: FileManifest) -> None:
    """The file's bytes must hash to the manifest's SHA-256 and reproduce its entry."""
    if _sha256(path) != claimed.sha256:
        bad = path.with_name(path.name + ".bad")
        path.replace(bad)
        raise ClientError(f"{claimed.name}: the bytes do not hash to the manifest's SHA-256")
    try:
        verify_file(path, claimed=claimed)
    except CatalogError as exc:
        raise ClientError(f"{claimed.name}: does not match the manifest: {exc}") from None


def _save_receipt(client: ExchangeClient, out_dir: Path, seq: int) -> Path:
    folder = out_dir / RECEIPTS
    folder.mkdir(exist_ok=True)
    path = folder / f"delivery-{seq}.json"
    path.write_text(json.dumps(client.delivery_receipt(seq), indent=2) + "\n")
    return path
