"""Broadcast from the database: who may join a workspace's topic, and what the triggers send.

The join check is the Realtime server's own (authorization.ex, replayed by
tests/support/realtime.py); the broadcasts are the rows the migration's
triggers write to realtime.messages while the product works as it does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import jwt
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pytest_httpx import HTTPXMock

from service.clients import Clients
from service.settings import Settings
from service.tokens import mint_access_token
from tests.support.inbox import (
    CHANNEL_A,
    CHANNEL_B,
    SECRET_B,
    WORKSPACE_A,
    WORKSPACE_B,
    deliver,
    drain,
)
from tests.support.payloads import messages_payload, new_phone, text_message, text_payload
from tests.support.realtime import Rights, connect_as_server, join_rights
from tests.support.stack import psql

Api = AsyncTestClient[Litestar]
MESSAGES_URL = "https://waba-v2.360dialog.io/messages"
AGENT_A = "a0000000-0000-4000-8000-0000000000a1"
AGENT_B = "b0000000-0000-4000-8000-0000000000b1"
TOPIC_A = f"workspace:{WORKSPACE_A}"
TOPIC_B = f"workspace:{WORKSPACE_B}"
MEMBER = Rights(broadcast_read=True, presence_read=True, broadcast_write=False, presence_write=True)
NOBODY = Rights(
    broadcast_read=False, presence_read=False, broadcast_write=False, presence_write=False
)
# Everything a trigger may put in a change: ids, what changed, small state.
MESSAGE_KEYS = {"op", "message_id", "conversation_id", "direction", "status", "changed"}
CONVERSATION_KEYS = {
    "op", "conversation_id", "changed", "status", "is_read", "unread_count", "assigned_to",
    "last_message_at",
}  # fmt: skip


def claims(secret: str, user_id: str | None, role: str = "authenticated") -> dict[str, Any]:
    if user_id is None:
        # The anon key's claims: no sub.
        return {"iss": "supabase-demo", "role": "anon", "exp": 1983812996}
    token = mint_access_token(secret, user_id, role=role)
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


@pytest.fixture
async def server(stack_env: dict[str, str]) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect_as_server(stack_env)
    yield connection
    await connection.close()


@pytest.mark.parametrize(
    ("user", "topic", "expected"),
    [
        (AGENT_A, TOPIC_A, MEMBER),
        (AGENT_B, TOPIC_B, MEMBER),
        (AGENT_B, TOPIC_A, NOBODY),
        (AGENT_A, TOPIC_B, NOBODY),
        (None, TOPIC_A, NOBODY),
        (AGENT_A, "workspace:not-a-uuid", NOBODY),
        (AGENT_A, f"workspace:{WORKSPACE_A}:x", NOBODY),
        (AGENT_B, f"workspace:{WORKSPACE_A}\n", NOBODY),
        (AGENT_B, f"x-workspace:{WORKSPACE_A}", NOBODY),
        (AGENT_B, f"workspace:{WORKSPACE_B}workspace:{WORKSPACE_A}", NOBODY),
        (AGENT_A, "inbox", NOBODY),
    ],
    ids=[
        "member",
        "member-b",
        "other-workspace",
        "other-workspace-b",
        "anon",
        "bad-topic",
        "suffixed-topic",
        "newline-suffixed-topic",
        "prefixed-topic",
        "two-uuids-topic",
        "other-topic",
    ],
)
async def test_only_members_join_their_workspace_topic(
    server: asyncpg.Connection,
    jwt_secret: str,
    user: str | None,
    topic: str,
    expected: Rights,
) -> None:
    assert await join_rights(server, topic, claims(jwt_secret, user)) == expected


async def broadcasts(server: asyncpg.Connection, since: Any) -> list[dict[str, Any]]:
    rows = await server.fetch(
        "select topic, extension, event, private, payload::text as payload "
        "from realtime.messages where inserted_at >= $1 and topic in ($2, $3) "
        "order by inserted_at, id",
        since,
        TOPIC_A,
        TOPIC_B,
    )
    return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]


async def test_triggers_send_small_events_to_the_workspace_topic(
    api: Api,
    clients: Clients,
    settings: Settings,
    stack_env: dict[str, str],
    server: asyncpg.Connection,
    jwt_secret: str,
    httpx_mock: HTTPXMock,
) -> None:
    since = await server.fetchval("select now() at time zone 'utc'")
    phone_a, phone_b = new_phone(), new_phone()
    body_a = f"Mi dirección es Calle {uuid.uuid4().hex[:8]}"
    assert await deliver(api, text_payload(CHANNEL_A, phone_a, body_a)) == 200
    body_b = text_payload(CHANNEL_B, phone_b, "Buenas tardes")
    assert await deliver(api, body_b, secret=SECRET_B) == 200
    await drain(clients, settings)
    conversation_a = psql(
        stack_env["DATABASE_URL"], f"select id from public.conversations where phone = '+{phone_a}'"
    )
    conversation_b = psql(
        stack_env["DATABASE_URL"], f"select id from public.conversations where phone = '+{phone_b}'"
    )
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json={"success": True})
    headers = {"Authorization": f"Bearer {mint_access_token(jwt_secret, AGENT_A)}"}
    assert (await api.post(f"/api/conversations/{conversation_a}/read", headers=headers)).is_success

    sent = await broadcasts(server, since)

    assert sent, "the triggers wrote nothing to realtime.messages"
    for row in sent:
        assert (row["extension"], row["private"]) == ("broadcast", True), row
        assert row["event"] in {"message", "conversation"}, row
        # The changes of one statement in one workspace, and the broadcast's id.
        assert set(row["payload"]) == {"changes", "id"}, row
        keys = MESSAGE_KEYS if row["event"] == "message" else CONVERSATION_KEYS
        for change in row["payload"]["changes"]:
            assert set(change) <= keys, row
        # Never the customer's words or number.
        text = json.dumps(row["payload"])
        assert body_a not in text, row
        assert phone_a not in text, row
        assert phone_b not in text, row
    for_a = [c for r in sent if r["topic"] == TOPIC_A for c in r["payload"]["changes"]]
    for_b = [c for r in sent if r["topic"] == TOPIC_B for c in r["payload"]["changes"]]
    # Each workspace's changes on its own topic only.
    assert {p["conversation_id"] for p in for_a} >= {conversation_a}
    assert conversation_b not in {p["conversation_id"] for p in for_a}
    assert conversation_a not in {p["conversation_id"] for p in for_b}
    created_b = [p for p in for_b if p["op"] == "INSERT" and "message_id" not in p]
    assert conversation_b in {p["conversation_id"] for p in created_b}
    events_a = [p for p in for_a if p["conversation_id"] == conversation_a]
    ops = [(p["op"], "message_id" in p) for p in events_a]
    assert ("INSERT", False) in ops, ops  # the conversation
    assert ("INSERT", True) in ops, ops  # its first message
    stats = [p for p in events_a if p["op"] == "UPDATE" and "message_id" not in p]
    assert any(
        {"unread_count", "last_message_preview"} <= set(p["changed"]) and p["unread_count"] == 1
        for p in stats
    ), stats
    assert any(
        "is_read" in p["changed"] and p["is_read"] is True and p["unread_count"] == 0 for p in stats
    ), stats
    # An update that changes nothing an agent sees sends nothing.
    before = len(await broadcasts(server, since))
    psql(
        stack_env["DATABASE_URL"],
        f"update public.conversations set updated_at = now() where id = '{conversation_a}'",
    )
    assert len(await broadcasts(server, since)) == before


async def test_a_new_name_or_user_id_of_the_customer_is_broadcast(
    api: Api,
    clients: Clients,
    settings: Settings,
    stack_env: dict[str, str],
    server: asyncpg.Connection,
) -> None:
    phone = new_phone()
    user_id = "CO." + str(uuid.uuid4().int)[:16]
    first = messages_payload(CHANNEL_A, phone, [text_message(phone, "hola")], name="Ana")
    assert await deliver(api, first) == 200
    await drain(clients, settings)
    conversation = psql(
        stack_env["DATABASE_URL"], f"select id from public.conversations where phone = '+{phone}'"
    )
    since = await server.fetchval("select now() at time zone 'utc'")

    # The customer renames their profile and WhatsApp starts sending the user id:
    # the list shows another name, so agents must learn it without a new preview.
    renamed = messages_payload(CHANNEL_A, phone, [text_message(phone, "soy yo")], name="Ana Ruiz")
    renamed["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] = user_id
    assert await deliver(api, renamed) == 200
    await drain(clients, settings)

    changes = [
        c
        for r in await broadcasts(server, since)
        if r["event"] == "conversation"
        for c in r["payload"]["changes"]
        if c["conversation_id"] == conversation and c["op"] == "UPDATE"
    ]
    named = {name for c in changes for name in c["changed"]}
    assert {"profile_name", "user_id"} <= named, changes
    # Still only names of what changed, never the values.
    text = json.dumps(changes)
    assert "Ana Ruiz" not in text, changes
    assert user_id not in text, changes
