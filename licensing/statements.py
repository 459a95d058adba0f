"""The bodies of the offer and licence statements, built the same way by client and server.

The client signs ``agreement_body(...)`` and the exchange recomputes it from the offer it holds,
so a buyer signs exactly the terms, price and fee that the exchange records, or the purchase is
refused. Pure (no database), so that the client and the CLI load it cheaply. ``docs/ledger.md``
section 5 specifies the bodies; ``docs/licensing.md`` the terms.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from ledger.entry import format_time, parse_time
from licensing.terms import Price, Terms

__all__ = [
    "AGREEMENT_FIELDS",
    "GRANTED",
    "OFFER_FIELDS",
    "OFFER_PUBLISHED",
    "OFFER_WITHDRAWN",
    "REVOKED",
    "agreement_body",
    "new_agreement_id",
    "new_offer_id",
    "offer_body",
]

OFFER_PUBLISHED, OFFER_WITHDRAWN = "offer.published", "offer.withdrawn"
GRANTED, REVOKED = "licence.granted", "licence.revoked"
OFFER_FIELDS = (
    "offer",
    "dataset",
    "version",
    "terms",
    "price",
    "valid_from",
    "valid_until",
    "buyer",
)
AGREEMENT_FIELDS = (
    "agreement",
    "offer",
    "offer_seq",
    "assigner",
    "assignee",
    "dataset",
    "target",
    "terms",
    "price",
    "fee",
    "valid_from",
    "valid_until",
)


def new_offer_id() -> str:
    return "off_" + secrets.token_hex(12)


def new_agreement_id() -> str:
    return "agr_" + secrets.token_hex(12)


def offer_body(
    *,
    offer_id: str,
    dataset: str,
    version: str | None,
    terms: Terms,
    price: Price,
    valid_from: str,
    valid_until: str | None,
    buyer: str | None,
) -> dict[str, Any]:
    return {
        "offer": offer_id,
        "dataset": dataset,
        "version": version,
        "terms": terms.to_json(),
        "price": price.to_json(),
        "valid_from": valid_from,
        "valid_until": valid_until,
        "buyer": buyer,
    }


def agreement_body(
    offer: dict[str, Any], *, agreement_id: str, buyer: str, version: str, at: str
) -> dict[str, Any]:
    """The agreement a buyer signs for ``offer`` (as ``offer_public`` serves it) at time ``at``.

    It is valid from the moment the buyer signs; terms with a duration end it that many days
    later (the offer's own ``valid_until`` only closes the offer to new buyers).
    """
    terms = Terms.from_json(offer["terms"])
    valid_until = None
    if terms.duration_days is not None:
        valid_until = format_time(parse_time(at) + timedelta(days=terms.duration_days))
    return {
        "agreement": agreement_id,
        "offer": offer["id"],
        "offer_seq": offer["published_seq"],
        "assigner": offer["provider"],
        "assignee": buyer,
        "dataset": offer["dataset"],
        "target": version,
        "terms": offer["terms"],
        "price": offer["price"],
        "fee": offer["fee"],
        "valid_from": at,
        "valid_until": valid_until,
    }
