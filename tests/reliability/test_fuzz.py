"""Property-based fuzzing of the webhook parser, the normalizer and the endpoint."""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient
from postgrest.types import CountMethod

from service.clients import Clients
from service.ingest.normalize import normalize_event
from service.ingest.worker import Worker
from service.repositories.inbox import ClaimedEvent
from service.settings import Settings
from service.whatsapp.payloads import InvalidPayload, decode_webhook
from tests.support.inbox import CHANNEL_A, SECRET_A
from tests.support.inbox import WORKSPACE_A as SEEDED_WORKSPACE_A
from tests.support.rows import rows

WORKSPACE_A = uuid.UUID(SEEDED_WORKSPACE_A)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)

digits = st.text(alphabet="0123456789", min_size=8, max_size=15).filter(lambda d: d[0] != "0")
wamids = st.builds(lambda: f"wamid.F{uuid.uuid4().hex}")
timestamps = st.integers(min_value=1_600_000_000, max_value=2_000_000_000).map(str)
media = st.fixed_dictionaries(
    {"id": st.text(alphabet="0123456789", min_size=1, max_size=16)},
    optional={"mime_type": st.sampled_from(["image/jpeg", "audio/ogg"]), "caption": st.text()},
)


@st.composite
def messages(draw: st.DrawFn, sender: str) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            ["text", "image", "audio", "document", "sticker", "location", "reaction", "unknown"]
        )
    )
    message: dict[str, Any] = {
        "from": sender,
        "id": draw(wamids),
        "timestamp": draw(timestamps),
        "type": kind,
    }
    if kind == "text":
        message["text"] = {"body": draw(st.text(max_size=300))}
    elif kind in ("image", "audio", "document", "sticker"):
        message[kind] = draw(media)
    elif kind == "location":
        message["location"] = {
            "latitude": draw(st.floats(-90, 90)),
            "longitude": draw(st.floats(-180, 180)),
        }
    elif kind == "reaction":
        message["reaction"] = {
            "message_id": draw(wamids),
            "emoji": draw(st.sampled_from(["👍", ""])),
        }
    else:
        message["errors"] = [{"code": 131051, "title": draw(st.text(max_size=20))}]
    if draw(st.booleans()):
        message["extra_field_from_the_future"] = draw(json_values)
    return message


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    sender = draw(digits)
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000001", "phone_number_id": CHANNEL_A},
        "contacts": [{"profile": {"name": draw(st.text(max_size=30))}, "wa_id": sender}],
        "messages": draw(st.lists(messages(sender), min_size=1, max_size=4)),
    }
    if draw(st.booleans()):
        value["statuses"] = [
            {
                "id": draw(wamids),
                "status": draw(st.sampled_from(["sent", "delivered", "read", "failed", "deleted"])),
                "timestamp": draw(timestamps),
                "recipient_id": sender,
            }
        ]
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "200000000000001", "changes": [{"field": "messages", "value": value}]}],
    }


def claimed(body: bytes) -> ClaimedEvent:
    return ClaimedEvent(
        id=1,
        channel_id=None,
        workspace_id=WORKSPACE_A,
        phone_number_id=CHANNEL_A,
        body=body.decode(),
        attempts=1,
    )


@given(st.binary(max_size=2000))
def test_parser_never_crashes_on_bytes(body: bytes) -> None:
    with contextlib.suppress(InvalidPayload):
        decode_webhook(body)


@given(json_values)
def test_parser_never_crashes_on_any_json(value: object) -> None:
    with contextlib.suppress(InvalidPayload):
        decode_webhook(json.dumps(value))


@given(payloads())
def test_every_generated_payload_decodes_and_normalizes(payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    decoded = decode_webhook(body)
    batch = normalize_event(claimed(body))

    sent = payload["entry"][0]["changes"][0]["value"]["messages"]
    assert len(decoded.entry[0].changes[0].value.messages or []) == len(sent)  # type: ignore[union-attr]
    stored = {m.wamid for m in batch.messages} | {r.wamid for r in batch.reactions}
    assert stored == {m["id"] for m in sent}


async def stored(clients: Clients, body: bytes) -> int:
    digest = hashlib.sha256(body).hexdigest()
    query = clients.service_db.table("webhook_events").select("id", count=CountMethod.exact)
    return (await query.eq("body_sha256", digest).execute()).count or 0


_fixture_ok = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_fixture_ok
@given(body=st.one_of(st.binary(max_size=500), json_values.map(lambda v: json.dumps(v).encode())))
async def test_endpoint_refuses_garbage_without_500_and_stores_nothing(
    api: AsyncTestClient[Litestar], clients: Clients, body: bytes
) -> None:
    response = await api.post(
        "/api/webhooks/whatsapp", content=body, headers={"X-Webhook-Secret": SECRET_A}
    )

    assert response.status_code in (400, 401), response.text
    assert response.json()["error"]
    assert await stored(clients, body) == 0


@_fixture_ok
@given(payload=payloads())
async def test_endpoint_stores_every_valid_generated_payload(
    api: AsyncTestClient[Litestar], clients: Clients, payload: dict[str, Any]
) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode()
    response = await api.post(
        "/api/webhooks/whatsapp", content=body, headers={"X-Webhook-Secret": SECRET_A}
    )

    assert response.status_code == 200
    assert await stored(clients, body) == 1


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    # `settings` is hypothesis's decorator in this module.
    return settings


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=payloads())
async def test_worker_files_every_valid_generated_message(
    api: AsyncTestClient[Litestar],
    clients: Clients,
    app_settings: Settings,
    payload: dict[str, Any],
) -> None:
    body = json.dumps(payload).encode()
    assert (
        await api.post(
            "/api/webhooks/whatsapp", content=body, headers={"X-Webhook-Secret": SECRET_A}
        )
    ).status_code == 200
    await Worker(clients.service_db, app_settings).drain()

    sent = payload["entry"][0]["changes"][0]["value"]["messages"]
    expected = {m["id"] for m in sent if m["type"] != "reaction"}
    query = clients.service_db.table("messages").select("wamid").in_("wamid", sorted(expected))
    assert {r["wamid"] for r in rows(await query.execute())} == expected
