"""POST/GET /api/webhooks/whatsapp against the real stack: what is stored, what is refused."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import AsyncTestClient
from postgrest.types import CountMethod

from service.app import create_app
from service.clients import Clients
from service.repositories.channels import hash_webhook_secret
from service.settings import Settings
from tests.support.inbox import (
    CHANNEL_A,
    CHANNEL_B,
    SECRET_A,
    SECRET_B,
    WORKSPACE_A,
    deliver,
    drain,
    fixture_bytes,
    invalid_fixture_names,
)
from tests.support.payloads import new_phone, text_payload
from tests.support.rows import rows
from tests.support.stack import psql


async def stored_bodies(clients: Clients, body: bytes) -> int:
    digest = hashlib.sha256(body).hexdigest()
    result = (
        await clients.service_db.table("webhook_events")
        .select("id", count=CountMethod.exact)
        .eq("body_sha256", digest)
        .execute()
    )
    return result.count or 0


async def event_count(clients: Clients) -> int:
    result = (
        await clients.service_db.table("webhook_events")
        .select("id", count=CountMethod.exact)
        .execute()
    )
    return result.count or 0


def raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


async def test_valid_delivery_is_stored_and_answered_200_with_empty_body(
    api: AsyncTestClient[Litestar], clients: Clients
) -> None:
    body = raw(text_payload(CHANNEL_A, new_phone(), "hola"))
    response = await api.post(
        "/api/webhooks/whatsapp",
        content=body,
        headers={"X-Webhook-Secret": SECRET_A, "content-type": "application/json"},
    )

    assert response.status_code == 200
    assert response.content == b""
    assert await stored_bodies(clients, body) == 1


async def test_redelivery_is_acknowledged_and_stored_once(
    api: AsyncTestClient[Litestar], clients: Clients
) -> None:
    body = raw(text_payload(CHANNEL_A, new_phone(), "otra vez"))

    statuses = [await deliver(api, body) for _ in range(3)]
    statuses += await asyncio.gather(*(deliver(api, body) for _ in range(5)))

    assert statuses == [200] * 8
    assert await stored_bodies(clients, body) == 1


@pytest.mark.parametrize(
    ("secret", "headers"),
    [
        (None, {}),
        ("wrong-secret", {}),
        (SECRET_B, {}),  # another channel's secret
        ("", {}),
        (None, {"X-Hub-Signature-256": "sha256=" + "0" * 64}),
    ],
    ids=["missing", "wrong", "other-channel", "empty", "signature-for-360-channel"],
)
async def test_bad_credentials_get_401_and_store_nothing(
    api: AsyncTestClient[Litestar],
    clients: Clients,
    secret: str | None,
    headers: dict[str, str],
) -> None:
    body = raw(text_payload(CHANNEL_A, new_phone(), "intruso"))

    assert await deliver(api, body, secret=secret, headers=headers) == 401
    assert await stored_bodies(clients, body) == 0


async def test_unknown_phone_number_id_is_refused(
    api: AsyncTestClient[Litestar], clients: Clients
) -> None:
    body = raw(text_payload("999999999999999", new_phone(), "¿quién?"))

    assert await deliver(api, body) == 401
    assert await stored_bodies(clients, body) == 0


async def test_inactive_channel_is_refused(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    channel = await add_channel(clients, secret="inactive-secret", is_active=False)
    body = raw(text_payload(channel, new_phone(), "hola"))

    assert await deliver(api, body, secret="inactive-secret") == 401
    assert await stored_bodies(clients, body) == 0


@pytest.mark.parametrize("name", invalid_fixture_names())
async def test_invalid_bodies_get_400_and_store_nothing(
    api: AsyncTestClient[Litestar], clients: Clients, name: str
) -> None:
    before = await event_count(clients)

    assert await deliver(api, fixture_bytes(f"invalid/{name}")) == 400
    assert await event_count(clients) == before


async def test_refusal_has_the_json_error_shape(api: AsyncTestClient[Litestar]) -> None:
    response = await api.post(
        "/api/webhooks/whatsapp", content=b"<html>", headers={"X-Webhook-Secret": SECRET_A}
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_payload",
        "detail": "not a WhatsApp webhook payload",
    }


async def test_body_over_one_mebibyte_gets_413(
    api: AsyncTestClient[Litestar], clients: Clients
) -> None:
    payload = text_payload(CHANNEL_A, new_phone(), "x" * (1024 * 1024))
    body = raw(payload)
    before = await event_count(clients)

    assert await deliver(api, body) == 413
    assert await event_count(clients) == before


async def test_503_and_nothing_claimed_as_stored_when_the_inbox_cannot_be_written(
    api: AsyncTestClient[Litestar], clients: Clients, stack_env: dict[str, str]
) -> None:
    # Warm the channel cache first, so the failure is the write itself.
    assert await deliver(api, raw(text_payload(CHANNEL_A, new_phone(), "calentando"))) == 200
    body = raw(text_payload(CHANNEL_A, new_phone(), "se perderá?"))
    database_url = stack_env["DATABASE_URL"]
    psql(database_url, "revoke insert on public.webhook_events from service_role")
    try:
        assert await deliver(api, body) == 503
    finally:
        psql(database_url, "grant insert on public.webhook_events to service_role")
    assert await stored_bodies(clients, body) == 0
    # The sender retries, and then it lands.
    assert await deliver(api, body) == 200
    assert await stored_bodies(clients, body) == 1


async def test_entries_of_other_channels_are_ignored(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    own, foreign = new_phone(), new_phone()
    payload = text_payload(CHANNEL_A, own, "mío")
    payload["entry"] += text_payload(CHANNEL_B, foreign, "de B, colado")["entry"]

    assert await deliver(api, raw(payload), secret=SECRET_A) == 200
    await drain(clients, settings)

    found = rows(
        await clients.service_db.table("conversations")
        .select("phone,workspace_id")
        .in_("phone", [f"+{own}", f"+{foreign}"])
        .execute()
    )
    assert found == [{"phone": f"+{own}", "workspace_id": WORKSPACE_A}]


async def test_a_body_naming_many_channels_is_refused_before_any_lookup(
    api: AsyncTestClient[Litestar], clients: Clients
) -> None:
    payload = text_payload(CHANNEL_A, new_phone(), "hola")
    for n in range(20):
        payload["entry"] += text_payload(str(900000000000000 + n), new_phone(), "x")["entry"]
    body = raw(payload)

    assert await deliver(api, body) == 400
    assert await stored_bodies(clients, body) == 0


async def test_events_of_a_deleted_channel_are_dead_lettered_not_filed(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    channel = await add_channel(clients, secret="soon-gone")
    sender = new_phone()
    body = raw(text_payload(channel, sender, "¿sigue ahí?"))
    assert await deliver(api, body, secret="soon-gone") == 200
    await (
        clients.service_db.table("whatsapp_channels")
        .delete()
        .eq("phone_number_id", channel)
        .execute()
    )
    # Still cached by the webhook for a while: stored, never a 503.
    late = raw(text_payload(channel, sender, "¿y ahora?"))
    assert await deliver(api, late, secret="soon-gone") == 200

    await drain(clients, settings)

    events = rows(
        await clients.service_db.table("webhook_events")
        .select("status,last_error,channel_id")
        .in_("body_sha256", [hashlib.sha256(b).hexdigest() for b in (body, late)])
        .execute()
    )
    assert [e["status"] for e in events] == ["dead", "dead"]
    assert all("no longer exists" in e["last_error"] for e in events)
    found = rows(
        await clients.service_db.table("conversations")
        .select("id")
        .eq("phone", f"+{sender}")
        .execute()
    )
    assert found == []


# --- Meta-direct mode ----------------------------------------------------------------------


async def add_channel(
    clients: Clients,
    *,
    secret: str | None = None,
    app_secret: str | None = None,
    verify_token: str | None = None,
    is_active: bool = True,
) -> str:
    phone_number_id = str(300000000000000 + uuid.uuid4().int % 10**12)
    await (
        clients.service_db.table("whatsapp_channels")
        .insert(
            {
                "workspace_id": WORKSPACE_A,
                "phone_number_id": phone_number_id,
                "display_phone_number": "+57 601 000 0009",
                "api_key": "meta-key",
                "webhook_secret_hash": hash_webhook_secret(secret) if secret else None,
                "app_secret": app_secret,
                "verify_token": verify_token,
                "is_active": is_active,
            }
        )
        .execute()
    )
    return phone_number_id


@pytest.fixture
async def meta_channel(clients: Clients) -> AsyncIterator[tuple[str, str, str]]:
    app_secret = f"app-secret-{uuid.uuid4().hex}"
    token = f"verify-{uuid.uuid4().hex}"
    channel = await add_channel(clients, app_secret=app_secret, verify_token=token)
    yield channel, app_secret, token
    await (
        clients.service_db.table("whatsapp_channels")
        .delete()
        .eq("phone_number_id", channel)
        .execute()
    )


async def test_meta_handshake_echoes_the_challenge(
    api: AsyncTestClient[Litestar], meta_channel: tuple[str, str, str]
) -> None:
    _, _, token = meta_channel
    response = await api.get(
        "/api/webhooks/whatsapp",
        params={"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"},
    )

    assert response.status_code == 200
    assert response.text == "1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "TOKEN", "hub.challenge": "1"},
        {"hub.challenge": "1"},
    ],
    ids=["wrong-token", "wrong-mode", "missing"],
)
async def test_meta_handshake_refuses_with_403(
    api: AsyncTestClient[Litestar], meta_channel: tuple[str, str, str], params: dict[str, str]
) -> None:
    _, _, token = meta_channel
    sent = {k: (token if v == "TOKEN" else v) for k, v in params.items()}
    response = await api.get("/api/webhooks/whatsapp", params=sent)

    assert response.status_code == 403
    assert "1" not in response.text.split('"detail"')[0]


async def test_meta_delivery_needs_a_valid_signature(
    api: AsyncTestClient[Litestar], clients: Clients, meta_channel: tuple[str, str, str]
) -> None:
    channel, app_secret, _ = meta_channel
    body = raw(text_payload(channel, new_phone(), "firmado"))
    good = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    forged = "sha256=" + hmac.new(b"other", body, hashlib.sha256).hexdigest()

    assert await deliver(api, body, secret=None) == 401
    assert await deliver(api, body, secret=None, headers={"X-Hub-Signature-256": forged}) == 401
    assert await stored_bodies(clients, body) == 0
    assert await deliver(api, body, secret=None, headers={"X-Hub-Signature-256": good}) == 200
    assert await stored_bodies(clients, body) == 1


# --- the raw ASGI route's own HTTP --------------------------------------------------------


async def test_other_methods_get_405_with_allow(api: AsyncTestClient[Litestar]) -> None:
    response = await api.put("/api/webhooks/whatsapp", content=b"{}")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST, OPTIONS"
    assert response.json()["error"] == "method_not_allowed"


async def test_options_lists_every_method(api: AsyncTestClient[Litestar]) -> None:
    response = await api.options("/api/webhooks/whatsapp")

    assert response.status_code == 204
    assert response.headers["allow"] == "GET, POST, OPTIONS"
    assert "content-length" not in response.headers  # RFC 9110: never on a 204


async def test_head_is_not_a_way_in(api: AsyncTestClient[Litestar]) -> None:
    response = await api.head("/api/webhooks/whatsapp")

    assert response.status_code == 405


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [(SECRET_A, "wrong", 200), ("wrong", SECRET_A, 401)],
    ids=["first-valid", "first-invalid"],
)
async def test_the_first_of_repeated_secret_headers_is_the_one_checked(
    api: AsyncTestClient[Litestar], clients: Clients, first: str, second: str, expected: int
) -> None:
    # Straight through ASGI: httpx would fold repeated headers into one.
    body = raw(text_payload(CHANNEL_A, new_phone(), "dos veces"))
    headers = [(b"x-webhook-secret", first.encode()), (b"x-webhook-secret", second.encode())]

    status, _, _ = await asgi_post(api, headers, [body])

    assert status == expected
    assert await stored_bodies(clients, body) == (1 if expected == 200 else 0)


async def asgi_post(
    api: AsyncTestClient[Litestar], headers: list[tuple[bytes, bytes]], pieces: list[bytes]
) -> tuple[int, bytes, int]:
    """POSTs `pieces` as one chunked body; (status, response body, chunks the app read).

    On the test client's own event loop, where the app's lifespan runs.
    """
    return await asyncio.to_thread(api.blocking_portal.call, _asgi_post, api.app, headers, pieces)


async def _asgi_post(
    app: Litestar, headers: list[tuple[bytes, bytes]], pieces: list[bytes]
) -> tuple[int, bytes, int]:
    read: list[int] = []
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        read.append(1)
        return {"type": "http.request", "body": pieces[len(read) - 1],
                "more_body": len(read) < len(pieces)}  # fmt: skip

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/webhooks/whatsapp", "raw_path": b"/api/webhooks/whatsapp",
        "root_path": "", "query_string": b"", "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000), "headers": headers,
    }  # fmt: skip
    await app(scope, receive, send)  # type: ignore[arg-type]
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), len(read)


async def test_a_streamed_body_over_the_limit_gets_413_without_a_length(
    api: AsyncTestClient[Litestar], clients: Clients
) -> None:
    # A chunked upload: no Content-Length to refuse it early on.
    pieces = [b" " * (64 * 1024)] * 20 + [raw(text_payload(CHANNEL_A, new_phone(), "al final"))]
    before = await event_count(clients)

    headers = [(b"x-webhook-secret", SECRET_A.encode())]
    status, body, read = await asgi_post(api, headers, pieces)

    assert status == 413
    assert json.loads(body)["error"] == "payload_too_large"
    # It stopped reading once over the limit (1 MiB = 16 chunks of 64 KiB).
    assert read == 17
    assert await event_count(clients) == before


async def test_the_openapi_document_describes_the_webhook(api: AsyncTestClient[Litestar]) -> None:
    document = (await api.get("/schema/openapi.json")).json()
    item = document["paths"]["/api/webhooks/whatsapp"]

    assert set(item) == {"get", "post"}
    assert set(item["post"]["responses"]) == {"200", "400", "401", "413", "503"}
    assert item["post"]["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    assert "ErrorBody" in document["components"]["schemas"]
    assert [p["name"] for p in item["get"]["parameters"]] == [
        "hub.mode",
        "hub.verify_token",
        "hub.challenge",
    ]


async def test_a_websocket_on_the_webhook_path_is_refused(api: AsyncTestClient[Litestar]) -> None:
    session = await api.websocket_connect("/api/webhooks/whatsapp")
    with pytest.raises(WebSocketDisconnect) as refused, session:
        session.receive_text()

    assert refused.value.code == 1008


async def test_handshake_answers_503_when_the_database_is_away(settings: Settings) -> None:
    # Nothing listens on port 9 of loopback: the verify-token lookup fails.
    broken = msgspec.structs.replace(settings, supabase_url="http://127.0.0.1:9")
    async with AsyncTestClient(app=create_app(broken)) as client:
        response = await client.get(
            "/api/webhooks/whatsapp",
            params={"hub.mode": "subscribe", "hub.verify_token": "t", "hub.challenge": "42"},
        )

    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert "42" not in response.text
