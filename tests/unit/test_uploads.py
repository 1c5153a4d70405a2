"""Uploads without the network: WhatsApp's type and size rules, the streaming form reader,
D360Client.upload_media (pytest-httpx) and the fake 360dialog's POST /media."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from pytest_httpx import HTTPXMock

from scripts.fake360 import fake_360dialog
from service.api.upload_form import FormError, UploadForm, boundary_of
from service.whatsapp.d360 import D360Client
from service.whatsapp.errors import D360Error
from service.whatsapp.uploads import MB, UploadRefused, upload_kind
from tests.support.processes import free_port_block

BOUNDARY = "b0undary-42"
FILE = bytes(range(256)) * 40 + b"\r\n--b0undar"  # near-delimiters inside the file


@pytest.mark.parametrize(
    ("mime", "size", "kind"),
    [
        ("image/jpeg", 5 * MB, "image"),
        ("image/png; name=x", 1, "image"),
        ("video/mp4", 16 * MB, "video"),
        ("audio/ogg", 16 * MB, "audio"),
        ("image/webp", 500 * 1024, "sticker"),
        ("application/pdf", 100 * MB, "document"),
        ("TEXT/PLAIN", 1, "document"),
    ],
)
def test_the_type_decides_the_message_and_the_limit_is_inclusive(
    mime: str, size: int, kind: str
) -> None:
    assert upload_kind(mime, size).type == kind


@pytest.mark.parametrize(
    ("mime", "size", "status"),
    [
        ("image/jpeg", 5 * MB + 1, 413),
        ("video/3gpp", 16 * MB + 1, 413),
        ("audio/mpeg", 16 * MB + 1, 413),
        ("image/webp", 500 * 1024 + 1, 413),
        ("application/pdf", 100 * MB + 1, 413),
        ("image/gif", 1, 415),
        ("application/zip", 1, 415),
        (None, 1, 415),
    ],
)
def test_what_whatsapp_refuses(mime: str | None, size: int, status: int) -> None:
    with pytest.raises(UploadRefused) as refused:
        upload_kind(mime, size)
    assert refused.value.status == status


def test_only_multipart_form_data_has_a_boundary() -> None:
    assert boundary_of(f"multipart/form-data; boundary={BOUNDARY}") == BOUNDARY
    for value in (None, "image/png", "multipart/form-data", "multipart/mixed; boundary=x"):
        with pytest.raises(UploadRefused):
            boundary_of(value)


def form(*parts: tuple[str, bytes, str | None, str | None]) -> bytes:
    body = b""
    for name, data, filename, mime in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if mime:
            body += f"Content-Type: {mime}\r\n".encode()
        body += b"\r\n" + data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


async def chunked(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096, 1 << 20])
async def test_the_form_is_read_in_any_chunking(chunk: int) -> None:
    body = form(
        ("caption", "¡Listo!".encode(), None, None),
        ("file", FILE, "informe.pdf", "application/pdf"),
    )
    upload = UploadForm(chunked(body, chunk), BOUNDARY, len(body))

    head = await upload.head()
    data = b"".join([piece async for piece in upload.file(len(FILE))])

    assert (head.caption, head.filename, head.content_type) == (
        "¡Listo!",
        "informe.pdf",
        "application/pdf",
    )
    assert data == FILE
    # An upper bound, exact up to one delimiter: never under the real size.
    assert len(FILE) <= head.size_at_most <= len(FILE) + len(f"\r\n--{BOUNDARY}\r\n") + 2


async def test_a_file_over_its_limit_while_streaming_is_refused() -> None:
    body = form(("file", FILE, "a.pdf", "application/pdf"))
    upload = UploadForm(chunked(body, 100), BOUNDARY, len(body))
    await upload.head()
    with pytest.raises(UploadRefused) as refused:
        async for _ in upload.file(len(FILE) - 1):
            pass
    assert refused.value.status == 413


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (form(("caption", b"x", None, None)), "file"),
        (form(("other", b"x", None, None), ("file", FILE, "a.pdf", "application/pdf")), "other"),
        (form(("caption", b"\xff", None, None), ("file", FILE, "a", "application/pdf")), "caption"),
        (form(("caption", b"x" * 5000, None, None), ("file", b"x", "a", "text/plain")), "caption"),
        (b"no multipart at all", "form"),
        (
            form(
                ("caption", b"a", None, None),
                ("caption", b"b", None, None),
                ("file", b"x", "a", "text/plain"),
            ),
            "caption",
        ),
    ],
)
async def test_forms_that_are_not_an_upload(body: bytes, key: str) -> None:
    upload = UploadForm(chunked(body, 50), BOUNDARY, len(body))
    with pytest.raises(FormError) as error:
        await upload.head()
    assert error.value.key == key


async def test_the_file_must_be_the_last_part() -> None:
    body = form(("file", FILE, "a.pdf", "application/pdf"), ("caption", b"late", None, None))
    upload = UploadForm(chunked(body, 1000), BOUNDARY, len(body))
    await upload.head()
    with pytest.raises(FormError, match="last part"):
        async for _ in upload.file(len(FILE)):
            pass


@pytest.mark.parametrize("chunk", [7, 1000, 1 << 20])
@pytest.mark.parametrize(
    "late",
    [("caption", b"late", None, None), ("file", b"second file", "b.pdf", "application/pdf")],
)
async def test_nothing_follows_the_file_however_the_body_arrives(
    chunk: int, late: tuple[str, bytes, str | None, str | None]
) -> None:
    """A part after the file is refused, never read as more of the file (one chunk or many)."""
    body = form(("file", FILE, "a.pdf", "application/pdf"), late)
    upload = UploadForm(chunked(body, chunk), BOUNDARY, len(body))
    pieces: list[bytes] = []

    async def read() -> None:
        await upload.head()
        pieces.extend([piece async for piece in upload.file(len(body))])

    with pytest.raises(FormError, match="last part"):
        await read()
    assert late[1] not in b"".join(pieces)


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
async def test_an_empty_file_is_refused_however_the_body_arrives(chunk: int) -> None:
    body = form(("caption", b"nada", None, None), ("file", b"", "a.pdf", "application/pdf"))
    upload = UploadForm(chunked(body, chunk), BOUNDARY, len(body))

    async def read() -> None:
        await upload.head()
        _ = [piece async for piece in upload.file(100)]

    with pytest.raises(FormError, match="empty") as error:
        await read()
    assert error.value.key == "file"


async def test_a_truncated_upload_is_an_error() -> None:
    body = form(("file", FILE, "a.pdf", "application/pdf"))[:-200]
    upload = UploadForm(chunked(body, 1000), BOUNDARY, len(body) + 200)
    await upload.head()
    with pytest.raises(FormError):
        async for _ in upload.file(len(FILE)):
            pass


# --- D360Client.upload_media --------------------------------------------------------------

BASE = "https://waba-v2.360dialog.io"


async def test_upload_media_streams_the_cloud_api_form(httpx_mock: HTTPXMock) -> None:
    seen: list[httpx.Request] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        await request.aread()
        seen.append(request)
        return httpx.Response(200, json={"id": "1234567890"})

    httpx_mock.add_callback(answer, url=f"{BASE}/media", method="POST")
    pulled: list[int] = []

    async def source() -> AsyncIterator[bytes]:
        for n in range(3):
            pulled.append(n)
            yield bytes([65 + n]) * 10

    async with httpx.AsyncClient() as http:
        media_id = await D360Client(http).upload_media(
            "key-1", source(), mime_type="application/pdf", filename='in"forme\r\n.pdf'
        )

    assert media_id == "1234567890"
    [request] = seen
    assert request.headers["D360-API-KEY"] == "key-1"
    # Streamed: no length known up front.
    assert request.headers.get("transfer-encoding") == "chunked"
    boundary = request.headers["content-type"].split("boundary=", 1)[1]
    body = request.content
    assert b'name="messaging_product"\r\n\r\nwhatsapp\r\n' in body
    assert b'name="type"\r\n\r\napplication/pdf\r\n' in body
    assert b'name="file"; filename="in\'forme  .pdf"\r\nContent-Type: application/pdf' in body
    assert b"A" * 10 + b"B" * 10 + b"C" * 10 + f"\r\n--{boundary}--\r\n".encode() in body
    assert pulled == [0, 1, 2]


async def test_upload_media_is_never_retried(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{BASE}/media", method="POST", status_code=503, json={"error": {"code": 2}}
    )

    async def source() -> AsyncIterator[bytes]:
        yield b"x"

    async with httpx.AsyncClient() as http:
        with pytest.raises(D360Error):
            await D360Client(http, max_attempts=4).upload_media(
                "k", source(), mime_type="image/png", filename="a.png"
            )
    assert len(httpx_mock.get_requests()) == 1


# --- the fake 360dialog -------------------------------------------------------------------


@pytest.fixture
def fake_url() -> Iterator[str]:
    with fake_360dialog(free_port_block(1, 59200)) as url:
        yield url


@pytest.mark.httpx_mock(should_mock=lambda request: False)
def test_the_fake_takes_uploads_and_checks_interactive_sends(fake_url: str) -> None:
    with httpx.Client(base_url=fake_url, headers={"D360-API-KEY": "k"}) as client:
        uploaded = client.post(
            "/media",
            data={"messaging_product": "whatsapp", "type": "image/png"},
            files={"file": ("a.png", b"\x89PNG" * 1000, "image/png")},
        )
        assert uploaded.status_code == 200
        assert uploaded.json()["id"].isdigit()
        assert client.post("/media", data={"type": "image/png"}).status_code == 400

        base = {"messaging_product": "whatsapp", "to": "573001112233", "type": "interactive"}
        buttons = {
            "type": "button",
            "body": {"text": "¿Sí?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Sí"}}]},
        }
        assert client.post("/messages", json={**base, "interactive": buttons}).status_code == 200
        broken = {**buttons, "type": "carousel"}
        assert client.post("/messages", json={**base, "interactive": broken}).status_code == 400
