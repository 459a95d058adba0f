"""The provider's side of publishing: ingest locally, upload what is missing, sign, publish.

The CLI wraps this with progress bars; tests and scripts call it directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.documents import IngestOptions
from catalog.ingest import IngestProgress, SourceFile, ingest, scan
from catalog.manifest import VersionManifest
from exchange.client import ClientError, ExchangeClient
from exchange.lineage import Declared
from exchange.publishing import PUBLISHED, statement_body


@dataclass(frozen=True)
class PublishResult:
    version: dict[str, Any]
    manifest: VersionManifest
    label: str
    uploaded: int
    already_stored: int


@dataclass
class PublishProgress:
    """Hooks for long work: hashing (bytes read so far) and uploading (bytes per chunk)."""

    started_hashing: Callable[[int], None] = lambda total: None
    hashed: Callable[[IngestProgress], None] = lambda progress: None
    started_upload: Callable[[int], None] = lambda total: None
    uploaded: Callable[[int], None] = lambda n: None


def publish_corpus(
    client: ExchangeClient,
    paths: Sequence[Path],
    *,
    slug: str,
    label: str | None = None,
    meta: dict[str, Any] | None = None,
    options: IngestOptions | None = None,
    workers: int = 2,
    progress: PublishProgress | None = None,
    lineage: Declared | None = None,
) -> PublishResult:
    """``lineage``: for a derived version, its sources (and agreements) and how it was made."""
    hooks = progress or PublishProgress()
    sources = scan(paths)
    hooks.started_hashing(sum(source.size for source in sources))
    manifest = ingest(sources, options=options, workers=workers, progress=hooks.hashed)
    to_send = _missing_sources(client, sources, manifest)
    hooks.started_upload(sum(source.size for source in to_send.values()))
    for digest, source in to_send.items():
        client.upload_blob(digest, source.path, progress=hooks.uploaded)
    version_label = label or _next_label(client, slug)
    body = publication_request(
        client, manifest, slug=slug, label=version_label, meta=meta, lineage=lineage
    )
    version = client.publish_version(slug, body)
    stored = len({f.sha256 for f in manifest.files}) - len(to_send)
    return PublishResult(version, manifest, version_label, len(to_send), stored)


def publication_request(
    client: ExchangeClient,
    manifest: VersionManifest,
    *,
    slug: str,
    label: str,
    meta: dict[str, Any] | None = None,
    lineage: Declared | None = None,
) -> dict[str, Any]:
    """The body of ``POST /datasets/SLUG/versions``, its statement signed here.

    Sending the same body again is safe: if the first attempt was recorded (the answer lost
    in a crash, say), the exchange refuses the second with 409 — the version exists.
    """
    signed = client.sign(PUBLISHED, statement_body(slug, label, manifest, lineage))
    body: dict[str, Any] = {
        "label": label,
        "meta": {k: v for k, v in (meta or {}).items() if v is not None},
        "manifest": manifest.to_json(),
        "signed": signed.to_json(),
    }
    if lineage is not None:
        body.update(lineage.to_body())
    return body


def _missing_sources(
    client: ExchangeClient, sources: list[SourceFile], manifest: VersionManifest
) -> dict[str, SourceFile]:
    """The files whose bytes the exchange does not hold yet (each distinct blob once)."""
    by_name = {source.name: source for source in sources}
    missing = set(client.missing_blobs(sorted({f.sha256 for f in manifest.files})))
    return {f.sha256: by_name[f.name] for f in manifest.files if f.sha256 in missing}


def _next_label(client: ExchangeClient, slug: str) -> str:
    try:
        existing = client.dataset(slug)
    except ClientError as exc:
        if exc.status == 404:
            return "v1"
        raise
    return f"v{len(existing['versions']) + 1}"
