"""The provider's side of publishing: ingest locally, upload what is missing, sign, publish.

Each file is uploaded as soon as it has been ingested, while the other files are still being
hashed, and the upload names the file, so that the exchange reads it into its own derivation
while this side goes on (``exchange.verification``): the two sides' reads of the corpus overlap
instead of following each other. The CLI wraps this with progress bars; tests and scripts call it
directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.documents import IngestOptions
from catalog.ingest import IngestProgress, SourceFile, ingest, scan
from catalog.manifest import FileManifest, VersionManifest
from exchange.client import ClientError, ExchangeClient
from exchange.published import PUBLISHED, Declared, statement_body

UPLOADS_AT_ONCE = 2
"""Uploads in flight: the exchange reads each one as it is stored, on its own worker."""


@dataclass(frozen=True)
class PublishResult:
    version: dict[str, Any]
    manifest: VersionManifest
    label: str
    uploaded: int
    already_stored: int


@dataclass
class PublishProgress:
    """Hooks for long work: hashing (bytes read so far) and uploading (bytes per chunk).

    ``started_upload`` is called once with the bytes of every file; uploads then start while
    hashing goes on, and a file the exchange already holds counts as uploaded at once."""

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
    total = sum(source.size for source in sources)
    hooks.started_hashing(total)
    hooks.started_upload(total)
    with _Uploader(client, sources, hooks) as uploader:
        manifest = ingest(
            sources, options=options, workers=workers, progress=hooks.hashed, on_file=uploader.add
        )
        uploaded = uploader.finish()
    version_label = label or _next_label(client, slug)
    body = publication_request(
        client, manifest, slug=slug, label=version_label, meta=meta, lineage=lineage
    )
    version = client.publish_version(slug, body)
    stored = len({f.sha256 for f in manifest.files}) - uploaded
    return PublishResult(version, manifest, version_label, uploaded, stored)


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


class _Uploader:
    """Uploads each ingested file the exchange lacks (each distinct blob once), a few at once."""

    def __init__(
        self, client: ExchangeClient, sources: list[SourceFile], hooks: PublishProgress
    ) -> None:
        self._client = client
        self._paths = {source.name: source.path for source in sources}
        self._hooks = hooks
        self._pool = ThreadPoolExecutor(UPLOADS_AT_ONCE, thread_name_prefix="corpusx-upload")
        self._futures: dict[str, Future[bool]] = {}
        self._lock = threading.Lock()  # progress hooks are called from the upload threads

    def __enter__(self) -> _Uploader:
        return self

    def __exit__(self, *_: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def add(self, file: FileManifest) -> None:
        if file.sha256 in self._futures:
            self._progress(file.size)
            return
        self._futures[file.sha256] = self._pool.submit(self._upload, file)

    def finish(self) -> int:
        """Wait for every upload; the number of blobs sent (the first failure is raised)."""
        return sum(future.result() for future in list(self._futures.values()))

    def _upload(self, file: FileManifest) -> bool:
        if not self._client.missing_blobs([file.sha256]):
            self._progress(file.size)
            return False
        answer = self._client.upload_blob(
            file.sha256,
            self._paths[file.name],
            progress=self._progress,
            name=file.name,
            rule=file.document_rule,
        )
        problem = answer.get("problem")
        if problem:
            raise ClientError(f"the exchange cannot read {file.name}: {problem}")
        return True

    def _progress(self, count: int) -> None:
        with self._lock:
            self._hooks.uploaded(count)


def _next_label(client: ExchangeClient, slug: str) -> str:
    try:
        existing = client.dataset(slug)
    except ClientError as exc:
        if exc.status == 404:
            return "v1"
        raise
    return f"v{len(existing['versions']) + 1}"
