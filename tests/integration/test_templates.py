"""Templates and the one send pipeline, against the real stack; only 360dialog is faked.

The templates a channel has come from 360dialog (pytest-httpx here, or the
fake that `make run` starts) through `template refresh`, the worker, or a
template error on send; agents list and send them through the API, and every
kind of reply keeps its window rule and its idempotency.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pytest_httpx import HTTPXMock

from scripts.fake360 import TEMPLATES, fake_360dialog
from service import cli
from service.app import create_app
from service.cache import ChannelCache
from service.clients import Clients
from service.ingest.worker import Worker
from service.settings import Settings
from service.template_refresh import TemplateRefresher
from service.whatsapp.d360 import D360Client
from tests.support.agent import Tenant
from tests.support.processes import free_port_block

BASE = "https://waba-v2.360dialog.io"
MESSAGES_URL = f"{BASE}/messages"
TEMPLATES_URL = f"{BASE}/v1/configs/templates?limit=1000&offset=0"
Api = AsyncTestClient[Litestar]

ORDER_UPDATE = {
    "type": "template",
    "name": "order_update",
    "language": "es",
    "parameters": {"header": ["#123"], "body": ["Ana", "#123"]},
}
# One valid reply of each kind, as an agent sends it.
KINDS: dict[str, dict[str, Any]] = {
    "text": {"type": "text", "text": "Hola"},
    "image": {"type": "image", "media_url": "https://example.com/a.jpg", "caption": "Foto"},
    "video": {"type": "video", "media_id": "1500000000020", "caption": "Video"},
    "audio": {"type": "audio", "media_url": "https://example.com/a.ogg"},
    "document": {"type": "document", "media_id": "1500000000021", "filename": "factura.pdf"},
    "sticker": {"type": "sticker", "media_url": "https://example.com/a.webp"},
    "template": ORDER_UPDATE,
    "interactive": {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": "¿Confirmas el pedido?",
            "buttons": [{"id": "si", "title": "Sí"}, {"id": "no", "title": "No"}],
        },
    },
}


def sent_ok(wamid: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "573000000000", "wa_id": "573000000000"}],
        "messages": [{"id": wamid}],
    }


@pytest.fixture
def local_fake_360dialog() -> Iterator[str]:
    # A sync fixture: the fake runs its own loop in a thread.
    with fake_360dialog(free_port_block(1, 59200)) as url:
        yield url


def store_templates(tenant: Tenant, templates: list[dict[str, Any]] = TEMPLATES) -> None:
    """What a refresh from the fake stores (written as the service role writes it)."""
    listed = [{**t, "status": str(t["status"]).lower(), "category": None} for t in templates]
    tenant.sql(
        f"select public.replace_channel_templates('{tenant.channel_id}', "
        f"$json${json.dumps(listed)}$json$::jsonb)"
    )


def stored_templates(tenant: Tenant) -> dict[str, str]:
    out = tenant.sql(
        "select coalesce(json_object_agg(name || '/' || language, status), '{}') "
        f"from public.whatsapp_templates where channel_id = '{tenant.channel_id}'"
    )
    loaded: dict[str, str] = json.loads(out)
    return loaded


def outbound_rows(tenant: Tenant, conversation_id: uuid.UUID) -> list[dict[str, Any]]:
    out = tenant.sql(
        "select coalesce(json_agg(m order by m.created_at), '[]') from public.messages m "
        f"where m.conversation_id = '{conversation_id}' and m.direction = 'outbound'"
    )
    loaded: list[dict[str, Any]] = json.loads(out)
    return loaded


async def send(
    api: Api, tenant: Tenant, conversation_id: uuid.UUID, body: dict[str, Any], key: str
) -> httpx.Response:
    return await api.post(
        f"/api/conversations/{conversation_id}/messages",
        json=body,
        headers={**tenant.headers, "Idempotency-Key": key},
    )


async def eventually(check: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    """Polls `check` until it holds, for at most 20 seconds."""
    deadline = time.monotonic() + 20
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.05)


async def run_cli(argv: list[str], settings: Settings) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await cli.run(cli.build_parser().parse_args(argv), settings, out, err)
    return code, out.getvalue() + err.getvalue()


# --- refresh ------------------------------------------------------------------------------


async def test_template_refresh_stores_what_360dialog_lists(
    settings: Settings, tenant: Tenant, local_fake_360dialog: str
) -> None:
    local = msgspec.structs.replace(settings, d360_base_url=local_fake_360dialog)
    store_templates(tenant, [{"name": "retired", "language": "es", "status": "approved"}])

    code, out = await run_cli(
        ["template", "refresh", "--phone-number-id", tenant.phone_number_id], local
    )

    assert code == 0, out
    assert out.strip() == f"{tenant.phone_number_id}: 4 template(s)"
    assert stored_templates(tenant) == {
        "hello_world/en_US": "approved",
        "order_update/es": "approved",
        "spring_sale/es": "paused",
        "catalog_photo/es": "approved",
    }
    category = tenant.row(
        "select category from public.whatsapp_templates "
        f"where channel_id = '{tenant.channel_id}' and name = 'spring_sale'"
    )
    assert category == ["marketing"]


async def test_template_refresh_of_an_unknown_channel_is_one_line(settings: Settings) -> None:
    code, out = await run_cli(
        ["template", "refresh", "--phone-number-id", "999999999999999"], settings
    )
    assert code == 1
    assert out == "error: no channel with phone_number_id 999999999999999 (see `channel list`)\n"


async def test_a_refused_listing_keeps_the_stored_templates(
    settings: Settings, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    store_templates(tenant)
    httpx_mock.add_response(url=TEMPLATES_URL, status_code=401, json={"error": "Invalid key"})

    code, out = await run_cli(
        ["template", "refresh", "--phone-number-id", tenant.phone_number_id], settings
    )

    assert code == 1
    assert out.startswith("error: 360dialog refused: 360dialog HTTP 401")
    assert tenant.api_key not in out
    assert len(stored_templates(tenant)) == len(TEMPLATES)


# Every active channel of the shared stack is refreshed: those of other tests get the default.
@pytest.mark.httpx_mock(assert_all_responses_were_requested=False)
async def test_refreshing_every_channel_goes_on_past_one_that_fails(
    settings: Settings, tenant: Tenant, other: Tenant, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        url=TEMPLATES_URL,
        match_headers={"D360-API-KEY": tenant.api_key},
        status_code=401,
        json={"error": "Invalid API key"},
        is_reusable=True,
    )
    httpx_mock.add_response(
        url=TEMPLATES_URL, json={"waba_templates": TEMPLATES[:1]}, is_reusable=True
    )

    code, out = await run_cli(["template", "refresh"], settings)

    assert code == 1
    assert f"{other.phone_number_id}: 1 template(s)" in out
    [error] = [line for line in out.splitlines() if line.startswith("error:")]
    assert f"{tenant.phone_number_id}: D360AuthError: 360dialog HTTP 401" in error
    assert tenant.api_key not in out
    assert stored_templates(other) == {"hello_world/en_US": "approved"}
    assert stored_templates(tenant) == {}


async def test_the_worker_refreshes_templates_periodically(
    settings: Settings, clients: Clients, tenant: Tenant, local_fake_360dialog: str
) -> None:
    every_second = msgspec.structs.replace(settings, template_refresh_seconds=1)
    async with httpx.AsyncClient() as http:
        d360 = D360Client(http, base_url=local_fake_360dialog)
        refresher = TemplateRefresher(clients.service_db, ChannelCache(clients.service_db), d360)
        worker = Worker(clients.service_db, every_second, templates=refresher)
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run_forever(stop))
        try:
            await eventually(lambda: len(stored_templates(tenant)) == 4, "the first refresh")
            tenant.sql(
                f"delete from public.whatsapp_templates where channel_id = '{tenant.channel_id}'"
            )
            await eventually(lambda: len(stored_templates(tenant)) == 4, "a later refresh")
        finally:
            stop.set()
            await running
            await refresher.aclose()


def test_the_refresh_interval_is_a_setting() -> None:
    assert Settings.from_env({"TEMPLATE_REFRESH_SECONDS": "600"}).template_refresh_seconds == 600
    assert Settings().template_refresh_seconds == 3600


# --- listing ------------------------------------------------------------------------------


async def test_a_conversation_lists_the_approved_templates_it_can_send(
    api: Api, tenant: Tenant, other: Tenant
) -> None:
    store_templates(tenant)
    store_templates(other, [{"name": "only_b", "language": "es", "status": "approved"}])
    conversation = tenant.add_conversation()

    response = await api.get(f"/api/conversations/{conversation}/templates", headers=tenant.headers)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "items": [
            {
                "name": "hello_world",
                "language": "en_US",
                "category": None,
                "parameters": {"header": 0, "body": 1},
                "header": None,
                "body": "Hello, this is {{1}}. How can we help?",
                "footer": None,
            },
            {
                "name": "order_update",
                "language": "es",
                "category": None,
                "parameters": {"header": 1, "body": 2},
                "header": "Pedido {{1}}",
                "body": "Hola {{1}}, tu pedido {{2}} va en camino.",
                "footer": "Gracias por tu compra",
            },
        ]
    }
    # Another workspace's agent cannot list this conversation's templates.
    hidden = await api.get(f"/api/conversations/{conversation}/templates", headers=other.headers)
    assert hidden.status_code == 404


async def test_agents_read_only_their_workspace_s_templates_through_postgrest(
    stack_env: dict[str, str], tenant: Tenant, other: Tenant
) -> None:
    store_templates(tenant)
    store_templates(other, [{"name": "only_b", "language": "es", "status": "approved"}])
    rest = f"{stack_env['SUPABASE_URL']}/rest/v1/whatsapp_templates"
    anon = stack_env["SUPABASE_ANON_KEY"]
    async with httpx.AsyncClient() as http:

        def headers(t: Tenant) -> dict[str, str]:
            return {**t.headers, "apikey": anon}

        mine = await http.get(rest, params={"select": "name"}, headers=headers(tenant))
        theirs = await http.get(rest, params={"select": "name"}, headers=headers(other))
        assert sorted(r["name"] for r in mine.json()) == sorted(str(t["name"]) for t in TEMPLATES)
        assert theirs.json() == [{"name": "only_b"}]

        approve = await http.patch(
            rest,
            params={"name": "eq.spring_sale"},
            json={"status": "approved"},
            headers=headers(tenant),
        )
        insert = await http.post(
            rest,
            json={
                "workspace_id": str(tenant.workspace_id),
                "channel_id": str(tenant.channel_id),
                "name": "mine",
                "language": "es",
                "status": "approved",
            },
            headers=headers(tenant),
        )
        refresh = await http.post(
            f"{stack_env['SUPABASE_URL']}/rest/v1/rpc/replace_channel_templates",
            json={"p_channel_id": str(tenant.channel_id), "p_templates": []},
            headers=headers(tenant),
        )
    assert approve.status_code in (401, 403), approve.text
    assert insert.status_code in (401, 403), insert.text
    assert refresh.status_code in (401, 403, 404), refresh.text
    assert stored_templates(tenant)["spring_sale/es"] == "paused"
    assert len(stored_templates(tenant)) == len(TEMPLATES)


# --- sending a template -------------------------------------------------------------------


async def test_a_template_goes_outside_the_window_with_its_parameters_filled_in(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    store_templates(tenant)
    conversation = tenant.add_conversation("+573001112233")
    tenant.add_inbound(conversation, ago=timedelta(hours=30))
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.tpl"))

    response = await send(api, tenant, conversation, ORDER_UPDATE, "k-tpl")

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["type"], body["status"], body["wamid"]) == ("template", "sent", "wamid.OUT.tpl")
    assert body["content"]["body"] == "Hola Ana, tu pedido #123 va en camino."
    assert body["content"]["header"] == "Pedido #123"
    [request] = httpx_mock.get_requests()
    assert json.loads(request.content) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "573001112233",
        "type": "template",
        "template": {
            "name": "order_update",
            "language": {"code": "es"},
            "components": [
                {"type": "header", "parameters": [{"type": "text", "text": "#123"}]},
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ana"},
                        {"type": "text", "text": "#123"},
                    ],
                },
            ],
        },
    }
    preview = tenant.row(
        f"select last_message_preview from public.conversations where id = '{conversation}'"
    )
    assert preview == ["Hola Ana, tu pedido #123 va en camino."]


async def test_a_template_without_text_is_previewed_by_name_in_the_workspace_s_language(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    store_templates(
        tenant,
        [{"name": "bare", "language": "es", "status": "approved", "components": []}],
    )
    tenant.sql(f"update public.workspaces set locale = 'es' where id = '{tenant.workspace_id}'")
    conversation = tenant.add_conversation()
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.bare"))

    response = await send(
        api, tenant, conversation, {"type": "template", "name": "bare", "language": "es"}, "k"
    )

    assert response.status_code == 201, response.text
    preview = tenant.row(
        f"select last_message_preview from public.conversations where id = '{conversation}'"
    )
    assert preview == ["Plantilla: bare"]


@pytest.mark.parametrize(
    ("reply", "error", "names"),
    [
        (
            {"type": "template", "name": "no_such", "language": "es"},
            "template_unavailable",
            "'no_such' (es) is not a template",
        ),
        (
            {**ORDER_UPDATE, "language": "en_US"},
            "template_unavailable",
            "'order_update' (en_US) is not a template",
        ),
        (
            {"type": "template", "name": "spring_sale", "language": "es"},
            "template_unavailable",
            "is paused: only approved templates",
        ),
        (
            {"type": "template", "name": "catalog_photo", "language": "es"},
            "template_unavailable",
            "its header is image",
        ),
        (
            {**ORDER_UPDATE, "parameters": {"header": ["#1"], "body": ["Ana"]}},
            "invalid_input",
            "needs 2 body parameter(s), got 1",
        ),
        (
            {**ORDER_UPDATE, "parameters": {"body": ["Ana", "#1"]}},
            "invalid_input",
            "needs 1 header parameter(s), got 0",
        ),
        (
            {"type": "template", "name": "hello_world", "language": "en_US"},
            "invalid_input",
            "needs 1 body parameter(s), got 0",
        ),
    ],
)
async def test_a_template_that_cannot_be_sent_is_a_422_and_nothing_is_sent(
    api: Api,
    tenant: Tenant,
    httpx_mock: HTTPXMock,
    reply: dict[str, Any],
    error: str,
    names: str,
) -> None:
    store_templates(tenant)
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation, ago=timedelta(hours=30))

    response = await send(api, tenant, conversation, reply, "k-bad")

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == error
    assert names in json.dumps(body["detail"], ensure_ascii=False)
    if error == "invalid_input":
        assert body["detail"][0]["key"].startswith("parameters.")
    assert outbound_rows(tenant, conversation) == []
    assert httpx_mock.get_requests() == []


async def test_a_template_meta_refuses_is_stored_failed_and_the_list_is_refreshed(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    store_templates(tenant)
    conversation = tenant.add_conversation()
    httpx_mock.add_response(
        url=MESSAGES_URL,
        method="POST",
        status_code=400,
        json={"error": {"code": 132015, "message": "(#132015) Template is paused"}},
    )
    paused = copy.deepcopy(TEMPLATES)
    paused[1]["status"] = "PAUSED"
    httpx_mock.add_response(url=TEMPLATES_URL, json={"waba_templates": paused, "total": 4})

    response = await send(api, tenant, conversation, ORDER_UPDATE, "k-paused")

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "template_rejected"
    assert body["detail"]["code"] == 132015
    assert body["detail"]["message"]["status"] == "failed"
    [row] = outbound_rows(tenant, conversation)
    assert (row["type"], row["status"], row["error_code"]) == ("template", "failed", 132015)
    await eventually(
        lambda: stored_templates(tenant)["order_update/es"] == "paused",
        "the channel's templates are re-read",
    )
    # Sent only once: Meta's answer is final, the next send is refused before 360dialog.
    assert len([r for r in httpx_mock.get_requests() if r.method == "POST"]) == 1
    again = await send(api, tenant, conversation, ORDER_UPDATE, "k-paused-2")
    assert again.json()["error"] == "template_unavailable"


# --- every kind: window rule and idempotency ----------------------------------------------


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_outside_the_window_only_a_template_goes(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock, kind: str
) -> None:
    store_templates(tenant)
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation, ago=timedelta(hours=24, minutes=1))
    if kind == "template":
        httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.w"))

    response = await send(api, tenant, conversation, KINDS[kind], f"k-window-{kind}")

    if kind == "template":
        assert response.status_code == 201, response.text
        return
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["error"] == "window_closed"
    assert body["detail"]["needs"] == "template"
    assert "template" in body["detail"]["reason"]
    assert httpx_mock.get_requests() == []
    assert outbound_rows(tenant, conversation) == []


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_inside_the_window_every_kind_goes(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock, kind: str
) -> None:
    store_templates(tenant)
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation, ago=timedelta(hours=23, minutes=59))
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok(f"wamid.OUT.{kind}"))

    response = await send(api, tenant, conversation, KINDS[kind], f"k-open-{kind}")

    assert response.status_code == 201, response.text
    assert response.json()["type"] == kind
    sent = json.loads(httpx_mock.get_requests()[0].content)
    assert sent["type"] == kind
    assert kind in sent


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_a_retry_of_any_kind_never_sends_twice(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock, kind: str
) -> None:
    store_templates(tenant)
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok(f"wamid.OUT.r{kind}"))

    first = await send(api, tenant, conversation, KINDS[kind], "k-retry")
    again = await send(api, tenant, conversation, KINDS[kind], "k-retry")
    other_kind = KINDS["text" if kind != "text" else "image"]
    reused = await send(api, tenant, conversation, other_kind, "k-retry")

    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert reused.status_code == 422
    assert reused.json()["error"] == "idempotency_key_reused"
    assert len(httpx_mock.get_requests()) == 1
    assert len(outbound_rows(tenant, conversation)) == 1


async def test_a_retried_template_with_other_parameters_is_a_reused_key(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    store_templates(tenant)
    conversation = tenant.add_conversation()
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.p"))

    first = await send(api, tenant, conversation, ORDER_UPDATE, "k-params")
    changed = {**ORDER_UPDATE, "parameters": {"header": ["#9"], "body": ["Luis", "#9"]}}
    reused = await send(api, tenant, conversation, changed, "k-params")

    assert first.status_code == 201, first.text
    assert reused.status_code == 422
    assert reused.json()["error"] == "idempotency_key_reused"
    assert len(httpx_mock.get_requests()) == 1


@pytest.mark.parametrize(
    ("reply", "field"),
    [
        ({"type": "template", "name": "Order Update", "language": "es"}, "name"),
        ({"type": "template", "name": "x", "language": "español"}, "language"),
        ({"type": "template", "name": "x", "language": "es", "parameters": {"body": [" "]}},
         "body"),
        ({"type": "template", "name": "x", "language": "es", "extra": 1}, "extra"),
        ({"type": "interactive", "interactive": {"type": "button", "body": "x", "buttons": []}},
         "buttons"),
        ({"type": "interactive", "interactive": {"type": "carousel", "body": "x"}}, "type"),
    ],
)  # fmt: skip
async def test_a_malformed_reply_is_a_422_naming_the_field(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock, reply: dict[str, Any], field: str
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)

    response = await send(api, tenant, conversation, reply, "k-malformed")

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_input"
    error = body["detail"][0]
    assert field in error.get("key", "") or f"`{field}`" in error["message"], error
    assert outbound_rows(tenant, conversation) == []
    assert httpx_mock.get_requests() == []


async def test_the_local_fake_serves_and_checks_templates_end_to_end(
    settings: Settings, tenant: Tenant, local_fake_360dialog: str
) -> None:
    """What `make run` offers: refresh from the fake, list, send; the fake checks the send."""
    local = msgspec.structs.replace(settings, d360_base_url=local_fake_360dialog)
    code, out = await run_cli(
        ["template", "refresh", "--phone-number-id", tenant.phone_number_id], local
    )
    assert code == 0, out
    conversation = tenant.add_conversation()
    async with AsyncTestClient(app=create_app(local)) as api:
        listed = await api.get(
            f"/api/conversations/{conversation}/templates", headers=tenant.headers
        )
        sent = await send(api, tenant, conversation, ORDER_UPDATE, "k-local")
    assert [t["name"] for t in listed.json()["items"]] == ["hello_world", "order_update"]
    assert sent.status_code == 201, sent.text
    assert sent.json()["wamid"].startswith("wamid.FAKE")
    # The fake refuses what Meta would refuse.
    async with httpx.AsyncClient(base_url=local_fake_360dialog) as http:
        body = {
            "messaging_product": "whatsapp",
            "to": "573001112233",
            "type": "template",
            "template": {
                "name": "order_update",
                "language": {"code": "es"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "x"}]}],
            },
        }
        refused = await http.post("/messages", json=body)
        paused = await http.post(
            "/messages",
            json={**body, "template": {"name": "spring_sale", "language": {"code": "es"}}},
        )
    assert refused.json()["error"]["code"] == 132000
    assert paused.json()["error"]["code"] == 132015
