"""Catalogue search: full text (SQLite FTS5 / PostgreSQL tsvector) with exact filters and pages.

The text index is kept by the database (migration 0002); this module only builds queries, one
per dialect for the ranking, sharing every filter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    and_,
    exists,
    func,
    literal_column,
    select,
    text,
)
from sqlmodel import Session, col

from catalog.models import Dataset, DatasetLabel

MAX_PAGE_SIZE = 100
_WORD = re.compile(r"[\w-]+", re.UNICODE)
PG_DOCUMENT = (
    "setweight(to_tsvector('simple', coalesce(dataset.title, '')), 'A') || "
    "setweight(to_tsvector('simple', coalesce(dataset.tags, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(dataset.description, '')), 'B') || "
    "setweight(to_tsvector('english', coalesce(dataset.card, '')), 'C')"
)


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""
    languages: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    provider: str | None = None
    min_bytes: int | None = None
    max_bytes: int | None = None
    page: int = 1
    per_page: int = 20


@dataclass(frozen=True)
class SearchPage:
    total: int
    page: int
    per_page: int
    datasets: list[Dataset] = field(default_factory=list)


def _has_label(kind: str, values: tuple[str, ...]) -> ColumnElement[bool]:
    """The dataset has at least one of ``values`` for ``kind``."""
    return exists().where(
        col(DatasetLabel.dataset_id) == col(Dataset.id),
        col(DatasetLabel.kind) == kind,
        col(DatasetLabel.value).in_(values),
    )


def _filters(query: SearchQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    labelled = (("language", query.languages), ("domain", query.domains), ("tag", query.tags))
    for kind, values in labelled:
        if values:
            conditions.append(_has_label(kind, values))
    if query.provider:
        conditions.append(col(Dataset.provider) == query.provider)
    if query.min_bytes is not None:
        conditions.append(col(Dataset.size_bytes) >= query.min_bytes)
    if query.max_bytes is not None:
        conditions.append(col(Dataset.size_bytes) <= query.max_bytes)
    return conditions


def fts5_query(words: list[str]) -> str:
    """Each word as a quoted prefix term, ANDed: user text can never be FTS5 syntax."""
    return " ".join('"' + word.replace('"', '""') + '"*' for word in words)


def search(session: Session, query: SearchQuery) -> SearchPage:
    per_page = max(1, min(query.per_page, MAX_PAGE_SIZE))
    page = max(1, query.page)
    words = _WORD.findall(query.text)[:16]
    conditions = _filters(query)
    dialect = session.get_bind().dialect.name
    if words and dialect == "sqlite":
        return _search_fts5(session, words, conditions, page=page, per_page=per_page)
    rank: ColumnElement[float] | None = None
    if words:
        tsquery = func.to_tsquery("english", " & ".join(w + ":*" for w in _pg_safe(words)))
        document: ColumnElement[object] = literal_column(PG_DOCUMENT)
        conditions.append(document.op("@@")(tsquery))
        rank = -func.ts_rank(document, tsquery)
    where = and_(True, *conditions)
    total = session.execute(select(func.count()).select_from(Dataset).where(where)).scalar_one()
    newest_first = [col(Dataset.updated_at).desc(), col(Dataset.slug)]
    order = [rank, col(Dataset.slug)] if rank is not None else newest_first
    offset = (page - 1) * per_page
    statement = select(Dataset).where(where).order_by(*order).offset(offset).limit(per_page)
    rows = session.execute(statement).scalars().all()
    return SearchPage(int(total), page, per_page, list(rows))


def _search_fts5(
    session: Session,
    words: list[str],
    conditions: list[ColumnElement[bool]],
    *,
    page: int,
    per_page: int,
) -> SearchPage:
    """SQLite: one FTS5 scan gives every match with its bm25 (a materialised CTE joined to
    ``dataset``). Ranking with a correlated ``bm25`` subquery instead re-ran the MATCH for every
    matching row: a common word over 100,000 datasets took tens of seconds (benchmarks/)."""
    matches = (
        text(
            "SELECT rowid AS id, bm25(dataset_fts, 10.0, 10.0, 4.0, 1.0) AS score "
            "FROM dataset_fts WHERE dataset_fts MATCH :fts"
        )
        .bindparams(fts=fts5_query(words))
        .columns(id=Integer, score=Float)
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )
    where = and_(True, *conditions)
    joined = matches.c.id == col(Dataset.id)
    total = session.execute(
        select(func.count()).select_from(matches).join(Dataset, joined).where(where)
    ).scalar_one()
    statement = (
        select(Dataset)
        .join(matches, joined)
        .where(where)
        .order_by(matches.c.score, col(Dataset.slug))
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    rows = session.execute(statement).scalars().all()
    return SearchPage(int(total), page, per_page, list(rows))


def _pg_safe(words: list[str]) -> list[str]:
    """Words reduced to characters that to_tsquery cannot read as operators."""
    cleaned = [re.sub(r"[^\w]", "", word) for word in words]
    return [word for word in cleaned if word] or ["_"]
