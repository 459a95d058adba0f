"""Dependencies shared by the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from exchange.context import Exchange
from exchange.errors import Forbidden, InvalidInput, Unauthenticated
from exchange.members import authenticate
from exchange.models import Member
from exchange.witnessing import WitnessCollector

_bearer = HTTPBearer(auto_error=False, description="an API token issued by the exchange")


def get_exchange(request: Request) -> Exchange:
    exchange: Exchange = request.app.state.exchange
    return exchange


ExchangeDep = Annotated[Exchange, Depends(get_exchange)]


def get_witnesses(request: Request) -> WitnessCollector | None:
    witnesses: WitnessCollector | None = request.app.state.witnesses
    return witnesses


WitnessesDep = Annotated[WitnessCollector | None, Depends(get_witnesses)]


def current_member(
    exchange: ExchangeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Member:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("send an API token as 'Authorization: Bearer <token>'")
    # Authentication only reads: on SQLite a write transaction here would queue every request,
    # reads included, behind the database's one write lock.
    with exchange.reading() as session:
        return authenticate(session, credentials.credentials)


CurrentMember = Annotated[Member, Depends(current_member)]


def refuse_nul(request: Request) -> None:
    """No id, name or search term on the exchange holds a NUL character, and PostgreSQL cannot
    even compare one: refuse it in the path or the query of any request, on every database."""
    query = request.query_params.multi_items()
    if "\x00" in request.url.path or any("\x00" in k + v for k, v in query):
        raise InvalidInput("the request's path or query contains a NUL character")


def require_role(member: Member, *roles: str) -> None:
    if not member.role_set & set(roles):
        raise Forbidden(f"{member.id} needs one of the roles {', '.join(roles)}")
