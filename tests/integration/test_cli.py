"""The operator CLI against the real stack (360dialog faked)."""

from __future__ import annotations

import io
import json
import uuid

import jwt
import msgspec
import pytest
from pytest_httpx import HTTPXMock

from service import cli
from service.clients import Clients
from service.settings import Settings
from tests.support.inbox import WORKSPACE_B
from tests.support.rows import rows


async def run(argv: list[str], settings: Settings) -> tuple[int, str]:
    """Exit code and what the command printed (stdout, then stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = await cli.run(cli.build_parser().parse_args(argv), settings, out, err)
    return code, out.getvalue() + err.getvalue()


def new_phone_number_id() -> str:
    return str(400000000000000 + uuid.uuid4().int % 10**12)


async def test_channel_add_stores_only_the_secret_hash_and_list_hides_keys(
    settings: Settings, clients: Clients
) -> None:
    pid = new_phone_number_id()
    code, out = await run(
        [
            "channel", "add", "--workspace-id", WORKSPACE_B, "--phone-number-id", pid,
            "--display-phone-number", "+57 601 555 0100", "--api-key", "key-xyz",
            "--webhook-secret", "s3cret-value",
        ],
        settings,
    )  # fmt: skip
    assert code == 0
    assert pid in out

    stored = rows(
        await clients.service_db.table("whatsapp_channels")
        .select("api_key,webhook_secret_hash,workspace_id")
        .eq("phone_number_id", pid)
        .execute()
    )
    assert stored[0]["api_key"] == "key-xyz"
    assert stored[0]["webhook_secret_hash"] != "s3cret-value"
    assert len(stored[0]["webhook_secret_hash"]) == 64

    code, listing = await run(["channel", "list"], settings)
    assert code == 0
    assert pid in listing
    assert "key-xyz" not in listing
    assert "s3cret" not in listing


async def test_register_webhook_sends_the_secret_header_to_360dialog(
    settings: Settings, httpx_mock: HTTPXMock
) -> None:
    pid = new_phone_number_id()
    await run(
        [
            "channel", "add", "--workspace-id", WORKSPACE_B, "--phone-number-id", pid,
            "--display-phone-number", "+57 601 555 0101", "--api-key", "key-reg",
            "--webhook-secret", "reg-secret",
        ],
        settings,
    )  # fmt: skip
    httpx_mock.add_response(
        method="POST", url=f"{settings.d360_base_url}/v1/configs/webhook", json={"url": "ok"}
    )

    code, out = await run(
        [
            "channel", "register-webhook", "--phone-number-id", pid,
            "--url", "https://inbox.example.com/api/webhooks/whatsapp",
            "--webhook-secret", "reg-secret",
        ],
        settings,
    )  # fmt: skip

    assert code == 0, out
    (request,) = httpx_mock.get_requests()
    assert request.headers["D360-API-KEY"] == "key-reg"
    assert json.loads(request.content) == {
        "url": "https://inbox.example.com/api/webhooks/whatsapp",
        "headers": {"X-Webhook-Secret": "reg-secret"},
    }


async def test_register_webhook_refuses_a_secret_the_webhook_would_reject(
    settings: Settings, httpx_mock: HTTPXMock
) -> None:
    pid = new_phone_number_id()
    await run(
        [
            "channel", "add", "--workspace-id", WORKSPACE_B, "--phone-number-id", pid,
            "--display-phone-number", "+57 601 555 0102", "--api-key", "k",
            "--webhook-secret", "right",
        ],
        settings,
    )  # fmt: skip

    code, out = await run(
        [
            "channel", "register-webhook", "--phone-number-id", pid,
            "--url", "https://inbox.example.com/api/webhooks/whatsapp", "--webhook-secret", "wrong",
        ],
        settings,
    )  # fmt: skip

    assert code == 1
    assert "not this channel's secret" in out
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize("email", ["agent-a@example.com", "agent-b@example.com"])
async def test_dev_token_mints_a_verifiable_token_for_a_seeded_user(
    settings: Settings, email: str
) -> None:
    code, out = await run(["dev-token", "--email", email], settings)

    assert code == 0
    claims = jwt.decode(
        out.strip(), settings.supabase_jwt_secret, algorithms=["HS256"], audience="authenticated"
    )
    assert claims["email"] == email
    assert claims["role"] == "authenticated"
    uuid.UUID(claims["sub"])


async def test_dev_token_without_a_database_never_prints_the_password(settings: Settings) -> None:
    broken = msgspec.structs.replace(
        settings, database_url="postgresql://postgres:s3cretpw@127.0.0.1:1/postgres"
    )
    code, out = await run(["dev-token", "--email", "agent-a@example.com"], broken)

    assert code == 1
    assert "could not look the user up" in out
    assert "s3cretpw" not in out


async def test_dev_token_for_an_unknown_email_fails(
    settings: Settings,
) -> None:
    code, out = await run(["dev-token", "--email", "nobody@example.com"], settings)

    assert code == 1
    assert "no user" in out
