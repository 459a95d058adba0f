"""Small builders shared by the licensing tests: version ids, times, grants and uses."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from licensing.evaluation import Grant, Use
from licensing.terms import Terms

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
DAY = timedelta(days=1)
MEMBER = "acme"


def version(n: object) -> str:
    return "sha256:" + hashlib.sha256(str(n).encode()).hexdigest()


def digest(n: object) -> str:
    return hashlib.sha256(f"bytes {n}".encode()).hexdigest()


V1, V2, V3 = version(1), version(2), version(3)


def grant(
    agreement: str = "a1",
    *,
    assignee: str | None = MEMBER,
    target: str = V1,
    terms: Terms | None = None,
    valid_from: datetime = T0,
    valid_until: datetime | None = None,
    revoked_at: datetime | None = None,
    revocation_reason: str | None = None,
    **terms_fields: Any,
) -> Grant:
    return Grant(
        agreement,
        assignee,
        target,
        terms if terms is not None else Terms(**terms_fields),
        valid_from,
        valid_until,
        revoked_at,
        revocation_reason,
    )


def use(
    at: datetime = T0 + DAY,
    *,
    member: str = MEMBER,
    target: str = V1,
    purpose: str = "training",
    commercial: bool = False,
    territory: str | None = None,
) -> Use:
    return Use(member, target, purpose, commercial, territory, at)
