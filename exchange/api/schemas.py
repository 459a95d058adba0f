"""Request and response bodies; one schema per entity and direction."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    label: str = Field(default="", max_length=100)
