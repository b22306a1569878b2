"""Schemathesis against the gateway's own OpenAPI document (issue 12): generated requests,
with and without credentials, never get a 5xx.  The gateway is real (its log, store and
trust root on disk); requests go straight to the ASGI application."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from clearance.demo.world import World, build_world
from clearance.gateway.app import create_asgi
from clearance.gateway.service import Gateway
from gateway.support import FAST_RINGS


@pytest.fixture(scope="module")
def gateway_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Gateway]]:
    world = build_world(
        tmp_path_factory.mktemp("openapi") / "world", rings=FAST_RINGS, embedded_inspector=False
    )
    gateway = Gateway.open(world.data_dir)
    yield world, gateway
    gateway.close()


@pytest.fixture(scope="module")
def api_schema(gateway_world: tuple[World, Gateway]) -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", create_asgi(gateway_world[1]))


def test_gateway_api_never_answers_5xx(
    api_schema: schemathesis.schemas.BaseSchema, gateway_world: tuple[World, Gateway]
) -> None:
    # schemathesis' pytest plugin does not load under this pytest; drive its Hypothesis
    # strategies directly, one operation at a time.
    world, _ = gateway_world
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert any(op.path == "/api/v1/submissions" for op in operations)
    for operation in operations:

        @settings(
            max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            for role in (None, "vendor", "inspector", "client"):
                token = {} if role is None else {"authorization": f"Bearer {world.token(role)}"}
                case.call_and_validate(headers=token, checks=[not_a_server_error])

        check()
