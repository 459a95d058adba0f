"""Property-based tests of the whole HTTP API from its own OpenAPI document (schemathesis).

Every operation the served document lists is called with generated input — valid by the schema
and deliberately invalid — against the real server, as the operator and as a buyer, on both
databases; routes that name a resource are also called with real ones, so that success bodies
are checked against their schemas too. Every answer must be: no 5xx, a documented status, a
documented content type and headers, and a body that matches the documented schema.

No operation is excluded. Most generated bodies of signed-statement routes are refused (422,
403): the point there is that the refusal is a documented problem, never a server error. The
download route streams bytes: its success bodies are only checked for status and content type.

Two of schemathesis' checks are left out, on purpose:
- ``negative_data_rejection`` expects schema-violating input to be refused, but a query string
  carries no types (an "array" ``version=a&version=b`` or an "object" arrives as text a route
  rightly reads) and HTTP APIs ignore unknown query parameters; and the token set on every
  request overrides the negative cases that drop or mangle the Authorization header.
- ``positive_data_acceptance`` expects schema-valid input to be accepted, which no generated
  statement can be: it must carry a real Ed25519 signature by the caller.

Operations are driven through ``APIOperation.as_strategy`` and ``Case.call_and_validate`` inside
one pytest test with subtests: schemathesis' lazy loader for fixtures
(``schemathesis.pytest.from_fixture``) fails on pytest 9.2 (it sets ``Function._nodeid``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, BaseSchema, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import LiveServer
from tests.integration.world import World, open_world

# Per operation, strategy and run (two databases, two callers): a few minutes in all. A deeper
# hunt: CORPUSX_SCHEMATHESIS_EXAMPLES=200.
EXAMPLES = int(os.environ.get("CORPUSX_SCHEMATHESIS_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def world(
    module_live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    built = open_world(module_live_server, tmp_path_factory.mktemp("market"))
    yield built
    built.http.close()


@pytest.fixture(params=["operator", "buyer"])
def caller(request: pytest.FixtureRequest) -> str:
    role: str = request.param
    return role


@pytest.fixture
def api(world: World) -> BaseSchema:
    return schemathesis.openapi.from_url(world.live.url + "/openapi.json")


def known_resources(world: World) -> dict[str, dict[str, Any]]:
    """Parameters naming real resources, by path template, so that generated requests also
    reach the success responses (and their documented schemas), not only 404s."""
    token = world.download_path.rsplit("/", 1)[-1]
    digest = world.market.published.version["files"][0]["sha256"]
    proof = {
        "path_parameters": {"version_id": world.version},
        "query": {"file": "part-0.jsonl", "record": 0},
    }
    return {"/versions/{version_id}/proof": proof} | {
        path: {"path_parameters": parameters}
        for path, parameters in {
            "/members/{member_id}": {"member_id": "bob"},
            "/ledger/tile/{path}": {"path": "0/000.p/1"},
            "/ledger/entries/{seq}": {"seq": 0},
            "/ledger/proof/bundle/{seq}": {"seq": 0},
            "/blobs/{digest}": {"digest": digest},
            "/datasets/{slug}": {"slug": "cat-facts"},
            "/datasets/{slug}/listing": {"slug": world.listing},
            "/versions/{version_id}": {"version_id": world.version},
            "/versions/{version_id}/croissant": {"version_id": world.version},
            "/versions/{version_id}/manifest": {"version_id": world.version},
            "/versions/{version_id}/lineage": {"version_id": world.version},
            "/versions/{version_id}/lineage/prov": {"version_id": world.version},
            "/offers/{offer_id}": {"offer_id": world.public_offer},
            "/offers/{offer_id}/odrl": {"offer_id": world.public_offer},
            "/licences/{agreement_id}": {"agreement_id": world.agreement},
            "/licences/{agreement_id}/odrl": {"agreement_id": world.agreement},
            "/accounts/{member_id}": {"member_id": "bob"},
            "/compliance/attestations/{seq}/bundle": {"seq": world.attestation},
            "/deliveries/{seq}/receipt": {"seq": world.delivery},
            "/downloads/{token}": {"token": token},
        }.items()
    }


def test_every_operation_answers_as_documented(
    api: BaseSchema, world: World, caller: str, subtests: pytest.Subtests
) -> None:
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 50
    known = known_resources(world)
    token = world.members[caller].token
    succeeded: set[str] = set()
    for operation in operations:
        with subtests.test(msg=operation.label):
            _explore(operation, token, known.get(operation.path), succeeded)
    # Not vacuous: the success responses of the routes given real resources were validated too.
    reads = {f"GET {path}" for path in known if path != "/blobs/{digest}"}
    assert not reads - succeeded, f"never answered with success: {sorted(reads - succeeded)}"


def _explore(
    operation: APIOperation, token: str, known: dict[str, Any] | None, succeeded: set[str]
) -> None:
    """Generated cases (valid and invalid by the schema), then some for real resources."""
    # One strategy for both modes: an operation without parameters has no invalid input.
    strategies = [
        st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )
    ]
    if known is not None:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, **known))
    for strategy in strategies:

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def explore(case: schemathesis.Case) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            if response.status_code < 300:
                succeeded.add(f"{operation.method.upper()} {operation.path}")

        explore()
