"""D360Client against a faked transport: bodies, headers, errors, retries, media URLs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from service.whatsapp.d360 import D360Client, DownloadedMedia, MediaInfo
from service.whatsapp.domain import Recipient, cloud_message, parse_reply
from service.whatsapp.errors import (
    D360AuthError,
    D360Error,
    D360NetworkError,
    D360RateLimitError,
    D360WindowClosedError,
)

BASE = "https://waba-v2.360dialog.io"
MESSAGES = f"{BASE}/messages"
KEY = "key-channel-A-7f3e"
TO = "573001112233"
WAMID_IN = "wamid.HBgMNTczMDAxMTEyMjMzFQIAEhgUQkYzRjIxNkQyRTE4MzQzRENEMkQ"
WAMID_OUT = "wamid.OUTSEJnTUM0OTFDQUE5OENCM0FDOENEMjcxQjI5RA"
SEND_OK = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": TO, "wa_id": TO}],
    "messages": [{"id": WAMID_OUT, "message_status": "accepted"}],
}
QUERY = "mid=1000000000000101&ext=1795000000&hash=ATu%2Bq-Zx_9k%3D"
LOOKASIDE = f"https://lookaside.fbsbx.com/whatsapp_business/attachments/?{QUERY}"
REWRITTEN = f"{BASE}/whatsapp_business/attachments/?{QUERY}"


def meta_error(code: int, message: str = "error", *, subcode: int | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": f"(#{code}) {message}",
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": f"details of {code}"},
        "fbtrace_id": "AbCdEfGhIjK",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


class SleepRecorder:
    """Stands in for asyncio.sleep so retries run instantly and can be inspected."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def client(http: httpx.AsyncClient, sleeps: SleepRecorder) -> D360Client:
    return D360Client(http, sleep=sleeps)


def only_request(httpx_mock: HTTPXMock) -> httpx.Request:
    requests = httpx_mock.get_requests()
    assert len(requests) == 1, f"expected exactly one request, got {len(requests)}"
    return requests[0]


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


# --- sending ------------------------------------------------------------------------------


async def test_send_text_message(client: D360Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=MESSAGES, json=SEND_OK)

    sent = await client.send_text_message(KEY, TO, "Hola 👋")

    assert sent.message_id == WAMID_OUT
    assert sent.recipient_wa_id == TO
    assert sent.messages[0].message_status == "accepted"
    request = only_request(httpx_mock)
    assert request.headers["D360-API-KEY"] == KEY
    assert request.headers["Content-Type"] == "application/json"
    assert body_of(request) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": "text",
        "text": {"body": "Hola 👋"},
    }


async def test_send_text_reply_with_preview(client: D360Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=MESSAGES, json=SEND_OK)

    await client.send_text_message(
        KEY, "+" + TO, "https://example.com", preview_url=True, reply_to=WAMID_IN
    )

    body = body_of(only_request(httpx_mock))
    assert body["to"] == TO
    assert body["text"] == {"body": "https://example.com", "preview_url": True}
    assert body["context"] == {"message_id": WAMID_IN}


async def test_send_response_keeps_resolved_wa_id(
    client: D360Client, httpx_mock: HTTPXMock
) -> None:
    # Mexico: sent to the 52… form, WhatsApp answers with the 521… id replies will use.
    response = {**SEND_OK, "contacts": [{"input": "525512345678", "wa_id": "5215512345678"}]}
    response["messages"] = [{"id": WAMID_OUT}]
    httpx_mock.add_response(method="POST", url=MESSAGES, json=response)

    sent = await client.send_text_message(KEY, "525512345678", "Hola")

    assert sent.recipient_wa_id == "5215512345678"
    assert sent.messages[0].message_status is None


async def test_send_message_posts_the_reply_s_cloud_body(
    client: D360Client, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=MESSAGES, json=SEND_OK)
    reply = parse_reply({"type": "image", "media_id": "1000000000000201"})

    sent = await client.send_message(KEY, Recipient(to=TO), reply, reply_to=WAMID_IN)

    assert sent.message_id == WAMID_OUT
    request = only_request(httpx_mock)
    assert request.headers["D360-API-KEY"] == KEY
    assert body_of(request) == cloud_message(Recipient(to=TO), reply, context_message_id=WAMID_IN)


@pytest.mark.parametrize(
    ("to", "body"),
    [
        pytest.param(TO, "", id="empty-body"),
        pytest.param(TO, "   ", id="blank-body"),
        pytest.param(TO, "x" * 4097, id="too-long"),
        pytest.param("", "hola", id="empty-to"),
        pytest.param("CO.1502576394655843", "hola", id="bsuid-to"),
        pytest.param("+57 300 111 2233", "hola", id="formatted-to"),
    ],
)
async def test_text_validation_happens_before_any_request(
    client: D360Client, httpx_mock: HTTPXMock, to: str, body: str
) -> None:
    with pytest.raises(ValueError, match=r"."):
        await client.send_text_message(KEY, to, body)
    assert httpx_mock.get_requests() == []


async def test_text_of_exactly_4096_characters_is_sent(
    client: D360Client, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=MESSAGES, json=SEND_OK)
    await client.send_text_message(KEY, TO, "é" * 4096)
    assert body_of(only_request(httpx_mock))["text"]["body"] == "é" * 4096


async def test_empty_api_key_is_refused(client: D360Client, httpx_mock: HTTPXMock) -> None:
    with pytest.raises(ValueError, match="api_key"):
        await client.send_text_message("", TO, "hola")
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize(
    "response",
    [
        pytest.param({"messaging_product": "whatsapp", "messages": []}, id="no-message-id"),
        pytest.param({"messages": [{"status": "x"}]}, id="message-without-id"),
    ],
)
async def test_send_response_without_wamid_is_an_error(
    client: D360Client, httpx_mock: HTTPXMock, response: dict[str, Any]
) -> None:
    httpx_mock.add_response(method="POST", url=MESSAGES, json=response)
    with pytest.raises(D360Error) as caught:
        await client.send_text_message(KEY, TO, "hola")
    assert caught.value.status_code == 200
    assert not caught.value.retryable


async def test_send_response_not_json_is_an_error(
    client: D360Client, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=MESSAGES, text="<html>ok</html>")
    with pytest.raises(D360Error, match="unexpected send response"):
        await client.send_text_message(KEY, TO, "hola")


# --- error shapes -------------------------------------------------------------------------


async def test_meta_error_shape(client: D360Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="POST",
        url=MESSAGES,
        status_code=400,
        json=meta_error(131047, "Re-engagement message", subcode=2494010),
    )

    with pytest.raises(D360WindowClosedError) as caught:
        await client.send_text_message(KEY, TO, "hola")

    error = caught.value
    assert error.status_code == 400
    assert error.code == 131047
    assert error.message == "(#131047) Re-engagement message"
    assert error.details == "details of 131047"
    assert error.error_subcode == 2494010
    assert error.error_type == "OAuthException"
    assert error.fbtrace_id == "AbCdEfGhIjK"
    assert "131047" in error.raw
    assert error.attempts == 1
    assert not error.retryable
    assert KEY not in str(error)


async def test_360dialog_error_shape(client: D360Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="POST", url=MESSAGES, status_code=401, json={"error": "Invalid api key"}
    )

    with pytest.raises(D360AuthError) as caught:
        await client.send_text_message(KEY, TO, "hola")

    assert caught.value.status_code == 401
    assert caught.value.code is None
    assert caught.value.message == "Invalid api key"
    assert "Invalid api key" in str(caught.value)


async def test_legacy_errors_list_shape(client: D360Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/v1/configs/webhook",
        status_code=400,
        json={"errors": [{"code": 1004, "title": "Bad parameter", "details": "url is invalid"}]},
    )

    with pytest.raises(D360Error) as caught:
        await client.set_webhook(KEY, "https://hooks.example.com/wa", {})

    assert (caught.value.code, caught.value.message) == (1004, "Bad parameter")
    assert caught.value.details == "url is invalid"


async def test_non_json_error_body(client: D360Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=MESSAGES, status_code=413, text="Payload Too Large")

    with pytest.raises(D360Error) as caught:
        await client.send_text_message(KEY, TO, "hola")

    assert caught.value.status_code == 413
    assert caught.value.code is None
    assert caught.value.message == "Payload Too Large"
    assert len(httpx_mock.get_requests()) == 1


# --- retries ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        pytest.param(429, {"error": "Rate limit exceeded"}, id="http-429"),
        pytest.param(500, meta_error(131000, "Something went wrong"), id="http-500"),
        pytest.param(503, None, id="http-503-no-body"),
        pytest.param(400, meta_error(130429, "Rate limit hit"), id="meta-130429"),
        pytest.param(400, meta_error(131056, "Pair rate limit hit"), id="meta-131056"),
    ],
)
async def test_retries_transient_errors_then_succeeds(
    client: D360Client,
    httpx_mock: HTTPXMock,
    sleeps: SleepRecorder,
    status: int,
    payload: dict[str, Any] | None,
) -> None:
    httpx_mock.add_response(method="POST", url=MESSAGES, status_code=status, json=payload)
    httpx_mock.add_response(method="POST", url=MESSAGES, json=SEND_OK)

    sent = await client.send_text_message(KEY, TO, "hola")

    assert sent.message_id == WAMID_OUT
    requests = httpx_mock.get_requests()
    assert len(requests) == 2
    assert requests[0].content == requests[1].content
    assert len(sleeps.delays) == 1
    assert 0 <= sleeps.delays[0] <= 0.5


async def test_retries_connect_error_on_send(
    client: D360Client, httpx_mock: HTTPXMock, sleeps: SleepRecorder
) -> None:
    httpx_mock.add_exception(httpx.ConnectError("connection refused"))
    httpx_mock.add_response(method="POST", url=MESSAGES, json=SEND_OK)

    sent = await client.send_text_message(KEY, TO, "hola")

    assert sent.message_id == WAMID_OUT
    assert len(httpx_mock.get_requests()) == 2
    assert len(sleeps.delays) == 1


@pytest.mark.parametrize(
    "exception",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.WriteTimeout("write timed out"),
        httpx.RemoteProtocolError("server disconnected without sending a response"),
        httpx.ReadError("connection reset"),
    ],
    ids=lambda exc: type(exc).__name__,
)
async def test_send_is_not_retried_once_the_request_may_have_left(
    client: D360Client, httpx_mock: HTTPXMock, sleeps: SleepRecorder, exception: Exception
) -> None:
    httpx_mock.add_exception(exception)

    with pytest.raises(D360NetworkError) as caught:
        await client.send_text_message(KEY, TO, "hola")

    assert caught.value.attempts == 1
    assert caught.value.__cause__ is exception
    assert len(httpx_mock.get_requests()) == 1
    assert sleeps.delays == []


async def test_send_is_not_retried_on_gateway_timeout(
    client: D360Client, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="POST", url=MESSAGES, status_code=504, text="Gateway Timeout")

    with pytest.raises(D360Error) as caught:
        await client.send_text_message(KEY, TO, "hola")

    assert caught.value.status_code == 504
    assert caught.value.retryable  # in general; only sends refuse to repeat it
    assert len(httpx_mock.get_requests()) == 1


@pytest.mark.parametrize(
    ("status", "payload", "error_type"),
    [
        pytest.param(400, meta_error(131047), D360WindowClosedError, id="meta-131047"),
        pytest.param(400, meta_error(131026), D360Error, id="meta-131026"),
        pytest.param(400, meta_error(100, "Invalid parameter"), D360Error, id="meta-100"),
        pytest.param(400, {"error": "API disabled"}, D360Error, id="plain-400"),
        pytest.param(403, meta_error(368), D360Error, id="http-403"),
        pytest.param(404, {"error": "Not found"}, D360Error, id="http-404"),
        pytest.param(500, meta_error(131047), D360WindowClosedError, id="131047-beats-5xx"),
    ],
)
async def test_permanent_errors_are_not_retried(
    client: D360Client,
    httpx_mock: HTTPXMock,
    sleeps: SleepRecorder,
    status: int,
    payload: dict[str, Any],
    error_type: type[D360Error],
) -> None:
    httpx_mock.add_response(method="POST", url=MESSAGES, status_code=status, json=payload)

    with pytest.raises(error_type) as caught:
        await client.send_text_message(KEY, TO, "hola")

    assert not caught.value.retryable
    assert caught.value.attempts == 1
    assert len(httpx_mock.get_requests()) == 1
    assert sleeps.delays == []


async def test_retries_exhausted_raise_the_last_error(
    client: D360Client, httpx_mock: HTTPXMock, sleeps: SleepRecorder
) -> None:
    for _ in range(4):
        httpx_mock.add_response(method="POST", url=MESSAGES, status_code=500, json=meta_error(1))

    with pytest.raises(D360Error) as caught:
        await client.send_text_message(KEY, TO, "hola")

    assert caught.value.attempts == 4
    assert caught.value.status_code == 500
    assert len(httpx_mock.get_requests()) == 4
    # Full jitter under an exponential ceiling: base 0.5 → 0.5, 1, 2.
    assert len(sleeps.delays) == 3
    for attempt, delay in enumerate(sleeps.delays, start=1):
        assert 0 <= delay <= 0.5 * 2 ** (attempt - 1)


async def test_rate_limit_exhausted(
    client: D360Client, httpx_mock: HTTPXMock, sleeps: SleepRecorder
) -> None:
    for _ in range(4):
        httpx_mock.add_response(method="POST", url=MESSAGES, status_code=429, json={"error": "x"})

    with pytest.raises(D360RateLimitError) as caught:
        await client.send_text_message(KEY, TO, "hola")

    assert caught.value.rate_limited
    assert caught.value.attempts == 4


async def test_connect_errors_exhausted(
    client: D360Client, httpx_mock: HTTPXMock, sleeps: SleepRecorder
) -> None:
    for _ in range(4):
        httpx_mock.add_exception(httpx.ConnectTimeout("connect timed out"))

    with pytest.raises(D360NetworkError) as caught:
        await client.send_text_message(KEY, TO, "hola")

    assert caught.value.attempts == 4
    assert len(httpx_mock.get_requests()) == 4
    assert len(sleeps.delays) == 3
    assert KEY not in str(caught.value)


async def test_backoff_is_capped(
    http: httpx.AsyncClient, httpx_mock: HTTPXMock, sleeps: SleepRecorder
) -> None:
    client = D360Client(http, max_attempts=6, backoff_base=4.0, backoff_cap=5.0, sleep=sleeps)
    for _ in range(6):
        httpx_mock.add_response(method="GET", url=f"{BASE}/123", status_code=502)

    with pytest.raises(D360Error):
        await client.get_media_url(KEY, "123")

    assert len(sleeps.delays) == 5
    assert all(0 <= delay <= 5.0 for delay in sleeps.delays)


@pytest.mark.parametrize(("header", "expected"), [("3", 3.0), ("120", 8.0)])
async def test_retry_after_is_honoured_up_to_the_cap(
    client: D360Client,
    httpx_mock: HTTPXMock,
    sleeps: SleepRecorder,
    header: str,
    expected: float,
) -> None:
    httpx_mock.add_response(
        method="POST", url=MESSAGES, status_code=429, headers={"Retry-After": header}
    )
    httpx_mock.add_response(method="POST", url=MESSAGES, json=SEND_OK)

    await client.send_text_message(KEY, TO, "hola")

    assert sleeps.delays == [expected]


async def test_single_attempt_client_never_sleeps(
    http: httpx.AsyncClient, httpx_mock: HTTPXMock, sleeps: SleepRecorder
) -> None:
    client = D360Client(http, max_attempts=1, sleep=sleeps)
    httpx_mock.add_response(method="POST", url=MESSAGES, status_code=503)

    with pytest.raises(D360Error) as caught:
        await client.send_text_message(KEY, TO, "hola")

    assert caught.value.attempts == 1
    assert sleeps.delays == []


def test_max_attempts_must_be_positive(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        D360Client(http, max_attempts=0)


# --- mark as read -------------------------------------------------------------------------


async def test_mark_as_read(client: D360Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=MESSAGES, json={"success": True})

    await client.mark_as_read(KEY, WAMID_IN)

    request = only_request(httpx_mock)
    assert request.headers["D360-API-KEY"] == KEY
    assert body_of(request) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": WAMID_IN,
    }


async def test_mark_as_read_retries_read_timeout(
    client: D360Client, httpx_mock: HTTPXMock, sleeps: SleepRecorder
) -> None:
    # Marking read twice is harmless, unlike sending twice.
    httpx_mock.add_exception(httpx.ReadTimeout("read timed out"))
    httpx_mock.add_response(method="POST", url=MESSAGES, json={"success": True})

    await client.mark_as_read(KEY, WAMID_IN)

    assert len(httpx_mock.get_requests()) == 2
    assert len(sleeps.delays) == 1


async def test_mark_as_read_needs_a_message_id(client: D360Client, httpx_mock: HTTPXMock) -> None:
    with pytest.raises(ValueError, match="message_id"):
        await client.mark_as_read(KEY, "")
    assert httpx_mock.get_requests() == []


# --- webhook config -----------------------------------------------------------------------


async def test_set_webhook(client: D360Client, httpx_mock: HTTPXMock) -> None:
    url = "https://inbox.example.com/api/webhooks/whatsapp"
    httpx_mock.add_response(method="POST", url=f"{BASE}/v1/configs/webhook", json={"url": url})

    await client.set_webhook(KEY, url, {"X-Webhook-Secret": "s3cret"})

    request = only_request(httpx_mock)
    assert request.headers["D360-API-KEY"] == KEY
    assert body_of(request) == {"url": url, "headers": {"X-Webhook-Secret": "s3cret"}}


async def test_set_webhook_requires_https(client: D360Client, httpx_mock: HTTPXMock) -> None:
    with pytest.raises(ValueError, match="https"):
        await client.set_webhook(KEY, "http://inbox.example.com/hook", {})
    assert httpx_mock.get_requests() == []


async def test_custom_base_url(
    http: httpx.AsyncClient, httpx_mock: HTTPXMock, sleeps: SleepRecorder
) -> None:
    sandbox = "https://waba-sandbox.360dialog.io"
    client = D360Client(http, base_url=sandbox + "/", sleep=sleeps)
    httpx_mock.add_response(method="POST", url=f"{sandbox}/v1/configs/webhook", json={})

    await client.set_webhook(KEY, "https://inbox.example.com/hook", {})

    assert only_request(httpx_mock).url == f"{sandbox}/v1/configs/webhook"


# --- media --------------------------------------------------------------------------------


async def test_get_media_url(client: D360Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/1000000000000101",
        json={
            "messaging_product": "whatsapp",
            "url": LOOKASIDE,
            "mime_type": "image/jpeg",
            "sha256": "b29814cf5792e684cd75d6a7fce7a67a11887e312f87ca2ac2496d81f365ff72",
            "file_size": "303833",
            "id": "1000000000000101",
        },
    )

    info = await client.get_media_url(KEY, "1000000000000101")

    assert info == MediaInfo(
        url=LOOKASIDE,
        mime_type="image/jpeg",
        sha256="b29814cf5792e684cd75d6a7fce7a67a11887e312f87ca2ac2496d81f365ff72",
        file_size=303833,
        id="1000000000000101",
    )
    request = only_request(httpx_mock)
    assert request.headers["D360-API-KEY"] == KEY
    assert request.content == b""


async def test_get_media_url_retries_read_timeout(
    client: D360Client, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("read timed out"))
    httpx_mock.add_response(method="GET", url=f"{BASE}/42", json={"url": LOOKASIDE})

    info = await client.get_media_url(KEY, "42")

    assert info.url == LOOKASIDE
    assert len(httpx_mock.get_requests()) == 2


async def test_get_media_url_not_found_is_not_retried(
    client: D360Client, httpx_mock: HTTPXMock
) -> None:
    # Failed media lookups count toward 360dialog's error throttling: never hammer them.
    httpx_mock.add_response(
        method="GET", url=f"{BASE}/42", status_code=404, json=meta_error(100, "Invalid media id")
    )

    with pytest.raises(D360Error) as caught:
        await client.get_media_url(KEY, "42")

    assert caught.value.code == 100
    assert len(httpx_mock.get_requests()) == 1


async def test_get_media_url_without_url_is_an_error(
    client: D360Client, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="GET", url=f"{BASE}/42", json={"id": "42"})
    with pytest.raises(D360Error, match="unexpected media info"):
        await client.get_media_url(KEY, "42")


@pytest.mark.parametrize("media_id", ["", "../v1/configs/webhook", "42?x=1", "42/..", "a b"])
async def test_get_media_url_refuses_odd_ids(
    client: D360Client, httpx_mock: HTTPXMock, media_id: str
) -> None:
    with pytest.raises(ValueError, match="media id"):
        await client.get_media_url(KEY, media_id)
    assert httpx_mock.get_requests() == []


async def test_download_media_rewrites_lookaside(client: D360Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="GET",
        url=REWRITTEN,
        content=b"\xff\xd8\xff\xe0 jpeg bytes",
        headers={
            "Content-Type": "image/jpeg",
            "Content-Disposition": 'attachment; filename="../../etc/foto 1.jpg"',
        },
    )

    media = await client.download_media(KEY, LOOKASIDE)

    assert media == DownloadedMedia(
        content=b"\xff\xd8\xff\xe0 jpeg bytes", content_type="image/jpeg", filename="foto 1.jpg"
    )
    request = only_request(httpx_mock)
    assert request.url.host == "waba-v2.360dialog.io"
    assert request.url.path == "/whatsapp_business/attachments/"
    assert request.url.query == QUERY.encode()
    assert request.headers["D360-API-KEY"] == KEY


async def test_download_media_rfc5987_filename(client: D360Client, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=REWRITTEN,
        content=b"%PDF-1.7",
        headers={"Content-Disposition": "attachment; filename*=UTF-8''factura%20n%C2%BA1.pdf"},
    )

    media = await client.download_media(KEY, LOOKASIDE)

    assert media.filename == "factura nº1.pdf"
    assert media.content_type is None


async def test_download_media_accepts_urls_already_on_the_base_host(
    client: D360Client, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=REWRITTEN, content=b"data")
    media = await client.download_media(KEY, REWRITTEN)
    assert media.content == b"data"


async def test_download_media_retries_server_errors(
    client: D360Client, httpx_mock: HTTPXMock, sleeps: SleepRecorder
) -> None:
    httpx_mock.add_response(url=REWRITTEN, status_code=502, text="Bad Gateway")
    httpx_mock.add_exception(httpx.ReadTimeout("read timed out"))
    httpx_mock.add_response(url=REWRITTEN, content=b"data")

    media = await client.download_media(KEY, LOOKASIDE)

    assert media.content == b"data"
    assert len(sleeps.delays) == 2


async def test_redirects_are_not_followed(httpx_mock: HTTPXMock, sleeps: SleepRecorder) -> None:
    # Even on a client configured to follow them: the key header would go along.
    async with httpx.AsyncClient(follow_redirects=True) as http:
        client = D360Client(http, sleep=sleeps)
        httpx_mock.add_response(
            url=REWRITTEN, status_code=302, headers={"Location": "https://cdn.example.com/f"}
        )

        with pytest.raises(D360Error) as caught:
            await client.download_media(KEY, LOOKASIDE)

    assert caught.value.status_code == 302
    assert len(httpx_mock.get_requests()) == 1


async def test_download_errors_do_not_leak_the_link(
    client: D360Client, httpx_mock: HTTPXMock
) -> None:
    for _ in range(4):
        httpx_mock.add_exception(httpx.ConnectError("no route to host"))

    with pytest.raises(D360NetworkError) as caught:
        await client.download_media(KEY, LOOKASIDE)

    assert "hash" not in str(caught.value)
    assert "media download" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/whatsapp_business/attachments/?mid=1",
        "https://lookaside.fbsbx.com.evil.example.com/x?mid=1",
        "http://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1",
        "https://lookaside.fbsbx.com:8443/whatsapp_business/attachments/?mid=1",
        "http://waba-v2.360dialog.io/whatsapp_business/attachments/?mid=1",
        "https://scontent.whatsapp.net/v/t61/abc.jpg",
        "/whatsapp_business/attachments/?mid=1",
        "not a url",
    ],
)
async def test_media_from_other_hosts_is_refused(
    client: D360Client, httpx_mock: HTTPXMock, url: str
) -> None:
    with pytest.raises(ValueError, match=r"."):
        await client.download_media(KEY, url)
    with pytest.raises(ValueError, match=r"."):
        async with client.stream_media(KEY, url):
            pass
    assert httpx_mock.get_requests() == []


async def test_stream_media(client: D360Client, httpx_mock: HTTPXMock) -> None:
    payload = bytes(range(256)) * 64
    httpx_mock.add_response(
        method="GET", url=REWRITTEN, content=payload, headers={"Content-Type": "video/mp4"}
    )

    received = bytearray()
    async with client.stream_media(KEY, LOOKASIDE) as response:
        assert response.headers["Content-Type"] == "video/mp4"
        async for chunk in response.aiter_bytes():
            received.extend(chunk)

    assert bytes(received) == payload
    assert response.is_closed
    request = only_request(httpx_mock)
    assert request.url == REWRITTEN
    assert request.headers["D360-API-KEY"] == KEY


async def test_stream_media_errors_before_yielding(
    client: D360Client, httpx_mock: HTTPXMock, sleeps: SleepRecorder
) -> None:
    httpx_mock.add_response(url=REWRITTEN, status_code=503, json={"error": "API not available"})
    httpx_mock.add_response(url=REWRITTEN, status_code=401, json={"error": "Invalid api key"})

    with pytest.raises(D360AuthError) as caught:
        async with client.stream_media(KEY, LOOKASIDE):
            pytest.fail("must not yield an error response")

    assert caught.value.message == "Invalid api key"
    assert caught.value.attempts == 2
    assert len(sleeps.delays) == 1


# --- error classification -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (429, None, True),
        (500, None, True),
        (502, None, True),
        (400, 130429, True),
        (400, 131056, True),
        (400, 131047, False),
        (400, 470, False),
        (400, 131026, False),
        (400, 131048, False),
        (400, None, False),
        (401, None, False),
        (404, None, False),
    ],
)
def test_retryable(status: int, code: int | None, retryable: bool) -> None:
    assert D360Error(status, code=code).retryable is retryable
