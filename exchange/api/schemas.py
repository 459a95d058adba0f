"""Request and response bodies; one schema per entity and direction."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

MAX_INTEGER = 2**63 - 1
"""The largest integer any column holds (a signed 64-bit BIGINT): a number above it names
nothing, and must be refused as input rather than overflow the database driver."""

NO_NUL = r"^[^\x00]*$"
"""A pattern for stored text: PostgreSQL cannot store a NUL, so no database of ours does."""

SeqPath = Annotated[int, Path(ge=0, le=MAX_INTEGER, description="a ledger sequence number")]
SeqQuery = Annotated[int, Query(ge=0, le=MAX_INTEGER, description="a ledger sequence number")]
SizeQuery = Annotated[int, Query(ge=1, le=MAX_INTEGER, description="a tree size")]


PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """An RFC 9457 problem details object: how every error of the API is answered."""

    type: str = Field(examples=["about:blank"])
    title: str = Field(examples=["Forbidden"])
    status: int = Field(examples=[403])
    detail: str = Field(description="what was wrong, in words a person can act on")
    instance: str = Field(description="the path of the request")


_PROBLEM_STATUSES = {
    400: "a body that cannot be read as JSON text at all (not UTF-8, say)",
    401: "no API token, or an unknown or revoked one (or a bad download token)",
    403: "the caller's role, ownership or signature does not allow this",
    404: "no such resource, or another member's private one",
    409: "a conflict with the current state: a replayed nonce, a name taken, no funds",
    413: "the request body is too large",
    416: "a Range outside the file",
    422: "malformed or contradictory input",
    503: "temporarily unavailable (overloaded, or a store down): retry after Retry-After",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entries documenting these problem statuses (for the OpenAPI page)."""
    schema = Problem.model_json_schema()
    return {
        status: {
            "description": _PROBLEM_STATUSES[status],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
        }
        for status in statuses
    }


PROBLEMS = problem_responses(400, 401, 403, 404, 409, 422, 503)
"""What any route may answer besides its success (set on the app, so every route, including
those added later, documents them)."""


class StatementIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    type: str = Field(examples=["attest.evaluation"])
    body: dict[str, Any]
    member: str
    key_id: str
    nonce: str
    time: str = Field(examples=["2026-11-28T12:00:00.000Z"])
    log: str = Field(description="origin of the log the statement is addressed to")


class SignedStatementIn(BaseModel):
    """A statement and the member's Ed25519 signature over its canonical bytes (base64)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    statement: StatementIn
    signature: str


class KeyPublic(BaseModel):
    key_id: str
    public_key: str
    added_seq: int
    revoked_seq: int | None


class MemberPublic(BaseModel):
    id: str
    name: str
    roles: list[str]
    registered_seq: int
    keys: list[KeyPublic] = []


class MemberRegistered(BaseModel):
    member: MemberPublic
    token: str = Field(description="the member's API token; shown once, stored only hashed")
    seq: int


class EntryRecorded(BaseModel):
    seq: int
    leaf_hash: str
    time: str


class TokenIssued(BaseModel):
    id: str
    token: str


class TokenPublic(BaseModel):
    id: str
    label: str
    created_at: str
    revoked: bool


class EntryPublic(BaseModel):
    seq: int
    leaf_hash: str
    entry: dict[str, Any]
    canonical: str = Field(description="base64 of the entry's canonical bytes (the Merkle leaf)")


class InclusionProofOut(BaseModel):
    seq: int
    size: int
    leaf_hash: str
    proof: list[str] = Field(description="base64 hashes, RFC 9162 order")
    checkpoint: str | None = Field(description="the signed checkpoint at this size, if issued")


class ConsistencyProofOut(BaseModel):
    size1: int
    size2: int
    proof: list[str]


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(default="", max_length=100, pattern=NO_NUL)
