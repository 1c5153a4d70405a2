"""Customers known by phone, by WhatsApp user id (BSUID) or both; their names, searched.

Through the real webhook, worker, database and agent API; only 360dialog is faked.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import uuid
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pytest_httpx import HTTPXMock

from service.clients import Clients
from service.ingest.worker import Worker
from service.settings import Settings
from service.tokens import mint_access_token
from tests.support.agent import Tenant, lit
from tests.support.inbox import AGENT_A, CHANNEL_A, WORKSPACE_A, deliver, drain
from tests.support.payloads import (
    envelope,
    new_phone,
    new_wamid,
    status,
    statuses_payload,
    unix,
)
from tests.support.rows import rows
from tests.support.stack import psql

Api = AsyncTestClient[Litestar]
MESSAGES_URL = "https://waba-v2.360dialog.io/messages"


def new_user_id() -> str:
    return "CO." + "".join(random.choices(string.digits, k=16))


def word() -> str:
    """A made-up name part no other test uses (letters only: names are searched as words)."""
    return "".join(random.choices(string.ascii_lowercase, k=10))


def from_customer(
    *,
    phone: str | None = None,
    user_id: str | None = None,
    name: str | None = None,
    username: str | None = None,
    body: str = "hola",
    wamid: str | None = None,
) -> dict[str, Any]:
    """One inbound text as WhatsApp sends it since usernames: either key may be missing."""
    contact: dict[str, Any] = {"profile": {}}
    message: dict[str, Any] = {
        "id": wamid or new_wamid(),
        "timestamp": unix(),
        "type": "text",
        "text": {"body": body},
    }
    if name is not None:
        contact["profile"]["name"] = name
    if username is not None:
        contact["profile"]["username"] = username
    if phone is not None:
        contact["wa_id"] = phone
        message["from"] = phone
    if user_id is not None:
        contact["user_id"] = user_id
        message["from_user_id"] = user_id
    return envelope(CHANNEL_A, {"contacts": [contact], "messages": [message]})


async def receive(
    api: Api, clients: Clients, settings: Settings, payload: dict[str, Any]
) -> dict[str, Any]:
    """Delivers, drains, and returns the message's row (it must have been filed)."""
    assert await deliver(api, payload) == 200
    await drain(clients, settings)
    wamid = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    found = rows(
        await clients.service_db.table("messages").select("*").eq("wamid", wamid).execute()
    )
    assert len(found) == 1, f"{wamid} was not filed"
    return found[0]


async def conversation_row(clients: Clients, conversation_id: str) -> dict[str, Any]:
    found = rows(
        await clients.service_db.table("conversations")
        .select("*")
        .eq("id", conversation_id)
        .execute()
    )
    assert len(found) == 1
    return found[0]


@pytest.fixture
def agent_headers(jwt_secret: str) -> dict[str, str]:
    """An agent of the seeded workspace A, where the webhook files messages."""
    return {"Authorization": f"Bearer {mint_access_token(jwt_secret, uuid.UUID(AGENT_A))}"}


async def search(api: Api, headers: dict[str, str], query: str) -> list[dict[str, Any]]:
    response = await api.get(
        "/api/conversations",
        params={"workspace_id": WORKSPACE_A, "search": query},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# --- username-only customers ---------------------------------------------------------------


async def test_username_only_customer_is_filed_listed_searched_opened_and_counted(
    api: Api, clients: Clients, settings: Settings, agent_headers: dict[str, str]
) -> None:
    user_id, first, last, handle = new_user_id(), word(), word(), f"{word()}.cafe"
    name = f"Valentína {first.capitalize()} {last.capitalize()}"
    await receive(api, clients, settings, from_customer(user_id=user_id, name=name, body="uno"))
    second = await receive(
        api, clients, settings, from_customer(user_id=user_id, username=handle, body="dos")
    )

    conversation = await conversation_row(clients, second["conversation_id"])
    assert conversation["phone"] is None
    assert conversation["user_id"] == user_id
    assert conversation["profile_name"] == name  # kept: the second delivery carried none
    assert conversation["username"] == handle
    assert conversation["unread_count"] == 2
    assert conversation["last_message_preview"] == "dos"

    # Searchable by profile name (accents and case folded, any word order), username, typo.
    for query in (f"valentina {last}", f"{last.upper()} {first}", handle, f"@{handle}"):
        found = await search(api, agent_headers, query)
        assert [c["id"] for c in found] == [conversation["id"]], query
    typo = last[:-1] + ("a" if last[-1] != "a" else "e")
    assert [c["id"] for c in await search(api, agent_headers, f"{first} {typo}")] == [
        conversation["id"]
    ]

    details = await api.get(f"/api/conversations/{conversation['id']}", headers=agent_headers)
    assert details.status_code == 200
    opened = details.json()
    assert (opened["phone"], opened["user_id"]) == (None, user_id)
    assert (opened["profile_name"], opened["username"]) == (name, handle)
    assert opened["unread_count"] == 2

    read = await api.post(f"/api/conversations/{conversation['id']}/read", headers=agent_headers)
    assert read.status_code == 200
    assert read.json()["unread_count"] == 0


async def test_reply_status_and_reaction_of_a_username_only_customer(
    api: Api,
    clients: Clients,
    settings: Settings,
    agent_headers: dict[str, str],
    httpx_mock: HTTPXMock,
) -> None:
    user_id = new_user_id()
    inbound = await receive(api, clients, settings, from_customer(user_id=user_id))
    out_wamid = new_wamid("wamid.OUT")
    httpx_mock.add_response(
        url=MESSAGES_URL,
        method="POST",
        json={
            "messaging_product": "whatsapp",
            "contacts": [{"input": user_id, "user_id": user_id}],
            "messages": [{"id": out_wamid}],
        },
    )

    response = await api.post(
        f"/api/conversations/{inbound['conversation_id']}/messages",
        json={"type": "text", "text": "¡Hola!"},
        headers={**agent_headers, "Idempotency-Key": str(uuid.uuid4())},
    )

    assert response.status_code == 201, response.text
    [request] = httpx_mock.get_requests()
    sent = json.loads(request.content)
    # The Cloud API's field for a business-scoped user id; never a guessed `to`.
    assert sent["recipient"] == user_id
    assert "to" not in sent
    assert response.json()["wamid"] == out_wamid

    delivered = status(out_wamid, "delivered", "")
    del delivered["recipient_id"]
    delivered["recipient_user_id"] = user_id
    reaction = from_customer(user_id=user_id)
    value = reaction["entry"][0]["changes"][0]["value"]
    value["messages"][0] |= {
        "type": "reaction",
        "reaction": {"message_id": out_wamid, "emoji": "👍"},
    }
    del value["messages"][0]["text"]
    assert await deliver(api, statuses_payload(CHANNEL_A, [delivered])) == 200
    assert await deliver(api, reaction) == 200
    await drain(clients, settings)

    stored = rows(
        await clients.service_db.table("messages")
        .select("status,reaction")
        .eq("wamid", out_wamid)
        .execute()
    )
    assert stored[0]["status"] == "delivered"
    assert stored[0]["reaction"]["emoji"] == "👍"
    assert stored[0]["reaction"]["from"] == user_id


async def test_a_send_meta_cannot_make_to_a_user_id_is_422(
    api: Api,
    clients: Clients,
    settings: Settings,
    agent_headers: dict[str, str],
    httpx_mock: HTTPXMock,
) -> None:
    inbound = await receive(api, clients, settings, from_customer(user_id=new_user_id()))
    httpx_mock.add_response(
        url=MESSAGES_URL,
        method="POST",
        status_code=400,
        json={
            "error": {
                "message": "(#131062) Business-scoped User ID recipients are not supported",
                "type": "OAuthException",
                "code": 131062,
                "fbtrace_id": "AbC",
            }
        },
    )

    response = await api.post(
        f"/api/conversations/{inbound['conversation_id']}/messages",
        json={"type": "text", "text": "hola"},
        headers={**agent_headers, "Idempotency-Key": str(uuid.uuid4())},
    )

    assert response.status_code == 422
    assert response.json()["error"] == "recipient_unsupported"
    assert len(httpx_mock.get_requests()) == 1  # never retried


# --- one person, one conversation ------------------------------------------------------------


@pytest.mark.parametrize("order", ["phone_first", "id_first"])
async def test_phone_and_user_id_of_one_person_stay_one_conversation(
    api: Api, clients: Clients, settings: Settings, order: str
) -> None:
    phone, user_id = new_phone(), new_user_id()
    deliveries = [
        {"phone": phone},
        {"phone": phone, "user_id": user_id},
        {"user_id": user_id},
        {"phone": phone},
    ]
    if order == "id_first":
        deliveries = [
            {"user_id": user_id},
            {"phone": phone, "user_id": user_id},
            {"phone": phone},
            {"user_id": user_id},
        ]

    filed = [
        await receive(api, clients, settings, from_customer(**keys, body=f"m{i}"))
        for i, keys in enumerate(deliveries)
    ]

    assert len({m["conversation_id"] for m in filed}) == 1
    conversation = await conversation_row(clients, filed[0]["conversation_id"])
    assert (conversation["phone"], conversation["user_id"]) == (f"+{phone}", user_id)
    assert conversation["unread_count"] == 4
    count = psql(
        settings.database_url,
        f"select count(*) from public.conversations where phone = {lit('+' + phone)} "
        f"or user_id = {lit(user_id)}",
    )
    assert count == "1"


async def test_concurrent_deliveries_by_id_and_by_both_keys_make_one_conversation(
    api: Api, clients: Clients, settings: Settings
) -> None:
    phone, user_id = new_phone(), new_user_id()
    payloads = [
        from_customer(user_id=user_id, phone=phone if i % 2 else None, body=f"m{i}")
        for i in range(30)
    ]

    codes = await asyncio.gather(*(deliver(api, p) for p in payloads))
    assert codes == [200] * 30
    # Three workers racing on small batches: creation by either key races too.
    small = msgspec.structs.replace(settings, worker_batch_size=3)
    await asyncio.gather(*(Worker(clients.service_db, small).drain() for _ in range(3)))

    found = rows(
        await clients.service_db.table("conversations")
        .select("id,phone,user_id,unread_count")
        .eq("user_id", user_id)
        .execute()
    )
    assert [(c["phone"], c["unread_count"]) for c in found] == [(f"+{phone}", 30)]
    assert (
        psql(
            settings.database_url,
            f"select count(*) from public.conversations where phone = {lit('+' + phone)}",
        )
        == "1"
    )


async def test_two_conversations_of_one_person_stay_two_and_keep_their_keys(
    api: Api, clients: Clients, settings: Settings
) -> None:
    # A phone-only delivery, then an id-only one: two conversations before any
    # delivery told us they are one person (the documented rule: not merged).
    phone, user_id = new_phone(), new_user_id()
    by_phone = await receive(api, clients, settings, from_customer(phone=phone, body="p"))
    by_id = await receive(api, clients, settings, from_customer(user_id=user_id, body="u"))
    assert by_phone["conversation_id"] != by_id["conversation_id"]

    both = await receive(
        api, clients, settings, from_customer(phone=phone, user_id=user_id, body="both")
    )
    later_id = await receive(api, clients, settings, from_customer(user_id=user_id, body="u2"))

    assert both["conversation_id"] == by_phone["conversation_id"]
    assert later_id["conversation_id"] == by_id["conversation_id"]
    phone_side = await conversation_row(clients, by_phone["conversation_id"])
    id_side = await conversation_row(clients, by_id["conversation_id"])
    assert (phone_side["phone"], phone_side["user_id"]) == (f"+{phone}", None)
    assert (id_side["phone"], id_side["user_id"]) == (None, user_id)


async def test_one_user_id_with_two_phones_in_one_delivery_is_filed(
    api: Api, clients: Clients, settings: Settings
) -> None:
    # The same user id from two phones in one batch (a customer who changed
    # number): the user id can key one conversation only, and the batch must
    # not trip over the (workspace_id, user_id) unique index.
    user_id, old_phone, new_phone_ = new_user_id(), new_phone(), new_phone()
    first = from_customer(phone=old_phone, user_id=user_id, body="antes")
    second = from_customer(phone=new_phone_, user_id=user_id, body="después")
    value = first["entry"][0]["changes"][0]["value"]
    later = second["entry"][0]["changes"][0]["value"]
    later["messages"][0]["timestamp"] = str(int(value["messages"][0]["timestamp"]) + 1)
    value["contacts"] += later["contacts"]
    value["messages"] += later["messages"]
    wamids = [m["id"] for m in value["messages"]]

    assert await deliver(api, first) == 200
    report = await drain(clients, settings)

    assert report.failed == 0
    filed = rows(
        await clients.service_db.table("messages")
        .select("wamid,conversation_id")
        .in_("wamid", wamids)
        .execute()
    )
    assert len(filed) == 2
    holders = rows(
        await clients.service_db.table("conversations")
        .select("phone")
        .eq("user_id", user_id)
        .execute()
    )
    # The newest phone carries the user id; the other is keyed by its phone.
    assert holders == [{"phone": f"+{new_phone_}"}]


async def test_a_user_id_known_alone_takes_the_newest_of_two_phones_in_one_delivery(
    api: Api, clients: Clients, settings: Settings
) -> None:
    user_id = new_user_id()
    known = await receive(api, clients, settings, from_customer(user_id=user_id, body="hola"))
    # The older phone sorts first, so an arbitrary pick tends to take it.
    old_phone = new_phone()
    new_phone_ = str(int(old_phone) + 1)
    first = from_customer(phone=old_phone, user_id=user_id, body="antes")
    second = from_customer(phone=new_phone_, user_id=user_id, body="después")
    value = first["entry"][0]["changes"][0]["value"]
    later = second["entry"][0]["changes"][0]["value"]
    later["messages"][0]["timestamp"] = str(int(value["messages"][0]["timestamp"]) + 1)
    value["contacts"] += later["contacts"]
    value["messages"] += later["messages"]

    assert await deliver(api, first) == 200
    report = await drain(clients, settings)

    assert report.failed == 0
    conversation = await conversation_row(clients, known["conversation_id"])
    assert (conversation["phone"], conversation["user_id"]) == (f"+{new_phone_}", user_id)
    assert conversation["unread_count"] == 2


async def test_profile_name_follows_the_customer(
    api: Api, clients: Clients, settings: Settings, agent_headers: dict[str, str]
) -> None:
    phone, old, new = new_phone(), word(), word()
    first = await receive(
        api, clients, settings, from_customer(phone=phone, name=f"Ana {old.capitalize()}")
    )
    await receive(api, clients, settings, from_customer(phone=phone, name=f"Ana {new}"))

    conversation = await conversation_row(clients, first["conversation_id"])
    assert conversation["profile_name"] == f"Ana {new}"
    assert [c["id"] for c in await search(api, agent_headers, new)] == [conversation["id"]]
    assert [c["profile_name"] for c in await search(api, agent_headers, f"ana {new}")] == [
        f"Ana {new}"
    ]
    assert await search(api, agent_headers, f"ana {old}") == []


async def test_contact_name_edits_reach_the_search(
    api: Api, clients: Clients, settings: Settings, agent_headers: dict[str, str]
) -> None:
    phone, before, after = new_phone(), word(), word()
    filed = await receive(api, clients, settings, from_customer(phone=phone))
    contact_id = uuid.uuid4()
    psql(
        settings.database_url,
        "insert into public.contacts (id, workspace_id, name, phone) values "
        f"('{contact_id}', '{WORKSPACE_A}', {lit(before)}, {lit('+' + phone)})",
    )
    link = await api.put(
        f"/api/conversations/{filed['conversation_id']}/contact",
        json={"contact_id": str(contact_id)},
        headers=agent_headers,
    )
    assert link.status_code == 200
    assert [c["id"] for c in await search(api, agent_headers, before)] == [filed["conversation_id"]]

    psql(
        settings.database_url,
        f"update public.contacts set name = {lit(after)} where id = '{contact_id}'",
    )

    assert await search(api, agent_headers, before) == []
    assert [c["id"] for c in await search(api, agent_headers, after)] == [filed["conversation_id"]]


# --- previews in the workspace's language ----------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "photo", "voice"),
    [
        ("es", "Foto", "Mensaje de voz"),
        ("pt", "Foto", "Mensagem de voz"),
        ("en", "Photo", "Voice message"),
    ],
)
async def test_previews_follow_the_workspace_locale(
    api: Api, tenant: Tenant, locale: str, photo: str, voice: str
) -> None:
    tenant.sql(
        f"update public.workspaces set locale = {lit(locale)} where id = '{tenant.workspace_id}'"
    )
    image = tenant.add_conversation()
    tenant.add_inbound(image, message_type="image", content='{"media_id": "1"}')
    audio = tenant.add_conversation()
    tenant.add_inbound(audio, message_type="audio", content='{"media_id": "2", "voice": true}')

    response = await api.get("/api/conversations", headers=tenant.headers)

    previews = {i["id"]: i["last_message_preview"] for i in response.json()["items"]}
    assert previews == {str(image): photo, str(audio): voice}


# --- members of several workspaces ----------------------------------------------------------


async def test_a_member_of_several_workspaces_names_the_one_to_list(
    api: Api, tenant: Tenant, other: Tenant
) -> None:
    mine = tenant.add_conversation()
    theirs = other.add_conversation()
    tenant.sql(
        "insert into public.workspace_members (workspace_id, user_id) values "
        f"('{other.workspace_id}', '{tenant.user_id}')"
    )

    mixed = await api.get("/api/conversations", headers=tenant.headers)
    searched = await api.get("/api/conversations", params={"search": "300"}, headers=tenant.headers)
    first = await api.get(
        "/api/conversations",
        params={"workspace_id": str(tenant.workspace_id)},
        headers=tenant.headers,
    )
    second = await api.get(
        "/api/conversations",
        params={"workspace_id": str(other.workspace_id)},
        headers=tenant.headers,
    )

    for refused in (mixed, searched):
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["key"] == "workspace_id"
    assert [(i["id"], i["workspace_id"]) for i in first.json()["items"]] == [
        (str(mine), str(tenant.workspace_id))
    ]
    assert [(i["id"], i["workspace_id"]) for i in second.json()["items"]] == [
        (str(theirs), str(other.workspace_id))
    ]


# --- search pages in a big workspace ----------------------------------------------------------


async def pages(api: Api, tenant: Tenant, **params: str) -> list[str]:
    """Every id of a search, following next_cursor page by page."""
    found: list[str] = []
    cursor: str | None = None
    while True:
        query = {"search": params["search"], "limit": "30"} | params
        if cursor:
            query["cursor"] = cursor
        response = await api.get("/api/conversations", params=query, headers=tenant.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        found += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


# "lucia" is everywhere: pages come from walking the newest conversations.
# "ximena" is only among the oldest 500: the walk of the newest 2,000 finds
# none and the trigram index finds them; "ximenna" (a typo) only close matches.
@pytest.mark.parametrize("search", ["lucia", "ximena", "ximenna"])
async def test_search_pages_in_a_big_workspace_are_exact_and_in_order(
    api: Api, tenant: Tenant, search: str
) -> None:
    tenant.sql(
        "insert into public.conversations (workspace_id, phone, phone_number_id, profile_name, "
        "is_read, last_message_at) "
        f"select '{tenant.workspace_id}', '+5731' || lpad(n::text, 8, '0'), "
        f"{lit(tenant.phone_number_id)}, "
        "case when n % 7 = 0 then 'Lucía Pérez' when n > 2000 and n % 9 = 0 then 'Ximena Ríos' "
        "     else 'Carlos Gómez' end, n % 2 = 0, now() - n * interval '1 minute' "
        "from generate_series(1, 2500) n"
    )
    name = "Lucía Pérez" if search == "lucia" else "Ximena Ríos"
    expected = tenant.sql(
        "select string_agg(id::text, ',' order by last_message_at desc, id desc) "
        f"from public.conversations where workspace_id = '{tenant.workspace_id}' "
        f"and profile_name = {lit(name)}"
    ).split(",")
    unread = tenant.sql(
        "select string_agg(id::text, ',' order by last_message_at desc, id desc) "
        f"from public.conversations where workspace_id = '{tenant.workspace_id}' "
        f"and profile_name = {lit(name)} and not is_read"
    ).split(",")
    assert len(expected) > 30  # more than one page

    assert await pages(api, tenant, search=search) == expected
    assert await pages(api, tenant, search=search, is_read="false") == unread
