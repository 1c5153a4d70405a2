"""The agent API against the real stack, as real agents (RLS decides); 360dialog is faked.

Every test makes its own workspaces (tests/support/agent.py), so results are exact.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pytest_httpx import HTTPXMock

from service.tokens import mint_access_token
from tests.support.agent import Tenant

BASE = "https://waba-v2.360dialog.io"
MESSAGES_URL = f"{BASE}/messages"
Api = AsyncTestClient[Litestar]


def sent_ok(wamid: str = "wamid.OUT.1") -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "573000000000", "wa_id": "573000000000"}],
        "messages": [{"id": wamid, "message_status": "accepted"}],
    }


def meta_error(code: int, message: str) -> dict[str, Any]:
    return {
        "error": {
            "message": f"(#{code}) {message}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": f"details of {code}"},
            "fbtrace_id": "AbC",
        }
    }


def ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["items"]]


async def send(
    api: Api, tenant: Tenant, conversation_id: uuid.UUID, body: dict[str, Any], key: str
) -> httpx.Response:
    return await api.post(
        f"/api/conversations/{conversation_id}/messages",
        json=body,
        headers={**tenant.headers, "Idempotency-Key": key},
    )


def message_row(tenant: Tenant, message_id: str) -> dict[str, Any]:
    out = tenant.sql(f"select row_to_json(m) from public.messages m where m.id = '{message_id}'")
    loaded: dict[str, Any] = json.loads(out)
    return loaded


def outbound_rows(tenant: Tenant, conversation_id: uuid.UUID) -> list[dict[str, Any]]:
    out = tenant.sql(
        "select coalesce(json_agg(m order by m.created_at), '[]') from public.messages m "
        f"where m.conversation_id = '{conversation_id}' and m.direction = 'outbound'"
    )
    loaded: list[dict[str, Any]] = json.loads(out)
    return loaded


# --- reading ------------------------------------------------------------------------------


async def test_list_shows_the_workspace_newest_first_with_contact_and_window(
    api: Api, tenant: Tenant
) -> None:
    jose = tenant.add_contact("José Álvarez", city="Bogotá", tags=("VIP", "Mayorista"))
    c_open = tenant.add_conversation(contact_id=jose)
    tenant.add_inbound(c_open, ago=timedelta(hours=3), body="¿Tienen talla M?")
    c_closing = tenant.add_conversation()
    tenant.add_inbound(c_closing, ago=timedelta(hours=23))
    c_closed = tenant.add_conversation()
    tenant.add_inbound(c_closed, ago=timedelta(hours=30))

    response = await api.get("/api/conversations", headers=tenant.headers)

    assert response.status_code == 200
    body = response.json()
    assert ids(body) == [str(c_open), str(c_closing), str(c_closed)]
    assert body["next_cursor"] is None
    first = body["items"][0]
    assert first["contact"]["name"] == "José Álvarez"
    assert first["contact"]["city"] == "Bogotá"
    assert [t["name"] for t in first["contact"]["tags"]] == ["Mayorista", "VIP"]
    assert first["last_message_preview"] == "¿Tienen talla M?"
    assert first["unread_count"] == 1
    assert first["is_read"] is False
    assert first["status"] == "active"
    assert first["window"]["state"] == "open"
    assert [i["window"]["state"] for i in body["items"]] == ["open", "closing", "closed"]
    assert body["items"][1]["contact"] is None


async def test_get_conversation_with_details(api: Api, tenant: Tenant) -> None:
    contact = tenant.add_contact("María Gómez", city="Medellín", tags=("VIP",))
    conversation = tenant.add_conversation(contact_id=contact)
    tenant.add_inbound(conversation, ago=timedelta(minutes=10))
    tenant.sql(
        "insert into public.orders (workspace_id, contact_id, total, created_at) values "
        f"('{tenant.workspace_id}', '{contact}', 1000, now() - interval '2 days'), "
        f"('{tenant.workspace_id}', '{contact}', 2000, now() - interval '29 days'), "
        f"('{tenant.workspace_id}', '{contact}', 3000, now() - interval '31 days')"
    )

    response = await api.get(f"/api/conversations/{conversation}", headers=tenant.headers)

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(conversation)
    assert body["recent_orders_count"] == 2
    assert body["contact"]["tags"][0]["name"] == "VIP"
    assert body["window"]["state"] == "open"
    assert body["window"]["closes_at"] is not None


async def test_get_unknown_conversation_is_404(api: Api, tenant: Tenant) -> None:
    response = await api.get(f"/api/conversations/{uuid.uuid4()}", headers=tenant.headers)
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "conversation not found"}


async def test_message_history_pages_newest_first_while_messages_arrive(
    api: Api, tenant: Tenant
) -> None:
    conversation = tenant.add_conversation()
    made = [
        tenant.add_inbound(conversation, ago=timedelta(minutes=50 - i), body=f"m{i}")[0]
        for i in range(5)
    ]
    url = f"/api/conversations/{conversation}/messages"

    first = (await api.get(url, params={"limit": 2}, headers=tenant.headers)).json()
    assert ids(first) == [str(made[4]), str(made[3])]
    # A new message arrives between pages: older pages do not shift.
    newest = tenant.add_inbound(conversation, ago=timedelta(seconds=1), body="new")[0]
    second = (
        await api.get(
            url, params={"limit": 2, "before": first["next_cursor"]}, headers=tenant.headers
        )
    ).json()
    assert ids(second) == [str(made[2]), str(made[1])]
    third = (
        await api.get(
            url, params={"limit": 2, "before": second["next_cursor"]}, headers=tenant.headers
        )
    ).json()
    assert ids(third) == [str(made[0])]
    assert third["next_cursor"] is None
    assert third["items"][0]["content"] == {"body": "m0"}
    fresh = (await api.get(url, params={"limit": 1}, headers=tenant.headers)).json()
    assert ids(fresh) == [str(newest)]


async def test_conversation_pages_stay_consistent_while_messages_arrive(
    api: Api, tenant: Tenant
) -> None:
    conversations = [tenant.add_conversation() for _ in range(7)]
    for i, conversation in enumerate(conversations):
        tenant.add_inbound(conversation, ago=timedelta(minutes=10 + i))
    # Newest first: conversations[0] .. conversations[6].
    page1 = (
        await api.get("/api/conversations", params={"limit": 3}, headers=tenant.headers)
    ).json()
    assert ids(page1) == [str(c) for c in conversations[:3]]
    assert page1["next_cursor"]

    # New activity: one conversation on page 1, one not yet seen, and a new one.
    tenant.add_inbound(conversations[1], ago=timedelta(seconds=2))
    tenant.add_inbound(conversations[4], ago=timedelta(seconds=1))
    brand_new = tenant.add_conversation()
    tenant.add_inbound(brand_new, ago=timedelta(seconds=0))

    page2 = (
        await api.get(
            "/api/conversations",
            params={"limit": 3, "cursor": page1["next_cursor"]},
            headers=tenant.headers,
        )
    ).json()
    # No repeats, nothing unchanged skipped; moved conversations are now above the cursor.
    assert ids(page2) == [str(conversations[i]) for i in (3, 5, 6)]
    assert page2["next_cursor"] is None

    top = (await api.get("/api/conversations", params={"limit": 3}, headers=tenant.headers)).json()
    assert ids(top) == [str(brand_new), str(conversations[4]), str(conversations[1])]


async def test_filters(api: Api, tenant: Tenant) -> None:
    unread = tenant.add_conversation()
    tenant.add_inbound(unread, ago=timedelta(minutes=1))
    read = tenant.add_conversation()
    tenant.add_inbound(read, ago=timedelta(minutes=2))
    tenant.sql(f"update public.conversations set is_read = true where id = '{read}'")
    archived = tenant.add_conversation(status="archived")
    mine = tenant.add_conversation(assigned_to=tenant.user_id)

    async def listed(**params: Any) -> list[str]:
        response = await api.get("/api/conversations", params=params, headers=tenant.headers)
        assert response.status_code == 200, response.text
        return ids(response.json())

    assert set(await listed()) == {str(unread), str(read), str(archived), str(mine)}
    assert await listed(status="archived") == [str(archived)]
    assert str(archived) not in await listed(status="active")
    assert str(unread) in await listed(is_read="false")
    assert str(read) not in await listed(is_read="false")
    assert await listed(is_read="true") == [str(read)]
    assert await listed(assigned_to=str(tenant.user_id)) == [str(mine)]
    assert await listed(workspace_id=str(tenant.workspace_id), status="archived") == [str(archived)]
    invalid = await api.get(
        "/api/conversations", params={"status": "deleted"}, headers=tenant.headers
    )
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["key"] == "status"


@pytest.mark.parametrize(
    "query",
    ["jose alv", "Jose", "JOSÉ", "álvarez", "alvarez jose", "alvares", "3001234", "+57 300 123"],
)
async def test_search_is_fuzzy_over_name_and_phone(api: Api, tenant: Tenant, query: str) -> None:
    jose = tenant.add_contact("José Álvarez", "+573001234567")
    target = tenant.add_conversation("+573001234567", contact_id=jose)
    maria = tenant.add_contact("María Fernanda Gómez", "+573109876543")
    tenant.add_conversation("+573109876543", contact_id=maria)
    tenant.add_conversation("+573205551234")  # no contact

    response = await api.get("/api/conversations", params={"search": query}, headers=tenant.headers)

    assert response.status_code == 200
    assert ids(response.json()) == [str(target)]


async def test_search_without_match_and_by_phone_only(api: Api, tenant: Tenant) -> None:
    nameless = tenant.add_conversation("+573205551234")
    assert ids(
        (
            await api.get("/api/conversations", params={"search": "555123"}, headers=tenant.headers)
        ).json()
    ) == [str(nameless)]
    assert (
        await api.get("/api/conversations", params={"search": "zzzz"}, headers=tenant.headers)
    ).json()["items"] == []
    # LIKE wildcards in the input are literal.
    assert (
        await api.get("/api/conversations", params={"search": "%_%"}, headers=tenant.headers)
    ).json()["items"] == []


async def test_search_with_a_nul_character_is_422(api: Api, tenant: Tenant) -> None:
    # Found by schemathesis: was a 502 from Postgres.
    response = await api.get(
        "/api/conversations", params={"search": "jo\x00se"}, headers=tenant.headers
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["key"] == "search"


async def test_invalid_cursor_and_limit_are_422(api: Api, tenant: Tenant) -> None:
    bad_cursor = await api.get(
        "/api/conversations", params={"cursor": "not-a-cursor"}, headers=tenant.headers
    )
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["detail"][0]["key"] == "cursor"
    bad_limit = await api.get("/api/conversations", params={"limit": 101}, headers=tenant.headers)
    assert bad_limit.status_code == 422
    assert bad_limit.json()["detail"][0]["key"] == "limit"


# --- isolation ----------------------------------------------------------------------------


async def test_member_of_another_workspace_sees_nothing_and_changes_nothing(
    api: Api, tenant: Tenant, other: Tenant, httpx_mock: HTTPXMock
) -> None:
    contact = tenant.add_contact("José Álvarez")
    conversation = tenant.add_conversation(contact_id=contact)
    message_id, _ = tenant.add_inbound(
        conversation,
        content='{"media_id": "1234567890", "mime_type": "image/jpeg"}',
        message_type="image",
    )
    other_contact = other.add_contact("Camila Rojas")
    other_conversation = other.add_conversation(contact_id=other_contact)
    h = other.headers
    base = f"/api/conversations/{conversation}"

    listed = await api.get(
        "/api/conversations", params={"workspace_id": str(tenant.workspace_id)}, headers=h
    )
    assert listed.status_code == 200
    assert listed.json() == {"items": [], "next_cursor": None}
    own = await api.get("/api/conversations", params={"search": "jose"}, headers=h)
    assert own.json()["items"] == []
    assert ids((await api.get("/api/conversations", headers=h)).json()) == [str(other_conversation)]

    responses = [
        await api.get(base, headers=h),
        await api.get(f"{base}/messages", headers=h),
        await api.post(f"{base}/read", headers=h),
        await api.post(f"{base}/archive", headers=h),
        await api.post(f"{base}/unarchive", headers=h),
        await api.put(f"{base}/contact", json={"contact_id": str(other_contact)}, headers=h),
        await send(api, other, conversation, {"type": "text", "text": "hola"}, "k-1"),
        await api.get(f"/api/messages/{message_id}/media", headers=h),
    ]
    for response in responses:
        assert response.status_code == 404, (response.request.url, response.text)
        assert response.json()["error"] == "not_found"
        assert "José" not in response.text

    # The owner links the other workspace's contact: refused, nothing changed.
    linked = await api.put(
        f"{base}/contact", json={"contact_id": str(other_contact)}, headers=tenant.headers
    )
    assert linked.status_code == 422
    assert linked.json()["detail"][0]["key"] == "contact_id"
    state = tenant.row(
        "select contact_id, status, is_read, unread_count from public.conversations "
        f"where id = '{conversation}'"
    )
    assert state == [str(contact), "active", "f", "1"]
    assert outbound_rows(tenant, conversation) == []
    assert httpx_mock.get_requests() == []


# --- updates ------------------------------------------------------------------------------


async def test_mark_read_sends_a_read_receipt(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation, ago=timedelta(minutes=9))
    _, last_wamid = tenant.add_inbound(conversation, ago=timedelta(minutes=8))
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json={"success": True})

    response = await api.post(f"/api/conversations/{conversation}/read", headers=tenant.headers)

    assert response.status_code == 200
    body = response.json()
    assert body["is_read"] is True
    assert body["unread_count"] == 0
    assert tenant.row(
        f"select is_read, unread_count from public.conversations where id = '{conversation}'"
    ) == ["t", "0"]
    [receipt] = httpx_mock.get_requests()
    assert receipt.headers["D360-API-KEY"] == tenant.api_key
    assert json.loads(receipt.content) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": last_wamid,
    }


async def test_mark_read_without_receipts_or_when_the_receipt_fails(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    # 360dialog refuses the receipt: the request still succeeds.
    httpx_mock.add_response(
        url=MESSAGES_URL, method="POST", status_code=400, json=meta_error(100, "Invalid parameter")
    )
    failed = await api.post(f"/api/conversations/{conversation}/read", headers=tenant.headers)
    assert failed.status_code == 200
    assert failed.json()["unread_count"] == 0
    assert len(httpx_mock.get_requests()) == 1

    # Channel without read receipts: nothing is sent.
    tenant.sql(
        "update public.whatsapp_channels set send_read_receipts = false "
        f"where id = '{tenant.channel_id}'"
    )
    tenant.add_inbound(conversation)
    quiet = await api.post(f"/api/conversations/{conversation}/read", headers=tenant.headers)
    assert quiet.status_code == 200
    assert quiet.json()["is_read"] is True
    assert len(httpx_mock.get_requests()) == 1


async def test_archive_and_unarchive(api: Api, tenant: Tenant) -> None:
    conversation = tenant.add_conversation()
    archived = await api.post(f"/api/conversations/{conversation}/archive", headers=tenant.headers)
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived"
    listed = await api.get(
        "/api/conversations", params={"status": "archived"}, headers=tenant.headers
    )
    assert ids(listed.json()) == [str(conversation)]
    restored = await api.post(
        f"/api/conversations/{conversation}/unarchive", headers=tenant.headers
    )
    assert restored.status_code == 200
    assert restored.json()["status"] == "active"


async def test_link_and_unlink_contact(api: Api, tenant: Tenant) -> None:
    conversation = tenant.add_conversation()
    contact = tenant.add_contact("Pedro Pérez", city="Cali", tags=("Nuevo",))
    url = f"/api/conversations/{conversation}/contact"

    linked = await api.put(url, json={"contact_id": str(contact)}, headers=tenant.headers)
    assert linked.status_code == 200
    assert linked.json()["contact"]["name"] == "Pedro Pérez"
    assert linked.json()["contact"]["tags"][0]["name"] == "Nuevo"

    unknown = await api.put(url, json={"contact_id": str(uuid.uuid4())}, headers=tenant.headers)
    assert unknown.status_code == 422
    malformed = await api.put(url, json={"contact_id": "nope"}, headers=tenant.headers)
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["key"] == "contact_id"
    # Refused means unchanged: the conversation keeps the contact it had.
    kept = tenant.sql(f"select contact_id from public.conversations where id = '{conversation}'")
    assert kept == str(contact)

    unlinked = await api.put(url, json={"contact_id": None}, headers=tenant.headers)
    assert unlinked.status_code == 200
    assert unlinked.json()["contact"] is None


# --- sending ------------------------------------------------------------------------------


async def test_send_text_success(api: Api, tenant: Tenant, httpx_mock: HTTPXMock) -> None:
    conversation = tenant.add_conversation("+573001112233")
    tenant.add_inbound(conversation, ago=timedelta(hours=1))
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.ok"))

    response = await send(api, tenant, conversation, {"type": "text", "text": "¡Sí, hay!"}, "k-1")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "sent"
    assert body["wamid"] == "wamid.OUT.ok"
    assert body["direction"] == "outbound"
    assert body["sent_by"] == str(tenant.user_id)
    assert body["content"] == {"body": "¡Sí, hay!"}
    [request] = httpx_mock.get_requests()
    assert request.headers["D360-API-KEY"] == tenant.api_key
    assert json.loads(request.content) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "573001112233",
        "type": "text",
        "text": {"body": "¡Sí, hay!"},
    }
    row = message_row(tenant, body["id"])
    assert (row["status"], row["wamid"]) == ("sent", "wamid.OUT.ok")
    key = tenant.sql(
        f"select key from public.reply_idempotency_keys where message_id = '{body['id']}'"
    )
    assert key == "k-1"
    assert row["sent_by"] == str(tenant.user_id)
    assert row["status_timestamp"] is not None
    preview = tenant.row(
        f"select last_message_preview from public.conversations where id = '{conversation}'"
    )
    assert preview == ["¡Sí, hay!"]


async def test_send_media_by_url(api: Api, tenant: Tenant, httpx_mock: HTTPXMock) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.doc"))
    payload = {
        "type": "document",
        "media_url": "https://example.com/factura.pdf",
        "caption": "Su factura",
        "filename": "factura.pdf",
    }

    response = await send(api, tenant, conversation, payload, "k-doc")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["media_url"] == "https://example.com/factura.pdf"
    assert body["media_filename"] == "factura.pdf"
    sent = json.loads(httpx_mock.get_requests()[0].content)
    assert sent["document"] == {
        "link": "https://example.com/factura.pdf",
        "caption": "Su factura",
        "filename": "factura.pdf",
    }


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "text"}, "text"),
        ({"type": "text", "text": ""}, "text"),
        ({"type": "text", "text": "x" * 4097}, "text"),
        ({"type": "text", "text": "hi", "media_url": "https://example.com/a.jpg"}, "media_url"),
        ({"type": "image"}, "media_url"),
        ({"type": "image", "media_url": "http://example.com/a.jpg"}, "media_url"),
        ({"type": "audio", "media_url": "https://example.com/a.ogg", "caption": "x"}, "caption"),
        ({"type": "image", "media_url": "https://e.com/a.jpg", "filename": "a.jpg"}, "filename"),
        ({"type": "location", "media_url": "https://example.com/a.webp"}, "type"),
        ({"type": "text", "text": "hi", "extra": 1}, "extra"),
        # Found by schemathesis: Postgres text cannot hold U+0000 (was a 502).
        ({"type": "text", "text": "a\u0000b"}, "text"),
        (
            {"type": "document", "media_url": "https://e.co/a.pdf", "filename": "a\u0000.pdf"},
            "filename",
        ),
    ],
)
async def test_send_invalid_input_is_422_naming_the_field(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock, payload: dict[str, Any], field: str
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    response = await send(api, tenant, conversation, payload, "k-invalid")
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_input"
    # Unknown fields are reported on the body, naming the field in the message.
    error = body["detail"][0]
    assert error["key"] == field or f"`{field}`" in error["message"]
    assert outbound_rows(tenant, conversation) == []
    assert httpx_mock.get_requests() == []


async def test_oversized_body_is_413(api: Api, tenant: Tenant, httpx_mock: HTTPXMock) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    response = await send(
        api, tenant, conversation, {"type": "text", "text": "x" * (2 * 1024 * 1024)}, "k-big"
    )
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert outbound_rows(tenant, conversation) == []
    assert httpx_mock.get_requests() == []


async def test_send_needs_an_idempotency_key(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    response = await api.post(
        f"/api/conversations/{conversation}/messages",
        json={"type": "text", "text": "hola"},
        headers=tenant.headers,
    )
    assert response.status_code == 422
    assert "Idempotency-Key" in response.text
    assert httpx_mock.get_requests() == []
    assert outbound_rows(tenant, conversation) == []


async def test_window_still_open_at_23h59(api: Api, tenant: Tenant, httpx_mock: HTTPXMock) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation, ago=timedelta(hours=23, minutes=59))
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.late"))

    details = await api.get(f"/api/conversations/{conversation}", headers=tenant.headers)
    assert details.json()["window"]["state"] == "closing"
    response = await send(api, tenant, conversation, {"type": "text", "text": "a tiempo"}, "k")

    assert response.status_code == 201, response.text
    assert response.json()["status"] == "sent"


@pytest.mark.parametrize("ago", [timedelta(hours=24, minutes=1), None])
async def test_window_closed_at_24h01_refuses_before_sending(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock, ago: timedelta | None
) -> None:
    conversation = tenant.add_conversation()
    if ago is not None:
        tenant.add_inbound(conversation, ago=ago)

    details = await api.get(f"/api/conversations/{conversation}", headers=tenant.headers)
    assert details.json()["window"]["state"] == "closed"
    response = await send(api, tenant, conversation, {"type": "text", "text": "tarde"}, "k")

    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "window_closed"
    assert "24-hour" in body["detail"]["reason"]
    assert httpx_mock.get_requests() == []
    assert outbound_rows(tenant, conversation) == []


async def test_send_rejected_by_meta_with_131047_is_stored_as_failed(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation, ago=timedelta(hours=2))
    httpx_mock.add_response(
        url=MESSAGES_URL,
        method="POST",
        status_code=400,
        json=meta_error(131047, "Re-engagement message"),
    )

    response = await send(api, tenant, conversation, {"type": "text", "text": "hola"}, "k-47")

    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "window_closed"
    assert body["detail"]["code"] == 131047
    assert body["detail"]["message"]["status"] == "failed"
    [row] = outbound_rows(tenant, conversation)
    assert row["status"] == "failed"
    assert row["error_code"] == 131047
    assert "Re-engagement message" in row["error_message"]
    assert row["wamid"] is None
    assert len(httpx_mock.get_requests()) == 1  # never retried


async def test_send_rate_limited_then_accepted(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    httpx_mock.add_response(
        url=MESSAGES_URL,
        method="POST",
        status_code=429,
        headers={"Retry-After": "0"},
        json=meta_error(130429, "Rate limit hit"),
    )
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.retry"))

    response = await send(api, tenant, conversation, {"type": "text", "text": "hola"}, "k-429")

    assert response.status_code == 201, response.text
    assert response.json()["status"] == "sent"
    assert response.json()["wamid"] == "wamid.OUT.retry"
    assert len(httpx_mock.get_requests()) == 2
    [row] = outbound_rows(tenant, conversation)
    assert (row["status"], row["error_code"]) == ("sent", None)


async def test_send_network_error_is_stored_as_failed(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    httpx_mock.add_exception(httpx.ReadTimeout("timed out"), url=MESSAGES_URL, method="POST")

    response = await send(api, tenant, conversation, {"type": "text", "text": "hola"}, "k-net")

    assert response.status_code == 502
    body = response.json()
    assert body["error"] == "send_failed"
    assert body["detail"]["code"] is None
    [row] = outbound_rows(tenant, conversation)
    assert row["status"] == "failed"
    assert "network error" in row["error_message"]
    assert tenant.api_key not in row["error_message"]
    # A send that may have left is never repeated: one attempt only.
    assert len(httpx_mock.get_requests()) == 1


async def test_retry_with_the_same_key_never_sends_twice(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.once"))
    payload = {"type": "text", "text": "una sola vez"}

    first = await send(api, tenant, conversation, payload, "k-same")
    again = await send(api, tenant, conversation, payload, "k-same")

    assert first.status_code == 201
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["wamid"] == "wamid.OUT.once"
    assert len(httpx_mock.get_requests()) == 1
    assert len(outbound_rows(tenant, conversation)) == 1

    reused = await send(api, tenant, conversation, {"type": "text", "text": "otro"}, "k-same")
    assert reused.status_code == 422
    assert reused.json()["error"] == "idempotency_key_reused"
    assert len(httpx_mock.get_requests()) == 1


async def test_retry_of_a_failed_send_replays_the_failure(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    httpx_mock.add_response(
        url=MESSAGES_URL, method="POST", status_code=400, json=meta_error(131026, "Undeliverable")
    )
    payload = {"type": "text", "text": "hola"}

    first = await send(api, tenant, conversation, payload, "k-fail")
    again = await send(api, tenant, conversation, payload, "k-fail")

    assert first.status_code == again.status_code == 502
    assert again.json()["detail"]["code"] == 131026
    assert again.json()["detail"]["message"]["id"] == first.json()["detail"]["message"]["id"]
    assert len(httpx_mock.get_requests()) == 1


async def test_concurrent_requests_with_one_key_send_once(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.race"))
    payload = {"type": "text", "text": "carrera"}

    results = await asyncio.gather(
        *(send(api, tenant, conversation, payload, "k-race") for _ in range(4))
    )

    statuses = sorted(r.status_code for r in results)
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    for r in results:
        if r.status_code == 409:
            assert r.json()["error"] == "send_in_progress"
    assert len(httpx_mock.get_requests()) == 1
    assert len(outbound_rows(tenant, conversation)) == 1


async def test_pending_message_with_the_key_is_send_in_progress(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    tenant.sql(
        "with m as (insert into public.messages (conversation_id, direction, type, content, "
        "status, sent_by) values "
        f"('{conversation}', 'outbound', 'text', '{{\"body\": \"hola\"}}', 'pending', "
        f"'{tenant.user_id}') returning id) "
        "insert into public.reply_idempotency_keys (message_id, conversation_id, sent_by, key) "
        f"select m.id, '{conversation}', '{tenant.user_id}', 'k-pending' from m"
    )
    response = await send(api, tenant, conversation, {"type": "text", "text": "hola"}, "k-pending")
    assert response.status_code == 409
    assert response.json()["error"] == "send_in_progress"
    assert httpx_mock.get_requests() == []


async def test_inactive_channel_refuses_to_send(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    tenant.sql(
        f"update public.whatsapp_channels set is_active = false where id = '{tenant.channel_id}'"
    )
    response = await send(api, tenant, conversation, {"type": "text", "text": "hola"}, "k")
    assert response.status_code == 409
    assert response.json()["error"] == "channel_unavailable"
    assert httpx_mock.get_requests() == []
    assert outbound_rows(tenant, conversation) == []


# --- media --------------------------------------------------------------------------------

QUERY = "mid=1000000000000101&ext=1795000000&hash=ATu%2Bq-Zx_9k%3D"
LOOKASIDE = f"https://lookaside.fbsbx.com/whatsapp_business/attachments/?{QUERY}"
DOWNLOAD = f"{BASE}/whatsapp_business/attachments/?{QUERY}"


async def test_media_is_streamed_with_type_and_filename(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    message_id, _ = tenant.add_inbound(
        conversation,
        message_type="document",
        content='{"media_id": "987654321", "mime_type": "application/pdf", '
        '"filename": "cotización.pdf"}',
    )
    httpx_mock.add_response(
        url=f"{BASE}/987654321",
        method="GET",
        json={"url": LOOKASIDE, "mime_type": "application/pdf", "id": "987654321"},
    )
    payload = b"%PDF-1.4 " + bytes(range(256)) * 64
    httpx_mock.add_response(
        url=DOWNLOAD,
        method="GET",
        content=payload,
        headers={"content-type": "application/pdf"},
    )

    response = await api.get(f"/api/messages/{message_id}/media", headers=tenant.headers)

    assert response.status_code == 200, response.text
    assert response.content == payload
    assert response.headers["content-type"].startswith("application/pdf")
    disposition = response.headers["content-disposition"]
    assert "filename*=UTF-8''cotizaci%C3%B3n.pdf" in disposition
    requests = httpx_mock.get_requests()
    assert [r.headers["D360-API-KEY"] for r in requests] == [tenant.api_key] * 2


async def test_media_404s(api: Api, tenant: Tenant, httpx_mock: HTTPXMock) -> None:
    conversation = tenant.add_conversation()
    text_id, _ = tenant.add_inbound(conversation, body="sin archivo")
    gone_id, _ = tenant.add_inbound(
        conversation, message_type="image", content='{"media_id": "111222333"}'
    )
    httpx_mock.add_response(
        url=f"{BASE}/111222333",
        method="GET",
        status_code=404,
        json=meta_error(100, "Unsupported get request"),
    )

    no_media = await api.get(f"/api/messages/{text_id}/media", headers=tenant.headers)
    unknown = await api.get(f"/api/messages/{uuid.uuid4()}/media", headers=tenant.headers)
    gone = await api.get(f"/api/messages/{gone_id}/media", headers=tenant.headers)

    assert (no_media.status_code, no_media.json()["detail"]) == (404, "media not found")
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "message not found")
    assert gone.status_code == 404
    assert gone.json()["error"] == "media_unavailable"
    assert len(httpx_mock.get_requests()) == 1


async def test_media_sent_by_url_is_never_redirected_to(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    """The link an agent typed is not this API's to vouch for: 404, no Location."""
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.img"))
    sent = await send(
        api,
        tenant,
        conversation,
        {"type": "image", "media_url": "https://example.com/foto.jpg"},
        "k-img",
    )
    assert sent.status_code == 201

    response = await api.get(
        f"/api/messages/{sent.json()['id']}/media", headers=tenant.headers, follow_redirects=False
    )

    assert (response.status_code, response.json()["detail"]) == (404, "media not found")
    assert "location" not in response.headers
    assert len(httpx_mock.get_requests()) == 1


# --- authentication -----------------------------------------------------------------------


def _tokens(tenant: Tenant, jwt_secret: str) -> dict[str, str]:
    now = time.time()
    claims = {
        "sub": str(tenant.user_id),
        "role": "authenticated",
        "aud": "authenticated",
        "exp": int(now) + 600,
    }
    return {
        "expired": mint_access_token(jwt_secret, tenant.user_id, now=now - 7200, ttl_seconds=60),
        "forged": mint_access_token("not-the-secret-" + "x" * 32, tenant.user_id),
        "unsigned": jwt.encode(claims, "", algorithm="none"),
        "wrong audience": jwt.encode({**claims, "aud": "other"}, jwt_secret, algorithm="HS256"),
        "anon role": jwt.encode({**claims, "role": "anon"}, jwt_secret, algorithm="HS256"),
        "garbage": "not.a.token",
    }


@pytest.mark.parametrize(
    "kind", ["expired", "forged", "unsigned", "wrong audience", "anon role", "garbage"]
)
async def test_bad_tokens_are_401(
    api: Api, tenant: Tenant, jwt_secret: str, httpx_mock: HTTPXMock, kind: str
) -> None:
    conversation = tenant.add_conversation()
    message_id, _ = tenant.add_inbound(conversation)
    headers = {"Authorization": f"Bearer {_tokens(tenant, jwt_secret)[kind]}"}
    calls = [
        api.get("/api/conversations", headers=headers),
        api.get(f"/api/conversations/{conversation}", headers=headers),
        api.post(f"/api/conversations/{conversation}/read", headers=headers),
        api.post(
            f"/api/conversations/{conversation}/messages",
            json={"type": "text", "text": "hola"},
            headers={**headers, "Idempotency-Key": "k"},
        ),
        api.get(f"/api/messages/{message_id}/media", headers=headers),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 401, (kind, response.text)
        assert response.json()["error"] == "unauthorized"
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer  "])
async def test_missing_token_is_401(api: Api, tenant: Tenant, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await api.get("/api/conversations", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "detail": "missing bearer token"}


async def test_openapi_documents_the_agent_api(api: Api) -> None:
    schema = (await api.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    for path in (
        "/api/conversations",
        "/api/conversations/{conversation_id}",
        "/api/conversations/{conversation_id}/messages",
        "/api/conversations/{conversation_id}/read",
        "/api/conversations/{conversation_id}/archive",
        "/api/conversations/{conversation_id}/unarchive",
        "/api/conversations/{conversation_id}/contact",
        "/api/messages/{message_id}/media",
    ):
        assert path in paths, path
    assert schema["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    send_op = paths["/api/conversations/{conversation_id}/messages"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in send_op["parameters"])
    assert "ConversationListItem" in json.dumps(schema["components"]["schemas"])
