"""postgres_changes as hosted Supabase Realtime decides them, with its own SQL.

A temporary wal2json slot, realtime.subscription rows with the JWT claims of
agents of two workspaces, and realtime.list_changes polling: the queries the
Realtime server runs (tests/support/realtime.py reads them from the vendored
server files). Meanwhile the product writes the way it does: webhooks through
the worker, a reply and mark read / archive through the agent API.
"""

from __future__ import annotations

import asyncio
import random
import string
import time
import uuid
from collections.abc import Iterable
from typing import Any

import jwt
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
from tests.support.payloads import new_phone, new_wamid, status, statuses_payload, text_payload
from tests.support.realtime import Change, ChangesPoller, changes_poller
from tests.support.stack import psql

Api = AsyncTestClient[Litestar]
MESSAGES_URL = "https://waba-v2.360dialog.io/messages"
# From supabase/seed.sql: the owner and an agent of A, an agent of B.
OWNER_A = "a0000000-0000-4000-8000-00000000000a"
AGENT_A = "a0000000-0000-4000-8000-0000000000a1"
AGENT_B = "b0000000-0000-4000-8000-0000000000b1"
MEMBERS = {WORKSPACE_A: (OWNER_A, AGENT_A), WORKSPACE_B: (AGENT_B,)}
TABLES = ("conversations", "messages")


def claims(jwt_secret: str, user_id: str) -> dict[str, Any]:
    """What the server stores for a subscriber: the decoded access token."""
    token = mint_access_token(jwt_secret, user_id)
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def selectable_columns(database_url: str, table: str) -> set[str]:
    """The columns `authenticated` may select, from the catalog (survives new columns)."""
    out = psql(
        database_url,
        "select string_agg(attname, ',') from pg_attribute "
        f"where attrelid = 'public.{table}'::regclass and attnum > 0 and not attisdropped "
        f"and has_column_privilege('authenticated', attrelid, attname, 'SELECT')",
    )
    return set(out.split(","))


def incompressible(length: int) -> str:
    """A body pglz cannot shrink, so Postgres stores it out of line (TOAST)."""
    rng = random.Random(12)
    return "".join(rng.choices(string.ascii_letters + string.digits, k=length))


async def collect(
    poller: ChangesPoller, done: Any, *, within_seconds: float = 30.0
) -> list[Change]:
    """Poll as the server does until `done(changes)` holds (or the deadline passes)."""
    seen: list[Change] = []
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline:
        changes, _ = await poller.poll()
        seen.extend(changes)
        if done(seen):
            return seen
        await asyncio.sleep(0.1)
    return seen


def find(changes: Iterable[Change], table: str, kind: str, **record: Any) -> list[Change]:
    return [
        c
        for c in changes
        if c.table == table
        and c.type == kind
        and all(c.record.get(k) == v for k, v in record.items())
    ]


async def test_changes_reach_exactly_the_workspace_agents_with_their_columns(
    api: Api,
    clients: Clients,
    settings: Settings,
    stack_env: dict[str, str],
    jwt_secret: str,
    httpx_mock: HTTPXMock,
) -> None:
    database_url = stack_env["DATABASE_URL"]
    long_body = incompressible(4000)
    phone_a, phone_b = new_phone(), new_phone()
    out_wamid = new_wamid("wamid.OUT")
    agent_a_headers = {"Authorization": f"Bearer {mint_access_token(jwt_secret, AGENT_A)}"}

    async with changes_poller(stack_env) as poller:
        subscribers: dict[tuple[str, str], uuid.UUID] = {}
        for members in MEMBERS.values():
            for user in members:
                for table in TABLES:
                    subscribers[user, table] = await poller.subscribe(
                        claims(jwt_secret, user), table
                    )

        # The product writes: a customer writes to each workspace (worker) ...
        assert await deliver(api, text_payload(CHANNEL_A, phone_a, "Hola, ¿la talla M?")) == 200
        body_b = text_payload(CHANNEL_B, phone_b, "Buenas tardes")
        assert await deliver(api, body_b, secret=SECRET_B) == 200
        await drain(clients, settings)
        conversation_a, conversation_b = (
            psql(database_url, f"select id from public.conversations where phone = '+{phone}'")
            for phone in (phone_a, phone_b)
        )
        # The open conversation's messages, as docs/FRONTEND.md subscribes to them.
        open_conversation = await poller.subscribe(
            claims(jwt_secret, AGENT_A), "messages", eq=("conversation_id", conversation_a)
        )
        # ... an agent replies with a long text (agent API; 360dialog faked) ...
        httpx_mock.add_response(
            url=MESSAGES_URL,
            method="POST",
            json={"messaging_product": "whatsapp", "messages": [{"id": out_wamid}]},
        )
        reply = await api.post(
            f"/api/conversations/{conversation_a}/messages",
            json={"type": "text", "text": long_body},
            headers={**agent_a_headers, "Idempotency-Key": f"k-{uuid.uuid4()}"},
        )
        assert reply.status_code == 201, reply.text
        reply_id = reply.json()["id"]
        # ... WhatsApp reports it delivered (worker) ...
        delivered = statuses_payload(CHANNEL_A, [status(out_wamid, "delivered", phone_a)])
        assert await deliver(api, delivered) == 200
        await drain(clients, settings)
        # ... and the agent reads, archives.
        httpx_mock.add_response(url=MESSAGES_URL, method="POST", json={"success": True})
        read = await api.post(f"/api/conversations/{conversation_a}/read", headers=agent_a_headers)
        assert read.status_code == 200, read.text
        archived = await api.post(
            f"/api/conversations/{conversation_a}/archive", headers=agent_a_headers
        )
        assert archived.status_code == 200, archived.text

        def done(seen: list[Change]) -> bool:
            return bool(
                find(seen, "conversations", "UPDATE", id=conversation_a, status="archived")
                and find(seen, "messages", "UPDATE", id=reply_id, status="delivered")
                and find(seen, "messages", "INSERT", conversation_id=conversation_b)
            )

        changes = await collect(poller, done)

    assert done(changes), [(c.table, c.type, c.record.get("id")) for c in changes]
    # The body really is stored out of line, the case the WAL leaves out.
    assert int(psql(database_url, f"select pg_column_size(content) from public.messages "
                                  f"where id = '{reply_id}'")) > 2100  # fmt: skip

    # Nothing failed: no 400/401/413 for any subscriber.
    assert [c.errors for c in changes if c.errors] == []
    assert {c.type for c in changes} == {"INSERT", "UPDATE"}
    columns = {table: selectable_columns(database_url, table) for table in TABLES}
    for change in changes:
        workspace = change.record["workspace_id"]
        allowed = {subscribers[user, change.table] for user in MEMBERS.get(workspace, ())}
        if change.table == "messages" and change.record["conversation_id"] == conversation_a:
            allowed.add(open_conversation)
        # Exactly the members of the row's workspace, whichever workspace it is.
        assert change.subscription_ids == allowed, (change.table, change.type, workspace)
        # Exactly the columns an agent may select: no more, none missing.
        assert set(change.columns) == columns[change.table], change.table
        assert set(change.record) == columns[change.table], (change.table, change.type)

    # INSERT and UPDATE both arrive, with the conversation's unread count and preview.
    assert find(changes, "conversations", "INSERT", id=conversation_a)
    assert find(changes, "messages", "INSERT", conversation_id=conversation_a, direction="inbound")
    assert find(
        changes,
        "conversations",
        "UPDATE",
        id=conversation_a,
        unread_count=1,
        last_message_preview="Hola, ¿la talla M?",
    )
    assert find(changes, "conversations", "UPDATE", id=conversation_a, is_read=True, unread_count=0)
    # The status update of a long reply still carries its body: a browser that
    # replaces its row with the payload keeps the text.
    [delivered_change] = find(changes, "messages", "UPDATE", id=reply_id, status="delivered")
    assert delivered_change.record["content"] == {"body": long_body}
    for sent in find(changes, "messages", "UPDATE", id=reply_id):
        assert sent.record["content"] == {"body": long_body}, sent.record["status"]
    # The filtered subscription got its conversation's messages, inserts and updates.
    assert {
        (c.type, c.record["id"]) for c in changes if open_conversation in c.subscription_ids
    } >= {("INSERT", reply_id), ("UPDATE", reply_id)}
    # Workspace B's conversation reached B's agent only.
    [b_message] = find(changes, "messages", "INSERT", conversation_id=conversation_b)
    assert b_message.subscription_ids == {subscribers[AGENT_B, "messages"]}
