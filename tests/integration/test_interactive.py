"""Interactive replies through the agent API, and the customer's answers linked to them.

Real stack as a real agent; 360dialog faked with pytest-httpx.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pytest_httpx import HTTPXMock

from tests.support.agent import Tenant, lit

MESSAGES_URL = "https://waba-v2.360dialog.io/messages"
Api = AsyncTestClient[Litestar]

BUTTONS = {
    "type": "interactive",
    "interactive": {
        "type": "button",
        "body": "¿Confirmas el pedido?",
        "footer": "Tienda",
        "buttons": [{"id": "si", "title": "Sí"}, {"id": "no", "title": "No"}],
    },
}
LIST = {
    "type": "interactive",
    "interactive": {
        "type": "list",
        "body": "¿Qué quieres?",
        "button": "Ver menú",
        "sections": [
            {"title": "Pizzas", "rows": [{"id": "p1", "title": "Margarita"}]},
            {
                "title": "Bebidas",
                "rows": [{"id": "b1", "title": "Agua", "description": "500 ml"}],
            },
        ],
    },
}


async def send(
    api: Api, tenant: Tenant, conversation: uuid.UUID, body: dict[str, Any], key: str
) -> httpx.Response:
    return await api.post(
        f"/api/conversations/{conversation}/messages",
        json=body,
        headers={**tenant.headers, "Idempotency-Key": key},
    )


def outbound_count(tenant: Tenant, conversation: uuid.UUID) -> int:
    return int(
        tenant.sql(
            "select count(*) from public.messages "
            f"where conversation_id = '{conversation}' and direction = 'outbound'"
        )
    )


@pytest.mark.parametrize("payload", [BUTTONS, LIST], ids=["buttons", "list"])
async def test_an_interactive_reply_is_sent_inside_the_window(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock, payload: dict[str, Any]
) -> None:
    conversation = tenant.add_conversation("+573001110000")
    tenant.add_inbound(conversation, ago=timedelta(hours=23, minutes=50))
    httpx_mock.add_response(
        url=MESSAGES_URL,
        method="POST",
        json={"messaging_product": "whatsapp", "messages": [{"id": "wamid.OUT.int"}]},
    )

    response = await send(api, tenant, conversation, payload, "k-int")

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["type"], body["status"]) == ("interactive", "sent")
    assert body["content"] == payload["interactive"]
    sent = json.loads(httpx_mock.get_requests()[0].content)
    assert sent["type"] == "interactive"
    assert sent["interactive"]["type"] == payload["interactive"]["type"]
    assert sent["interactive"]["body"] == {"text": payload["interactive"]["body"]}
    # The inbox previews it by its text.
    preview = tenant.sql(
        f"select last_message_preview from public.conversations where id = '{conversation}'"
    )
    assert preview == payload["interactive"]["body"]


async def test_an_interactive_reply_outside_the_window_is_409(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation, ago=timedelta(hours=24, minutes=1))

    response = await send(api, tenant, conversation, BUTTONS, "k-late")

    assert response.status_code == 409
    assert response.json()["error"] == "window_closed"
    assert httpx_mock.get_requests() == []
    assert outbound_count(tenant, conversation) == 0


def _with(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**payload, "interactive": {**payload["interactive"], **changes}}


@pytest.mark.parametrize(
    ("payload", "rule"),
    [
        (_with(BUTTONS, buttons=[]), "length >= 1"),
        (_with(BUTTONS, buttons=[{"id": str(n), "title": str(n)} for n in range(4)]), "<= 3"),
        (_with(BUTTONS, buttons=[{"id": "a", "title": "x" * 21}]), "length <= 20"),
        (
            _with(BUTTONS, buttons=[{"id": "a", "title": "Sí"}, {"id": "a", "title": "No"}]),
            "used twice",
        ),
        (
            _with(BUTTONS, buttons=[{"id": "a", "title": "Sí"}, {"id": "b", "title": "Sí"}]),
            "same title",
        ),
        (
            _with(
                LIST,
                sections=[
                    {"title": "A", "rows": [{"id": f"a{n}", "title": "x"} for n in range(6)]},
                    {"title": "B", "rows": [{"id": f"b{n}", "title": "x"} for n in range(5)]},
                ],
            ),
            "at most 10 rows",
        ),
        (
            _with(
                LIST,
                sections=[
                    {"title": "A", "rows": [{"id": "a", "title": "x"}]},
                    {"rows": [{"id": "b", "title": "x"}]},
                ],
            ),
            "needs a `title`",
        ),
        (
            _with(LIST, sections=[{"rows": [{"id": "a", "title": "x" * 25}]}]),
            "length <= 24",
        ),
    ],
)
async def test_a_broken_interactive_rule_is_422_naming_it(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock, payload: dict[str, Any], rule: str
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)

    response = await send(api, tenant, conversation, payload, "k-bad")

    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_input"
    assert rule in json.dumps(response.json()["detail"], ensure_ascii=False)
    assert httpx_mock.get_requests() == []
    assert outbound_count(tenant, conversation) == 0


async def test_the_customers_answer_is_linked_to_the_message_it_answers(
    api: Api, tenant: Tenant
) -> None:
    conversation = tenant.add_conversation()
    asked_id, asked_wamid = tenant.add_inbound(conversation, ago=timedelta(minutes=10))
    tenant.sql(
        f"update public.messages set direction = 'outbound', type = 'interactive', "
        f"content = {lit(json.dumps(BUTTONS['interactive']))}::jsonb "
        f"where id = '{asked_id}'"
    )
    answer = {"kind": "button_reply", "id": "si", "title": "Sí", "context": {"id": asked_wamid}}
    answer_id, _ = tenant.add_inbound(
        conversation,
        ago=timedelta(minutes=5),
        message_type="interactive",
        content=json.dumps(answer),
    )
    unknown = {"kind": "list_reply", "id": "p1", "title": "X", "context": {"id": "wamid.GONE"}}
    orphan_id, _ = tenant.add_inbound(
        conversation,
        ago=timedelta(minutes=4),
        message_type="interactive",
        content=json.dumps(unknown),
    )
    other = tenant.add_conversation()
    _, elsewhere = tenant.add_inbound(other, ago=timedelta(minutes=3))
    stray = {"body": "hola", "context": {"id": elsewhere}}
    stray_id, _ = tenant.add_inbound(
        conversation, ago=timedelta(minutes=2), content=json.dumps(stray)
    )

    response = await api.get(f"/api/conversations/{conversation}/messages", headers=tenant.headers)

    assert response.status_code == 200
    by_id = {m["id"]: m for m in response.json()["items"]}
    assert by_id[str(answer_id)]["in_reply_to_message_id"] == str(asked_id)
    assert by_id[str(answer_id)]["content"]["title"] == "Sí"
    # Unknown here, or in another conversation: no link.
    assert by_id[str(orphan_id)]["in_reply_to_message_id"] is None
    assert by_id[str(stray_id)]["in_reply_to_message_id"] is None
    assert by_id[str(asked_id)]["in_reply_to_message_id"] is None
