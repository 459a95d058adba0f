"""Metadata-only listings imported from Data Provenance Initiative dataset cards.

``corpusx catalog import-dpi DIR`` sends the summaries; the exchange parses them
(``licensing.dpi``), creates or updates one catalogue dataset per DPI dataset (no versions: the
exchange holds no bytes of it), records its licences, creators and "Derived from Datasets" links,
and classifies its use — commercial, non-commercial, academic-only or unspecified — from its own
licences and, separately, with everything it inherits through lineage. Lineage is resolved across
every DPI listing on the exchange, not only the batch being imported, so importing a collection
in parts gives the same classes as importing it whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from catalog import services as catalog
from catalog.errors import CatalogError
from catalog.models import Dataset
from exchange.errors import Forbidden, InvalidInput
from exchange.models import Member
from licensing.dpi import DpiDataset, classify_collection, datasets_from_summary, references
from licensing.errors import LicensingError
from licensing.models import ListingLicence, ListingSource

DPI = "dpi"
MAX_DATASETS = 10_000
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_LABEL = re.compile(r"[^\w .+/-]+", re.UNICODE)


def slug_for(uid: str) -> str:
    slug = _NOT_SLUG.sub("-", uid.lower()).strip("-")[:60].strip("-")
    return f"dpi-{slug or 'dataset'}"


def import_dpi(
    session: Session, summaries: Mapping[str, object], *, caller: Member
) -> list[dict[str, Any]]:
    """Create or update the listings of ``summaries`` (file name -> parsed JSON)."""
    if not caller.role_set & {"provider", "operator"}:
        raise Forbidden("importing listings needs the provider or operator role")
    try:
        batch = [
            d for name, content in summaries.items() for d in datasets_from_summary(name, content)
        ]
    except LicensingError as exc:
        raise InvalidInput(f"DPI summaries: {exc}") from None
    if not 0 < len(batch) <= MAX_DATASETS:
        raise InvalidInput(f"import 1-{MAX_DATASETS} datasets at a time")
    uids = [d.uid for d in batch]
    if len(set(uids)) != len(uids):
        raise InvalidInput("a DPI dataset appears twice in the summaries")
    known = {d.uid: d for d in _stored_datasets(session)}
    everything = {**known, **{d.uid: d for d in batch}}
    classes = classify_collection(list(everything.values()))
    named = references(list(everything.values()))
    listed = {
        uid: _listing(session, dataset, classes[uid], caller)
        for uid, dataset in ((d.uid, d) for d in batch)
    }
    session.flush()
    # Every listing's links and classes are recomputed: sources may have arrived only now.
    for uid in known.keys() - listed.keys():
        row = session.exec(
            select(ListingLicence).where(
                ListingLicence.origin == DPI, ListingLicence.external_id == uid
            )
        ).one()
        row.use_class, row.inherited_use_class = classes[uid].own, classes[uid].inherited
        row.details = {
            **row.details,
            "unknown_licences": list(classes[uid].unknown_licences),
            "unresolved_sources": list(classes[uid].unresolved_sources),
        }
        session.add(row)
        found = session.get(Dataset, row.dataset_id)
        assert found is not None  # the foreign key
        listed[uid] = found
    for uid in everything:
        _store_sources(session, listed[uid], named[uid], listed)
    session.flush()
    return [
        {
            "uid": d.uid,
            "slug": listed[d.uid].slug,
            "name": d.name,
            "own": classes[d.uid].own.value,
            "inherited": classes[d.uid].inherited.value,
            "unknown_licences": list(classes[d.uid].unknown_licences),
            "unresolved_sources": list(classes[d.uid].unresolved_sources),
        }
        for d in batch
    ]


def _stored_datasets(session: Session) -> list[DpiDataset]:
    rows = session.exec(select(ListingLicence).where(ListingLicence.origin == DPI)).all()
    return [_from_details(row.details["dataset"]) for row in rows]


def _from_details(value: dict[str, Any]) -> DpiDataset:
    return DpiDataset(
        uid=value["uid"],
        name=value["name"],
        collection=value["collection"],
        licences=tuple((name, url) for name, url in value["licences"]),
        creators=tuple(value["creators"]),
        languages=tuple(value["languages"]),
        derived_from=tuple(value["derived_from"]),
        description=value["description"],
        urls=dict(value["urls"]),
    )


def _labels(values: tuple[str, ...]) -> tuple[str, ...]:
    cleaned = (_LABEL.sub(" ", v).strip()[:100] for v in values)
    return tuple(sorted({v for v in cleaned if v and v[0].isalnum()}))[:50]


def _card(dataset: DpiDataset) -> str:
    lines = (
        [f"# {dataset.name}", "", dataset.description, ""]
        if dataset.description
        else [
            f"# {dataset.name}",
            "",
        ]
    )
    lines += [
        f"Imported from the Data Provenance Initiative collection *{dataset.collection}*.",
        "",
    ]
    if dataset.creators:
        lines += ["**Creators:** " + ", ".join(dataset.creators), ""]
    lines += ["**Licences:**", *[f"- {n}" + (f" <{u}>" if u else "") for n, u in dataset.licences]]
    if dataset.derived_from:
        lines += ["", "**Derived from:**", *[f"- {name}" for name in dataset.derived_from]]
    if dataset.urls:
        lines += ["", *[f"- {k}: <{v}>" for k, v in sorted(dataset.urls.items())]]
    return "\n".join(lines) + "\n"


def _listing(session: Session, dataset: DpiDataset, classes: Any, caller: Member) -> Dataset:
    licence_names = "; ".join(name for name, _ in dataset.licences) or "unspecified"
    meta = catalog.DatasetMeta(
        title=dataset.name[:300] or dataset.uid,
        description=dataset.description[:20_000],
        card=_card(dataset),
        licence_summary=f"{licence_names} ({classes.inherited.value})"[:500],
        tags=_labels(("dpi", dataset.collection)),
        languages=_labels(dataset.languages),
    )
    row = session.exec(
        select(ListingLicence).where(
            ListingLicence.origin == DPI, ListingLicence.external_id == dataset.uid
        )
    ).first()
    try:
        if row is None:
            listing = catalog.create_dataset(
                session, slug=_free_slug(session, dataset.uid), provider=caller.id, meta=meta
            )
        else:
            found = session.get(Dataset, row.dataset_id)
            assert found is not None  # the foreign key
            listing = found
            if listing.provider != caller.id and "operator" not in caller.role_set:
                raise Forbidden(f"listing {listing.slug} was imported by {listing.provider}")
            catalog.update_dataset(session, listing, meta)
    except CatalogError as exc:
        raise InvalidInput(f"DPI dataset {dataset.uid!r}: {exc}") from None
    assert listing.id is not None
    details = {
        "dataset": {**asdict(dataset), "licences": [list(pair) for pair in dataset.licences]},
        "unknown_licences": list(classes.unknown_licences),
        "unresolved_sources": list(classes.unresolved_sources),
    }
    values = {
        "origin": DPI,
        "external_id": dataset.uid,
        "licences": [{"name": n, "url": u} for n, u in dataset.licences],
        "creators": list(dataset.creators),
        "use_class": classes.own.value,
        "inherited_use_class": classes.inherited.value,
        "details": details,
    }
    if row is None:
        session.add(ListingLicence(dataset_id=listing.id, **values))
    else:
        for name, value in values.items():
            setattr(row, name, value)
        session.add(row)
    return listing


def _free_slug(session: Session, uid: str) -> str:
    base = slug_for(uid)
    slug, n = base, 2
    while catalog.find_dataset(session, slug) is not None:
        slug = f"{base[:60]}-{n}"
        n += 1
    return slug


def _store_sources(
    session: Session,
    listing: Dataset,
    named: list[tuple[str, frozenset[str] | None]],
    listed: Mapping[str, Dataset],
) -> None:
    """The listing's "Derived from" links, each to the listed dataset it names (if exactly one:
    a collection name names several, and the link keeps only the name)."""
    assert listing.id is not None
    session.execute(delete(ListingSource).where(col(ListingSource.dataset_id) == listing.id))
    wanted = {uid for _, matches in named if matches and len(matches) == 1 for uid in matches}
    ids = {uid: listed[uid].id for uid in wanted}
    for position, (name, matches) in enumerate(named):
        only = next(iter(matches)) if matches and len(matches) == 1 else None
        session.add(
            ListingSource(
                dataset_id=listing.id,
                position=position,
                name=name[:500],
                source_dataset_id=ids.get(only) if only else None,
            )
        )


def listing_of(session: Session, dataset: Dataset) -> dict[str, Any] | None:
    row = session.get(ListingLicence, dataset.id)
    if row is None:
        return None
    sources = session.exec(
        select(ListingSource)
        .where(ListingSource.dataset_id == dataset.id)
        .order_by(col(ListingSource.position))
    ).all()
    slugs = {
        d.id: d.slug
        for d in session.exec(
            select(Dataset).where(
                col(Dataset.id).in_([s.source_dataset_id for s in sources if s.source_dataset_id])
            )
        ).all()
    }
    return {
        "origin": row.origin,
        "external_id": row.external_id,
        "licences": row.licences,
        "creators": row.creators,
        "use_class": row.use_class,
        "inherited_use_class": row.inherited_use_class,
        "unknown_licences": row.details.get("unknown_licences", []),
        "unresolved_sources": row.details.get("unresolved_sources", []),
        "derived_from": [
            {
                "name": s.name,
                "dataset": slugs.get(s.source_dataset_id) if s.source_dataset_id else None,
            }
            for s in sources
        ],
    }
