"""Media served safely: what a customer declares never becomes active content.

The type and the filename come from the customer (through 360dialog or the
stored message); the browser of the agent who opens the file must neither
render it as a page nor be misled by its name.
"""

from __future__ import annotations

import uuid
from urllib.parse import unquote

import httpx
import pytest
from pytest_httpx import HTTPXMock

from tests.integration.test_conversations_api import BASE, DOWNLOAD, LOOKASIDE, Api
from tests.support.agent import Tenant


def received_media(
    tenant: Tenant, httpx_mock: HTTPXMock, declared: str, filename: str | None = None
) -> uuid.UUID:
    """A received document whose sender declared `declared`, and 360dialog serving it."""
    media_id = str(uuid.uuid4().int)[:15]
    conversation = tenant.add_conversation()
    message_id, _ = tenant.add_inbound(
        conversation,
        message_type="document",
        content=f'{{"media_id": "{media_id}"}}',
        media_mime_type=declared,
        media_filename=filename,
    )
    httpx_mock.add_response(
        url=f"{BASE}/{media_id}",
        method="GET",
        json={"url": LOOKASIDE, "mime_type": declared, "id": media_id},
    )
    httpx_mock.add_response(
        url=DOWNLOAD,
        method="GET",
        content=b"<html><script>alert(document.cookie)</script></html>",
        headers={"content-type": declared},
    )
    return message_id


def assert_sandboxed(headers: httpx.Headers) -> None:
    assert headers.get("content-security-policy") == "sandbox"
    assert headers.get("x-content-type-options") == "nosniff"


@pytest.mark.parametrize(
    ("declared", "served", "disposition"),
    [
        ("text/html", "application/octet-stream", "attachment"),
        ("text/html; charset=utf-8", "application/octet-stream", "attachment"),
        ("image/svg+xml", "application/octet-stream", "attachment"),
        ("application/xhtml+xml", "application/octet-stream", "attachment"),
        ("application/x-msdownload", "application/octet-stream", "attachment"),
        ("text/plain", "application/octet-stream", "attachment"),
        ("image/jpeg", "image/jpeg", "inline"),
        ("IMAGE/PNG", "image/png", "inline"),
        ("audio/ogg; codecs=opus", "audio/ogg", "inline"),
        ("video/mp4", "video/mp4", "inline"),
        ("application/pdf", "application/pdf", "inline"),
    ],
)
async def test_only_an_allowlist_of_types_is_shown_inline(
    api: Api,
    tenant: Tenant,
    httpx_mock: HTTPXMock,
    declared: str,
    served: str,
    disposition: str,
) -> None:
    message_id = received_media(tenant, httpx_mock, declared, "archivo")

    response = await api.get(f"/api/messages/{message_id}/media", headers=tenant.headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == served
    assert response.headers["content-disposition"].startswith(f"{disposition}; ")
    assert_sandboxed(response.headers)


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("factura\u202egpj.exe", "facturagpj.exe"),  # right-to-left override
        ("\ufeffscan\u200b\u200d.pdf", "scan.pdf"),  # BOM, zero-width space and joiner
        ("a\u2066b\u2069\u061c.pdf", "ab.pdf"),  # isolates, Arabic letter mark
        ("bell\x07\x1b[31m\u202e.pdf", "bell[31m.pdf"),  # C0 controls
        ("next\x85line\u2028.pdf", "nextline.pdf"),  # C1 control, line separator
        ("cotización\u200e 😀.pdf", "cotización 😀.pdf"),  # other non-ASCII stays
    ],
)
async def test_filenames_lose_format_and_control_characters(
    api: Api, tenant: Tenant, httpx_mock: HTTPXMock, stored: str, shown: str
) -> None:
    message_id = received_media(tenant, httpx_mock, "application/pdf", stored)

    response = await api.get(f"/api/messages/{message_id}/media", headers=tenant.headers)

    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == shown


async def test_media_errors_are_sandboxed_too(api: Api, tenant: Tenant) -> None:
    conversation = tenant.add_conversation()
    text_id, _ = tenant.add_inbound(conversation, body="sin archivo")

    response = await api.get(f"/api/messages/{text_id}/media", headers=tenant.headers)

    assert response.status_code == 404
    assert_sandboxed(response.headers)
