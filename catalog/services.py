"""Catalogue use cases over one session: dataset metadata, labels, versions, lookups.

Nothing here commits: the exchange's unit of work does, together with the ledger entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlmodel import Session, col, delete, select

from catalog.errors import CatalogError, DatasetNotFound, VersionNotFound
from catalog.models import SLUG_PATTERN, Dataset, DatasetLabel, DatasetVersion, VersionFile

_SLUG = re.compile(SLUG_PATTERN)
_LABEL = re.compile(r"[\w][\w .+/-]{0,99}", re.UNICODE)
LABEL_KINDS = ("tag", "language", "domain")


@dataclass(frozen=True)
class DatasetMeta:
    """What a provider says about a dataset (all optional on update)."""

    title: str | None = None
    description: str | None = None
    card: str | None = None
    licence_summary: str | None = None
    tags: tuple[str, ...] | None = None
    languages: tuple[str, ...] | None = None
    domains: tuple[str, ...] | None = None
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        given = (("tag", self.tags), ("language", self.languages), ("domain", self.domains))
        for kind, values in given:
            if values is None:
                continue
            for value in values:
                if not _LABEL.fullmatch(value):
                    raise CatalogError(f"{kind} {value!r} is not a label of 1-100 word characters")
            self.labels[kind] = tuple(sorted(set(values)))
        if self.title is not None and not 0 < len(self.title.strip()) <= 300:
            raise CatalogError("title must have 1-300 characters")
        for name in ("title", "description", "card", "licence_summary"):
            if "\x00" in (getattr(self, name) or ""):  # PostgreSQL stores no NUL: neither do we
                raise CatalogError(f"{name} contains a NUL character")


def check_slug(slug: str) -> str:
    if not _SLUG.fullmatch(slug):
        raise CatalogError(f"dataset slug {slug!r} must be 1-64 of a-z, 0-9 and '-'")
    return slug


def find_dataset(session: Session, slug: str) -> Dataset | None:
    return session.exec(select(Dataset).where(Dataset.slug == slug)).first()


def get_dataset(session: Session, slug: str) -> Dataset:
    dataset = find_dataset(session, slug)
    if dataset is None:
        raise DatasetNotFound(f"no dataset {slug!r}")
    return dataset


def create_dataset(session: Session, *, slug: str, provider: str, meta: DatasetMeta) -> Dataset:
    now = datetime.now(UTC)
    dataset = Dataset(
        slug=check_slug(slug),
        provider=provider,
        title=(meta.title or slug).strip(),
        created_at=now,
        updated_at=now,
    )
    session.add(dataset)
    session.flush()  # assigns the id the labels refer to
    return update_dataset(session, dataset, meta)


def update_dataset(session: Session, dataset: Dataset, meta: DatasetMeta) -> Dataset:
    for name in ("title", "description", "card", "licence_summary"):
        value = getattr(meta, name)
        if value is not None:
            setattr(dataset, name, value)
    if meta.tags is not None:
        dataset.tags = " ".join(meta.labels["tag"])
    dataset.updated_at = datetime.now(UTC)
    session.add(dataset)
    session.flush()
    for kind, values in meta.labels.items():
        _replace_labels(session, dataset, kind, values)
    return dataset


def _replace_labels(session: Session, dataset: Dataset, kind: str, values: Iterable[str]) -> None:
    assert dataset.id is not None
    session.execute(
        delete(DatasetLabel).where(
            col(DatasetLabel.dataset_id) == dataset.id, col(DatasetLabel.kind) == kind
        )
    )
    for value in values:
        session.add(DatasetLabel(dataset_id=dataset.id, kind=kind, value=value))
    session.flush()


def labels(session: Session, dataset: Dataset) -> dict[str, list[str]]:
    return labels_of(session, [dataset])[dataset.id or 0]


def labels_of(session: Session, datasets: Sequence[Dataset]) -> dict[int, dict[str, list[str]]]:
    """The labels of several datasets in one query (a search page shows twenty at once)."""
    ids = [d.id for d in datasets if d.id is not None]
    result: dict[int, dict[str, list[str]]] = {i: {k: [] for k in LABEL_KINDS} for i in ids}
    if not ids:
        return result
    rows = session.exec(
        select(DatasetLabel)
        .where(col(DatasetLabel.dataset_id).in_(ids))
        .order_by(col(DatasetLabel.value))
    ).all()
    for row in rows:
        result[row.dataset_id][row.kind].append(row.value)
    return result


def versions(session: Session, dataset: Dataset) -> Sequence[DatasetVersion]:
    return session.exec(
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id == dataset.id)
        .order_by(col(DatasetVersion.published_seq))
    ).all()


def get_version(session: Session, version_id: str) -> DatasetVersion:
    version = session.get(DatasetVersion, version_id)
    if version is None:
        raise VersionNotFound(f"no version {version_id!r}")
    return version


def version_files(session: Session, version_id: str) -> Sequence[VersionFile]:
    return session.exec(
        select(VersionFile)
        .where(VersionFile.version_id == version_id)
        .order_by(col(VersionFile.name))
    ).all()


def dataset_of(session: Session, version: DatasetVersion) -> Dataset:
    dataset = session.get(Dataset, version.dataset_id)
    if dataset is None:  # pragma: no cover - the foreign key makes this impossible
        raise DatasetNotFound(f"version {version.id} has no dataset")
    return dataset


def versions_with_files(
    session: Session, digests: Sequence[str], *, chunk: int = 2_000
) -> dict[str, list[str]]:
    """For each file SHA-256 (hex), the versions that contain a file with those bytes."""
    found: dict[str, list[str]] = {}
    for start in range(0, len(digests), chunk):
        keys = list(digests[start : start + chunk])
        rows = session.exec(
            select(VersionFile.sha256, VersionFile.version_id)
            .where(col(VersionFile.sha256).in_(keys))
            .order_by(col(VersionFile.version_id))
        ).all()
        for digest, version_id in rows:
            found.setdefault(digest, []).append(version_id)
    return found


def existing_versions(session: Session, ids: Sequence[str], *, chunk: int = 2_000) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), chunk):
        keys = list(ids[start : start + chunk])
        found.update(
            session.exec(select(DatasetVersion.id).where(col(DatasetVersion.id).in_(keys))).all()
        )
    return found
