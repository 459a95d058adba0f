"""Catalogue routes: search, datasets, versions, and publishing a version."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from catalog import services as catalog
from catalog.croissant import DatasetInfo, VersionInfo, croissant
from catalog.errors import CatalogError, DatasetNotFound, VersionNotFound
from catalog.manifest import VersionManifest
from catalog.models import Dataset, DatasetVersion
from catalog.proofs import prove_document
from catalog.search import MAX_PAGE_SIZE, SearchQuery, search
from exchange import ledger_service, publishing
from exchange.api.deps import CurrentMember, ExchangeDep, require_role
from exchange.api.schemas import MAX_INTEGER, NO_NUL, SignedStatementIn
from exchange.errors import Forbidden, InvalidInput, NotFound
from exchange.models import Member
from exchange.published import Declared
from exchange.statements import parse_signed_statement

router = APIRouter(tags=["catalogue"])


class DatasetMetaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=300)
    description: str | None = Field(default=None, max_length=20_000)
    card: str | None = Field(default=None, max_length=200_000, description="Markdown")
    licence_summary: str | None = Field(default=None, max_length=500)
    tags: list[str] | None = Field(default=None, max_length=50)
    languages: list[str] | None = Field(default=None, max_length=50)
    domains: list[str] | None = Field(default=None, max_length=50)

    def to_meta(self) -> catalog.DatasetMeta:
        try:
            return catalog.DatasetMeta(
                title=self.title,
                description=self.description,
                card=self.card,
                licence_summary=self.licence_summary,
                tags=tuple(self.tags) if self.tags is not None else None,
                languages=tuple(self.languages) if self.languages is not None else None,
                domains=tuple(self.domains) if self.domains is not None else None,
            )
        except CatalogError as exc:
            raise InvalidInput(str(exc)) from None


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=100, pattern=NO_NUL)
    meta: DatasetMetaIn = DatasetMetaIn()
    manifest: dict[str, Any]
    signed: SignedStatementIn
    method: str | None = Field(
        default=None, description="for a derived version: how (filtered, deduplicated, merged)"
    )
    derived_from: list[dict[str, Any]] | None = Field(
        default=None, description="for a derived version: [{version, agreement}] of its sources"
    )


class VersionSummary(BaseModel):
    id: str
    label: str
    manifest_root: str
    records: int
    size: int
    status: str
    published_seq: int
    created_at: str


class DatasetOut(BaseModel):
    slug: str
    provider: str
    title: str
    description: str
    card: str
    licence_summary: str
    tags: list[str]
    languages: list[str]
    domains: list[str]
    size_bytes: int
    record_count: int
    latest_version: str | None
    versions: list[VersionSummary] = []


class SearchOut(BaseModel):
    total: int
    page: int
    per_page: int
    datasets: list[DatasetOut]


class VersionOut(VersionSummary):
    dataset: str
    stats: dict[str, Any]
    files: list[dict[str, Any]]


def _summary(version: DatasetVersion) -> VersionSummary:
    return VersionSummary(
        id=version.id,
        label=version.label,
        manifest_root=version.manifest_root,
        records=version.record_count,
        size=version.size_bytes,
        status=version.status,
        published_seq=version.published_seq,
        created_at=version.created_at.isoformat(),
    )


def dataset_out(
    session: Session,
    dataset: Dataset,
    *,
    with_versions: bool,
    labels: dict[str, list[str]] | None = None,
) -> DatasetOut:
    """A dataset as the API shows it; ``labels`` if already loaded (a page of results)."""
    labels = labels if labels is not None else catalog.labels(session, dataset)
    versions = [_summary(v) for v in catalog.versions(session, dataset)] if with_versions else []
    return DatasetOut(
        slug=dataset.slug,
        provider=dataset.provider,
        title=dataset.title,
        description=dataset.description,
        card=dataset.card,
        licence_summary=dataset.licence_summary,
        tags=labels["tag"],
        languages=labels["language"],
        domains=labels["domain"],
        size_bytes=dataset.size_bytes,
        record_count=dataset.record_count,
        latest_version=dataset.latest_version,
        versions=versions,
    )


def _found(session: Session, slug: str) -> Dataset:
    try:
        return catalog.get_dataset(session, slug)
    except DatasetNotFound as exc:
        raise NotFound(str(exc)) from None


def _version(session: Session, version_id: str) -> DatasetVersion:
    try:
        return catalog.get_version(session, version_id)
    except VersionNotFound as exc:
        raise NotFound(str(exc)) from None


@router.get("/datasets", response_model=SearchOut)
def search_datasets(
    caller: CurrentMember,
    exchange: ExchangeDep,
    q: Annotated[str, Query(max_length=500, description="full-text query")] = "",
    language: Annotated[list[str] | None, Query()] = None,
    domain: Annotated[list[str] | None, Query()] = None,
    tag: Annotated[list[str] | None, Query()] = None,
    provider: str | None = None,
    min_bytes: Annotated[int | None, Query(ge=0, le=MAX_INTEGER)] = None,
    max_bytes: Annotated[int | None, Query(ge=0, le=MAX_INTEGER)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
) -> SearchOut:
    """Full-text search over titles, tags, descriptions and cards, with exact filters."""
    query = SearchQuery(
        text=q,
        languages=tuple(language or ()),
        domains=tuple(domain or ()),
        tags=tuple(tag or ()),
        provider=provider,
        min_bytes=min_bytes,
        max_bytes=max_bytes,
        page=page,
        per_page=per_page,
    )
    with exchange.reading() as session:
        found = search(session, query)
        page_labels = catalog.labels_of(session, found.datasets)
        return SearchOut(
            total=found.total,
            page=found.page,
            per_page=found.per_page,
            datasets=[
                dataset_out(session, d, with_versions=False, labels=page_labels[d.id or 0])
                for d in found.datasets
            ],
        )


@router.get("/datasets/{slug}", response_model=DatasetOut)
def show_dataset(slug: str, caller: CurrentMember, exchange: ExchangeDep) -> DatasetOut:
    with exchange.reading() as session:
        return dataset_out(session, _found(session, slug), with_versions=True)


@router.patch("/datasets/{slug}", response_model=DatasetOut)
def edit_dataset(
    slug: str, body: DatasetMetaIn, caller: CurrentMember, exchange: ExchangeDep
) -> DatasetOut:
    """Edit a dataset's description (its provider only); versions never change."""
    meta = body.to_meta()
    with exchange.transaction() as session:
        dataset = _found(session, slug)
        if dataset.provider != caller.id:
            raise Forbidden(f"dataset {slug} belongs to {dataset.provider}")
        catalog.update_dataset(session, dataset, meta)
        return dataset_out(session, dataset, with_versions=True)


@router.post(
    "/datasets/{slug}/versions", status_code=status.HTTP_201_CREATED, response_model=VersionOut
)
def publish(slug: str, body: PublishIn, caller: CurrentMember, exchange: ExchangeDep) -> VersionOut:
    """Publish a version whose blobs are uploaded: claims verified, then one transaction."""
    require_role(caller, "provider")
    try:
        manifest = VersionManifest.from_json(body.manifest)
        catalog.check_slug(slug)
    except CatalogError as exc:
        raise InvalidInput(f"manifest: {exc}") from None
    declared = None
    if body.method is not None or body.derived_from is not None:
        declared = Declared.from_json(body.method, body.derived_from)
    publication = publishing.Publication(
        slug=slug,
        label=body.label,
        meta=body.meta.to_meta(),
        manifest=manifest,
        signed=parse_signed_statement(body.signed.model_dump()),
        lineage=declared,
    )
    publishing.check_publication(publication)
    sketch = publishing.verify_claims(
        exchange.store, manifest, verifier=exchange.verifier, transaction=exchange.transaction
    )
    with exchange.transaction() as session:
        done = publishing.record_version(
            session,
            publication,
            caller=caller,
            policy=exchange.statement_policy,
            sketch=sketch,
            log_signer=exchange.log_signer,
        )
        return _version_out(session, done.version)


@router.post("/versions/{version_id}/clear", response_model=VersionOut)
def clear(
    version_id: str, body: SignedStatementIn, caller: CurrentMember, exchange: ExchangeDep
) -> VersionOut:
    """Release a version held for overlap (operators; a signed ``dataset.version.cleared``)."""
    require_role(caller, "operator")
    signed = parse_signed_statement(body.model_dump())
    if signed.statement.body.get("version") != version_id:
        raise InvalidInput("the statement names another version than the URL")
    with exchange.transaction() as session:
        publishing.clear_version(session, signed, caller=caller, policy=exchange.statement_policy)
        return _version_out(session, _version(session, version_id))


def _version_out(session: Session, version: DatasetVersion) -> VersionOut:
    dataset = catalog.dataset_of(session, version)
    files = [
        {
            "name": f.name,
            "sha256": f.sha256,
            "size": f.size,
            "media_type": f.media_type,
            "records": f.record_count,
            "document_root": f.document_root,
        }
        for f in catalog.version_files(session, version.id)
    ]
    return VersionOut(
        **_summary(version).model_dump(), dataset=dataset.slug, stats=version.stats, files=files
    )


@router.get("/versions/{version_id}", response_model=VersionOut)
def show_version(version_id: str, caller: CurrentMember, exchange: ExchangeDep) -> VersionOut:
    with exchange.reading() as session:
        return _version_out(session, _version(session, version_id))


CROISSANT = 'application/ld+json; profile="http://mlcommons.org/croissant/1.1"'


@router.get(
    "/versions/{version_id}/croissant",
    response_class=Response,
    responses={200: {"content": {"application/ld+json": {}}}},
)
def croissant_export(
    version_id: str, request: Request, caller: CurrentMember, exchange: ExchangeDep
) -> Response:
    """The version's Croissant 1.1 metadata (JSON-LD), with its ledger provenance."""
    with exchange.transaction() as session:
        version = _version(session, version_id)
        dataset = catalog.dataset_of(session, version)
        provider = session.get(Member, dataset.provider)
        info = DatasetInfo.from_row(
            dataset,
            languages=catalog.labels(session, dataset)["language"],
            provider_name=provider.display_name if provider else None,
        )
        document = croissant(
            dataset=info,
            version=VersionInfo.from_row(version),
            manifest=VersionManifest.from_bytes(version.manifest),
            base_url=str(request.base_url).rstrip("/"),
        )
    return Response(json.dumps(document, ensure_ascii=False, indent=2), media_type=CROISSANT)


@router.get("/versions/{version_id}/proof")
def document_proof(
    version_id: str,
    caller: CurrentMember,
    exchange: ExchangeDep,
    file: Annotated[str, Query(max_length=1024, description="the file's name in the version")],
    record: Annotated[int | None, Query(ge=0, le=MAX_INTEGER)] = None,
    document: Annotated[str | None, Query(pattern="^[0-9a-f]{64}$", description="SHA-256")] = None,
) -> dict[str, Any]:
    """A bundle proving one document belongs to the version, down to the publishing entry."""
    if (record is None) == (document is None):
        raise InvalidInput("give exactly one of record and document")
    with exchange.transaction() as session:
        version = _version(session, version_id)
        manifest = VersionManifest.from_bytes(version.manifest)
        try:
            named = manifest.file(file)
        except CatalogError:
            raise NotFound(f"version {version_id} has no file {file!r}") from None
        ledger_proof = ledger_service.proof_bundle(
            session, exchange.log_signer, version.published_seq, policy=exchange.witnesses.policy
        )
        entry = ledger_service.entry_bytes(session, version.published_seq)
    with publishing.local_copies(exchange.store, [named.sha256]) as paths:
        bundle = prove_document(
            manifest, name=file, path=paths[named.sha256], record=record, document_sha256=document
        )
    return bundle.with_ledger(proof=ledger_proof, entry=entry).to_json()


@router.get(
    "/versions/{version_id}/manifest",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
def manifest(version_id: str, caller: CurrentMember, exchange: ExchangeDep) -> Response:
    """The canonical manifest bytes, exactly those the version id is the digest of."""
    with exchange.reading() as session:
        data = _version(session, version_id).manifest
    return Response(data, media_type="application/json")
