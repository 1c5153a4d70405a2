"""Attachments from the agent's computer: checked, streamed to 360dialog (faked), sent by id.

Against the real stack as a real agent; only 360dialog is faked (pytest-httpx).
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

from tests.support.agent import Tenant

BASE = "https://waba-v2.360dialog.io"
MEDIA_URL = f"{BASE}/media"
MESSAGES_URL = f"{BASE}/messages"
Api = AsyncTestClient[Litestar]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def sent_ok(wamid: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "573000000000", "wa_id": "573000000000"}],
        "messages": [{"id": wamid}],
    }


async def upload(
    api: Api,
    tenant: Tenant,
    conversation: uuid.UUID,
    *,
    name: str,
    data: bytes,
    mime: str,
    key: str,
    caption: str | None = None,
) -> httpx.Response:
    return await api.post(
        f"/api/conversations/{conversation}/attachments",
        data={"caption": caption} if caption is not None else None,
        files={"file": (name, data, mime)},
        headers={**tenant.headers, "Idempotency-Key": key},
    )


def outbound_rows(tenant: Tenant, conversation: uuid.UUID) -> list[dict[str, Any]]:
    out = tenant.sql(
        "select coalesce(json_agg(m order by m.created_at), '[]') from public.messages m "
        f"where m.conversation_id = '{conversation}' and m.direction = 'outbound'"
    )
    loaded: list[dict[str, Any]] = json.loads(out)
    return loaded


def form_fields(request: httpx.Request) -> tuple[dict[str, str], bytes, str]:
    """The upload's text fields, the file's bytes and the file part's headers."""
    boundary = request.headers["content-type"].split("boundary=", 1)[1].encode()
    fields: dict[str, str] = {}
    file_bytes, file_headers = b"", ""
    for part in request.content.split(b"--" + boundary)[1:-1]:
        head, _, body = part[2:].partition(b"\r\n\r\n")
        body = body[:-2]
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        if name == "file":
            file_bytes, file_headers = body, head.decode()
        else:
            fields[name] = body.decode()
    return fields, file_bytes, file_headers


def answer_upload(media_id: str, seen: list[httpx.Request]) -> Any:
    async def callback(request: httpx.Request) -> httpx.Response:
        await request.aread()
        seen.append(request)
        return httpx.Response(200, json={"id": media_id})

    return callback


async def test_an_image_is_uploaded_then_sent_by_its_id(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation("+573001112244")
    tenant.add_inbound(conversation)
    uploads: list[httpx.Request] = []
    httpx_mock.add_callback(answer_upload("1500000000001", uploads), url=MEDIA_URL, method="POST")
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.img"))

    response = await upload(
        api,
        tenant,
        conversation,
        name="foto.png",
        data=PNG,
        mime="image/png",
        key="k-img",
        caption="Así quedó",
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["type"], body["status"], body["wamid"]) == ("image", "sent", "wamid.OUT.img")
    assert body["content"] == {"media_id": "1500000000001", "caption": "Así quedó"}
    [sent_upload] = uploads
    assert sent_upload.headers["D360-API-KEY"] == tenant.api_key
    fields, file_bytes, file_headers = form_fields(sent_upload)
    assert fields == {"messaging_product": "whatsapp", "type": "image/png"}
    assert file_bytes == PNG
    assert "Content-Type: image/png" in file_headers
    send = [r for r in httpx_mock.get_requests() if r.url == MESSAGES_URL]
    assert json.loads(send[0].content)["image"] == {"id": "1500000000001", "caption": "Así quedó"}
    [row] = outbound_rows(tenant, conversation)
    assert row["status"] == "sent"


async def test_a_document_keeps_its_file_name(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    uploads: list[httpx.Request] = []
    httpx_mock.add_callback(answer_upload("1500000000002", uploads), url=MEDIA_URL, method="POST")
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.doc"))

    response = await upload(
        api,
        tenant,
        conversation,
        name="factura 12.pdf",
        data=b"%PDF-1.4 hola",
        mime="application/pdf",
        key="k-doc",
        caption="",
    )

    assert response.status_code == 201, response.text
    assert response.json()["media_filename"] == "factura 12.pdf"
    # An empty caption field is no caption.
    assert response.json()["content"] == {"media_id": "1500000000002", "filename": "factura 12.pdf"}
    send = [r for r in httpx_mock.get_requests() if r.url == MESSAGES_URL]
    assert json.loads(send[0].content)["document"] == {
        "id": "1500000000002",
        "filename": "factura 12.pdf",
    }
    assert 'filename="factura 12.pdf"' in form_fields(uploads[0])[2]


@pytest.mark.parametrize(
    ("name", "mime", "size", "status", "error"),
    [
        ("a.zip", "application/zip", 100, 415, "unsupported_media_type"),
        ("a.gif", "image/gif", 100, 415, "unsupported_media_type"),
        ("big.png", "image/png", 5 * 1024 * 1024 + 1, 413, "payload_too_large"),
        ("big.webp", "image/webp", 500 * 1024 + 1, 413, "payload_too_large"),
        ("big.mp4", "video/mp4", 16 * 1024 * 1024 + 1, 413, "payload_too_large"),
    ],
)
async def test_a_file_whatsapp_refuses_is_refused_before_anything_leaves(
    api: Api,
    tenant: Tenant,
    httpx_mock: HTTPXMock,
    name: str,
    mime: str,
    size: int,
    status: int,
    error: str,
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)

    response = await upload(
        api, tenant, conversation, name=name, data=b"\0" * size, mime=mime, key="k-no"
    )

    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert mime.split(";")[0] in response.json()["detail"]
    assert httpx_mock.get_requests() == []
    assert outbound_rows(tenant, conversation) == []


async def test_a_body_that_is_not_a_form_is_415(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    response = await api.post(
        f"/api/conversations/{conversation}/attachments",
        content=PNG,
        headers={**tenant.headers, "Idempotency-Key": "k", "Content-Type": "image/png"},
    )
    assert response.status_code == 415
    assert httpx_mock.get_requests() == []


async def test_caption_on_audio_is_422(api: Api, tenant: Tenant, httpx_mock: HTTPXMock) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    response = await upload(
        api,
        tenant,
        conversation,
        name="a.ogg",
        data=b"OggS",
        mime="audio/ogg",
        key="k",
        caption="no",
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["key"] == "caption"
    assert httpx_mock.get_requests() == []
    assert outbound_rows(tenant, conversation) == []


async def test_outside_the_window_nothing_is_uploaded(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation, ago=timedelta(hours=24, minutes=1))
    response = await upload(
        api, tenant, conversation, name="a.png", data=PNG, mime="image/png", key="k-late"
    )
    assert response.status_code == 409
    assert response.json()["error"] == "window_closed"
    assert httpx_mock.get_requests() == []
    assert outbound_rows(tenant, conversation) == []


async def test_a_retry_with_the_same_key_neither_uploads_nor_sends_again(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    uploads: list[httpx.Request] = []
    httpx_mock.add_callback(answer_upload("1500000000003", uploads), url=MEDIA_URL, method="POST")
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.once"))

    first = await upload(
        api,
        tenant,
        conversation,
        name="a.png",
        data=PNG,
        mime="image/png",
        key="k-same",
        caption="una",
    )
    again = await upload(
        api,
        tenant,
        conversation,
        name="a.png",
        data=PNG,
        mime="image/png",
        key="k-same",
        caption="una",
    )

    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert len(uploads) == 1
    assert len(httpx_mock.get_requests()) == 2  # one upload, one send
    assert len(outbound_rows(tenant, conversation)) == 1

    other = await upload(
        api,
        tenant,
        conversation,
        name="a.png",
        data=PNG,
        mime="image/png",
        key="k-same",
        caption="otra",
    )
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_reused"
    assert len(httpx_mock.get_requests()) == 2


async def test_a_refused_upload_stores_nothing_and_its_retry_uploads_again(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    httpx_mock.add_response(
        url=MEDIA_URL,
        method="POST",
        status_code=400,
        json={"error": {"code": 131053, "message": "Media upload error"}},
    )

    failed = await upload(
        api, tenant, conversation, name="a.png", data=PNG, mime="image/png", key="k-up"
    )

    assert failed.status_code == 502, failed.text
    assert failed.json()["error"] == "upload_failed"
    assert outbound_rows(tenant, conversation) == []

    uploads: list[httpx.Request] = []
    httpx_mock.add_callback(answer_upload("1500000000004", uploads), url=MEDIA_URL, method="POST")
    httpx_mock.add_response(url=MESSAGES_URL, method="POST", json=sent_ok("wamid.OUT.retry"))
    retried = await upload(
        api, tenant, conversation, name="a.png", data=PNG, mime="image/png", key="k-up"
    )
    assert retried.status_code == 201, retried.text
    assert len(uploads) == 1
    assert len(outbound_rows(tenant, conversation)) == 1


async def test_a_part_after_the_file_is_422_and_nothing_leaves(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    """A second file (or a late caption) is refused, never uploaded as part of the first."""
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)
    boundary = "r13-boundary"
    body = b""
    for name, data in (("file", PNG), ("file", b"second file")):
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}.png"\r\nContent-Type: image/png\r\n\r\n'
        )
        body += head.encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()

    response = await api.post(
        f"/api/conversations/{conversation}/attachments",
        content=body,
        headers={
            **tenant.headers,
            "Idempotency-Key": "k-two-files",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )

    assert response.status_code == 422, response.text
    assert "last part" in response.text
    assert httpx_mock.get_requests() == []
    assert outbound_rows(tenant, conversation) == []


async def test_an_agent_removed_during_the_upload_gets_a_404_and_nothing_is_sent(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    """Membership ends while the file travels: the reply is refused at the store, not a 500."""
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)

    async def upload_then_remove(request: httpx.Request) -> httpx.Response:
        await request.aread()
        tenant.sql(
            f"delete from public.workspace_members where workspace_id = '{tenant.workspace_id}'"
        )
        return httpx.Response(200, json={"id": "1500000000010"})

    httpx_mock.add_callback(upload_then_remove, url=MEDIA_URL, method="POST")

    response = await upload(
        api, tenant, conversation, name="a.png", data=PNG, mime="image/png", key="k-removed"
    )

    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"
    assert [r.url for r in httpx_mock.get_requests()] == [MEDIA_URL]
    assert outbound_rows(tenant, conversation) == []


async def test_an_empty_file_is_422_and_nothing_leaves(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)

    response = await upload(
        api, tenant, conversation, name="a.pdf", data=b"", mime="application/pdf", key="k-empty"
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0] == {
        "key": "file",
        "message": "the file is empty",
        "source": "body",
    }
    assert httpx_mock.get_requests() == []
    assert outbound_rows(tenant, conversation) == []


async def test_a_retry_that_stored_first_wins_and_the_slower_request_answers_as_its_retry(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock
) -> None:
    """The client retried (same key, same file) while its first upload was still running.

    Both requests upload (the key was not stored yet); the retry stores its
    reply first, with its own media id. The first request then loses the store
    and answers as a retry of the same request (409 `send_in_progress` while
    the other sends), not 422 `idempotency_key_reused`, and sends nothing.
    """
    conversation = tenant.add_conversation()
    tenant.add_inbound(conversation)

    async def upload_while_the_retry_stores(request: httpx.Request) -> httpx.Response:
        await request.aread()
        # What the retry's own request did meanwhile: uploaded, then stored.
        tenant.sql(
            f"select id from public.open_reply('{conversation}', '{tenant.user_id}', 'image', "
            """'{"media_id": "1500000000032"}', null, null, 'k-race')"""
        )
        return httpx.Response(200, json={"id": "1500000000031"})

    httpx_mock.add_callback(upload_while_the_retry_stores, url=MEDIA_URL, method="POST")

    first = await upload(
        api, tenant, conversation, name="a.png", data=PNG, mime="image/png", key="k-race"
    )

    assert first.status_code == 409, first.text
    assert first.json()["error"] == "send_in_progress"
    assert [r.url for r in httpx_mock.get_requests()] == [MEDIA_URL]
    assert len(outbound_rows(tenant, conversation)) == 1
