"""The Data API as a public API: what the database itself refuses or bounds.

Every call here goes through PostgREST (supabase-py or plain HTTP through the
gateway), as an agent's browser or a service-role script would make it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from service.clients import Clients
from service.tokens import mint_access_token
from tests.integration.test_conversations_api import MESSAGES_URL, Api, send, sent_ok
from tests.support.agent import Tenant, lit
from tests.support.inbox import CHANNEL_A, WORKSPACE_A
from tests.support.payloads import new_phone, new_wamid
from tests.support.rows import rows


async def test_upsert_on_wamid_ignores_a_duplicate(clients: Clients) -> None:
    """The call supabase-py documents for idempotent inserts: no 42P10, one row."""
    conversation = rows(
        await clients.service_db.table("conversations")
        .insert(
            {"workspace_id": WORKSPACE_A, "phone": f"+{new_phone()}", "phone_number_id": CHANNEL_A}
        )
        .execute()
    )[0]
    row = {
        "conversation_id": conversation["id"],
        "wamid": new_wamid("wamid.UPSERT"),
        "direction": "inbound",
        "type": "text",
        "content": {"body": "first"},
        "status": "delivered",
    }
    first = (
        await clients.service_db.table("messages")
        .upsert(row, on_conflict="wamid", ignore_duplicates=True)
        .execute()
    )
    assert [r["wamid"] for r in rows(first)] == [row["wamid"]]

    again = (
        await clients.service_db.table("messages")
        .upsert({**row, "content": {"body": "second"}}, on_conflict="wamid", ignore_duplicates=True)
        .execute()
    )
    assert rows(again) == []

    stored = rows(
        await clients.service_db.table("messages")
        .select("content")
        .eq("wamid", row["wamid"])
        .execute()
    )
    assert stored == [{"content": {"body": "first"}}]


# --- agents' tokens straight at PostgREST ---------------------------------------------------------


# The gateway is the real stack; only 360dialog is faked.
ONLY_360DIALOG_MOCKED = pytest.mark.httpx_mock(
    should_mock=lambda request: request.url.host == "waba-v2.360dialog.io"
)


@pytest.fixture
async def rest(stack_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway as a browser reaches it: the anon key plus the agent's bearer token."""
    async with httpx.AsyncClient(
        base_url=f"{stack_env['SUPABASE_URL']}/rest/v1",
        headers={"apikey": stack_env["SUPABASE_ANON_KEY"]},
        timeout=60,
    ) as client:
        yield client


def add_member(tenant: Tenant, jwt_secret: str) -> tuple[uuid.UUID, dict[str, str]]:
    """A co-worker in the tenant's workspace: (user id, Authorization header)."""
    user_id = uuid.uuid4()
    email = f"coworker-{user_id.hex[:12]}@example.test"
    tenant.sql(
        "insert into auth.users (instance_id, id, aud, role, email) values "
        f"('00000000-0000-0000-0000-000000000000', '{user_id}', 'authenticated', "
        f"'authenticated', {lit(email)}); "
        "insert into public.workspace_members (workspace_id, user_id, role) values "
        f"('{tenant.workspace_id}', '{user_id}', 'owner')"
    )
    token = mint_access_token(jwt_secret, user_id, email=email)
    return user_id, {"Authorization": f"Bearer {token}"}


def preview(tenant: Tenant, conversation_id: uuid.UUID) -> str:
    return tenant.sql(
        f"select coalesce(last_message_preview, '') from public.conversations "
        f"where id = '{conversation_id}'"
    )


@pytest.mark.parametrize(
    "forged",
    [
        {"type": "image", "content": {}, "media_url": "javascript:alert(1)"},
        {"type": "template", "content": {"body": "Su pago fue aprobado", "name": "pago"}},
        {"type": "text", "content": {"body": "x" * 5_000_000}},
    ],
    ids=["javascript-url", "template", "5MB-body"],
)
async def test_an_agent_cannot_insert_a_message_through_the_data_api(
    rest: httpx.AsyncClient, tenant: Tenant, forged: dict[str, Any]
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation, body="¿Tienen talla M?")
    before = preview(tenant, conversation)
    row = {
        "conversation_id": str(conversation),
        "direction": "outbound",
        "status": "pending",
        "sent_by": str(tenant.user_id),
        **forged,
    }

    response = await rest.post("/messages", json=row, headers=tenant.headers)

    assert response.status_code in (401, 403, 413), response.text[:200]
    if response.status_code != 413:
        assert response.json()["code"] == "42501"
    count = tenant.sql(
        f"select count(*) from public.messages where conversation_id = '{conversation}' "
        "and direction = 'outbound'"
    )
    assert count == "0"
    assert preview(tenant, conversation) == before == "¿Tienen talla M?"


@pytest.mark.parametrize(
    "oversized",
    [{"city": "x" * 5_000_000}, {"email": "a" * 4_000_000 + "@example.com"}],
    ids=["5MB-city", "4MB-email"],
)
async def test_an_agent_cannot_store_megabytes_on_a_contact(
    rest: httpx.AsyncClient, tenant: Tenant, oversized: dict[str, str]
) -> None:
    """Linked to every conversation, such a contact made each co-worker's inbox page gigabytes."""
    phone = f"+{new_phone()}"
    row = {"workspace_id": str(tenant.workspace_id), "phone": phone, **oversized}

    response = await rest.post("/contacts", json=row, headers=tenant.headers)

    assert response.status_code == 400, response.text[:200]
    assert response.json()["code"] == "23514"
    assert tenant.sql(f"select count(*) from public.contacts where phone = {lit(phone)}") == "0"


@ONLY_360DIALOG_MOCKED
async def test_idempotency_keys_cannot_be_read_by_anyone_but_the_service(
    rest: httpx.AsyncClient, tenant: Tenant, jwt_secret: str, httpx_mock: HTTPXMock, api: Api
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.secret"))
    sent = await send(api, tenant, conversation, {"type": "text", "text": "hola"}, "order-42")
    assert sent.status_code == 201, sent.text
    _, coworker = add_member(tenant, jwt_secret)

    keys = await rest.get("/reply_idempotency_keys", params={"select": "*"}, headers=coworker)
    own_keys = await rest.get("/reply_idempotency_keys", headers=tenant.headers)
    messages = await rest.get(
        "/messages",
        params={"select": "*", "conversation_id": f"eq.{conversation}", "direction": "eq.outbound"},
        headers=coworker,
    )

    assert (keys.status_code, keys.json()["code"]) == (403, "42501")
    assert (own_keys.status_code, own_keys.json()["code"]) == (403, "42501")
    assert messages.status_code == 200
    [reply] = messages.json()
    assert reply["id"] == sent.json()["id"]
    assert "order-42" not in messages.text
    assert "order-42" not in sent.text


@ONLY_360DIALOG_MOCKED
async def test_another_agents_key_never_blocks_or_replays(
    rest: httpx.AsyncClient, tenant: Tenant, jwt_secret: str, httpx_mock: HTTPXMock, api: Api
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    owner_id, owner = add_member(tenant, jwt_secret)
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.agent"))
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.owner"))

    # The agent tries to plant the key directly first: refused by the database.
    planted = await rest.post(
        "/messages",
        json={
            "conversation_id": str(conversation),
            "direction": "outbound",
            "status": "pending",
            "type": "text",
            "content": {"body": "hola"},
            "sent_by": str(tenant.user_id),
            "idempotency_key": "order-42",
        },
        headers=tenant.headers,
    )
    assert planted.status_code in (400, 401, 403), planted.text
    agents = await send(api, tenant, conversation, {"type": "text", "text": "hola"}, "order-42")

    async def owner_send(text: str) -> httpx.Response:
        return await api.post(
            f"/api/conversations/{conversation}/messages",
            json={"type": "text", "text": text},
            headers={**owner, "Idempotency-Key": "order-42"},
        )

    same_body = await owner_send("hola")
    other_body = await owner_send("pedido listo")

    assert agents.status_code == 201, agents.text
    assert same_body.status_code == 201, same_body.text
    assert "Idempotent-Replayed" not in same_body.headers
    assert same_body.json()["id"] != agents.json()["id"]
    assert same_body.json()["sent_by"] == str(owner_id)
    assert same_body.json()["wamid"] == "wamid.OUT.owner"
    # The owner's own key replays the owner's message, and only that.
    assert other_body.status_code == 422
    assert other_body.json()["error"] == "idempotency_key_reused"
    assert len(httpx_mock.get_requests()) == 2
    senders = tenant.sql(
        "select string_agg(sent_by::text, ',' order by created_at) from public.messages "
        f"where conversation_id = '{conversation}' and direction = 'outbound'"
    )
    assert senders == f"{tenant.user_id},{owner_id}"


async def test_another_workspaces_tag_pair_gives_one_error_whether_it_exists_or_not(
    rest: httpx.AsyncClient, tenant: Tenant, other: Tenant
) -> None:
    tagged = other.add_contact("Camila", tags=("VIP",))
    untagged_tag = other.sql(
        f"insert into public.tags (workspace_id, name) values ('{other.workspace_id}', 'Nuevo') "
        "returning id"
    )
    tag = other.sql(
        f"select id from public.tags where workspace_id = '{other.workspace_id}' and name = 'VIP'"
    )

    async def attach(tag_id: str) -> httpx.Response:
        return await rest.post(
            "/contact_tags",
            json={
                "workspace_id": str(tenant.workspace_id),
                "contact_id": str(tagged),
                "tag_id": tag_id,
            },
            headers=tenant.headers,
        )

    existing = await attach(tag)
    missing = await attach(untagged_tag.splitlines()[0])

    assert existing.status_code == missing.status_code == 409
    assert existing.json()["code"] == missing.json()["code"] == "23503"


async def test_reads_are_bounded_in_rows_and_the_nested_embedding_in_time(
    rest: httpx.AsyncClient, tenant: Tenant
) -> None:
    """db-max-rows (1000) caps every level; the 8 s statement timeout cuts the rest.

    1,200 messages of 4 KB: reading them once through each of 1,000 rows would
    be about 4 GB; the database gives up instead of building it.
    """
    conversation = tenant.add_conversation()
    tenant.sql(
        "insert into public.messages (conversation_id, direction, type, content) "
        f"select '{conversation}', 'inbound', 'text', "
        "jsonb_build_object('body', repeat('x', 4000)) from generate_series(1, 1200)"
    )
    mine = {"conversation_id": f"eq.{conversation}"}

    flat = await rest.get("/messages", params={"select": "id", **mine}, headers=tenant.headers)
    one_level = await rest.get(
        "/conversations",
        params={"select": "id,messages(id)", "id": f"eq.{conversation}"},
        headers=tenant.headers,
    )
    nested = await rest.get(
        "/messages",
        params={"select": "id,conversations(messages(content))", **mine},
        headers=tenant.headers,
    )

    assert flat.status_code == 200
    assert len(flat.json()) == 1000
    assert len(one_level.json()[0]["messages"]) == 1000
    assert nested.status_code == 500
    assert nested.json()["code"] == "57014"  # canceling statement due to statement timeout
    assert len(nested.content) < 1000
