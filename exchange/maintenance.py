"""Operator housekeeping on the exchange's own data dir: blobs that no version refers to.

A publish that fails after its uploads (claims refused, a crash) leaves blobs no version names.
They are harmless — content-addressed, never served without a version — and a retry reuses them,
so they are reported, and deleted only when the operator asks and only once they are old enough
that no publish still in flight could be about to name them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlmodel import Session, select

from catalog.models import VersionFile
from exchange.context import Exchange
from storage import LocalStore


@dataclass(frozen=True)
class Unreferenced:
    digest: str
    size: int
    age_seconds: float | None


def unreferenced_blobs(exchange: Exchange, *, min_age_seconds: float) -> list[Unreferenced]:
    with Session(exchange.engine) as session:
        referenced = set(session.exec(select(VersionFile.sha256)).all())
    found = []
    now = time.time()
    for digest in exchange.store.iter_digests():
        if digest in referenced:
            continue
        info = exchange.store.stat(digest)
        age = None
        if isinstance(exchange.store, LocalStore):
            age = now - exchange.store.path_of(digest).stat().st_mtime
        if age is None or age >= min_age_seconds:
            found.append(Unreferenced(digest, info.size, age))
    return found


def delete_blobs(exchange: Exchange, blobs: list[Unreferenced]) -> int:
    """Delete these blobs unless a version has come to name them meanwhile."""
    with Session(exchange.engine) as session:
        referenced = set(session.exec(select(VersionFile.sha256)).all())
    deleted = 0
    for blob in blobs:
        if blob.digest not in referenced:
            exchange.store.delete(blob.digest)
            deleted += 1
    return deleted
