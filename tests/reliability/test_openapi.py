"""schemathesis against the service's own OpenAPI, on a running API process, as a member."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import allow_header_conformance, positive_data_acceptance

from scripts.fake360 import fake_360dialog
from service.app import create_app
from service.settings import Settings
from service.tokens import mint_access_token
from tests.support.inbox import AGENT_A
from tests.support.processes import ServiceProcess, free_port_block
from tests.support.stack import load_stack_env

# The document the running service serves at /schema/openapi.json; building
# the app opens no connection.
_document = create_app(Settings(supabase_url="http://schema.invalid")).openapi_schema
schema = schemathesis.openapi.from_dict(msgspec.to_builtins(_document.to_schema()))


@pytest.fixture(scope="module")
def running_api(stack_env: dict[str, str]) -> Iterator[ServiceProcess]:
    with fake_360dialog(free_port_block(1, 59000)) as d360_url:
        process = ServiceProcess(
            "api", {**stack_env, "D360_BASE_URL": d360_url}, port=free_port_block(1, 58200)
        )
        process.start()
        try:
            asyncio.run(process.wait_healthy())
            yield process
        finally:
            process.stop()


@functools.cache
def member_token() -> str:
    secret = load_stack_env()["SUPABASE_JWT_SECRET"]
    return mint_access_token(secret, AGENT_A, email="agent-a@example.com")


@schema.auth()
class MemberToken:
    """Through schemathesis's auth hook, so its missing-credential cases stay missing."""

    def get(self, case: schemathesis.Case[Any], context: schemathesis.AuthContext) -> str:
        return member_token()

    def set(
        self, case: schemathesis.Case[Any], data: str, context: schemathesis.AuthContext
    ) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


def test_the_served_document_is_the_one_tested(running_api: ServiceProcess) -> None:
    import httpx

    served = httpx.get(f"{running_api.url}/schema/openapi.json").json()
    assert served["paths"].keys() == _document.to_schema()["paths"].keys()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_server_errors_and_responses_match_the_schema(
    case: schemathesis.Case[Any], running_api: ServiceProcess
) -> None:
    response = case.call(base_url=running_api.url)
    case.validate_response(
        response,
        excluded_checks=[
            # Opaque values the schema can only call strings (a page cursor, a
            # webhook body that is not WhatsApp's) are rightly refused.
            positive_data_acceptance,
            # Litestar answers OPTIONS itself, and on a path whose GET and POST
            # are separate handlers its Allow lists only one of them.
            allow_header_conformance,
        ],
    )
