"""The composition root: built once, shared by the API, the worker and the CLI."""

from __future__ import annotations

import msgspec
from litestar.testing import AsyncTestClient
from pytest_httpx import HTTPXMock

from service import cli
from service.app import create_app
from service.root import api_runtime, open_root
from service.settings import Settings
from tests.support.inbox import CHANNEL_A, deliver
from tests.support.payloads import new_phone, text_payload
from tests.support.stack import psql


async def test_one_channel_cache_serves_webhook_credentials_and_api_keys(
    settings: Settings,
) -> None:
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        runtime = api_runtime(app.state)
        assert await deliver(client, text_payload(CHANNEL_A, new_phone(), "hola")) == 200
        original = psql(
            settings.database_url,
            f"select api_key from whatsapp_channels where phone_number_id = '{CHANNEL_A}'",
        )
        psql(
            settings.database_url,
            "update whatsapp_channels set api_key = 'rotated' "
            f"where phone_number_id = '{CHANNEL_A}'",
        )
        keys = runtime.agent.keys
        # The app runs on the test client's own event loop (and its clients with it).
        portal = client.blocking_portal
        try:
            # The row the webhook cached answers the key lookup: no second cache.
            assert portal.call(keys.api_key_for, CHANNEL_A) == original
            keys.forget(CHANNEL_A)
            assert portal.call(keys.api_key_for, CHANNEL_A) == "rotated"
        finally:
            psql(
                settings.database_url,
                f"update whatsapp_channels set api_key = '{original}' "
                f"where phone_number_id = '{CHANNEL_A}'",
            )
        assert runtime.agent.d360 is runtime.root.d360


async def test_the_360dialog_client_honours_http_timeout_seconds(
    settings: Settings, httpx_mock: HTTPXMock
) -> None:
    slow = msgspec.structs.replace(settings, http_timeout_seconds=2.5)
    httpx_mock.add_response(method="POST", url=f"{slow.d360_base_url}/v1/configs/webhook", json={})
    async with open_root(slow) as root:
        await root.d360.set_webhook("key", "https://inbox.example.com/hook", {"X": "y"})
    (request,) = httpx_mock.get_requests()
    assert request.extensions["timeout"]["read"] == 2.5


async def test_the_cli_uses_the_roots_360dialog_client(
    settings: Settings, httpx_mock: HTTPXMock
) -> None:
    slow = msgspec.structs.replace(settings, http_timeout_seconds=3.5)
    httpx_mock.add_response(method="POST", url=f"{slow.d360_base_url}/v1/configs/webhook", json={})
    args = cli.build_parser().parse_args(
        [
            "channel", "register-webhook", "--phone-number-id", CHANNEL_A,
            "--url", "https://inbox.example.com/api/webhooks/whatsapp",
            "--webhook-secret", "demo-secret-a",
        ]
    )  # fmt: skip
    assert await cli.run(args, slow) == 0
    (request,) = httpx_mock.get_requests()
    assert request.extensions["timeout"]["read"] == 3.5
