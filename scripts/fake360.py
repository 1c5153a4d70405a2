"""A stand-in for 360dialog on loopback: `make run` uses it when no D360_BASE_URL is set,
and tests that run the API as a real process use it too. Nothing leaves the machine.

    python scripts/fake360.py --port 8001

Sends (text, media, interactive, template) are accepted with a fresh wamid and
printed; an interactive send needs a `button` or `list` object with an action;
the templates in TEMPLATES are listed (`GET /v1/configs/templates`) and a
template send is checked against them as Meta would (132001 unknown, 132015
paused, 132000 a wrong number of parameters); an upload (`POST /media`,
multipart with `messaging_product`, `type` and `file`) is read to its end,
counted and answered with a fresh numeric media id; media ids resolve to a
lookaside URL (which the client rewrites to this host, as with 360dialog) that
serves a small placeholder image; a webhook registration
(`POST /v1/configs/webhook`, what `channel register-webhook` calls) is checked
and printed, never forwarded; anything else answers Meta's error shape.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import BodyPartReader, web

# A 1x1 GIF: enough for a browser to show "an image arrived".
PLACEHOLDER = bytes.fromhex(
    "47494638396101000100800000ffffff00000021f90401000000002c00000000010001000002024401003b"
)


# What `template refresh` stores from the fake: two that can be sent, one that
# Meta paused, one with an image header (kept, but not offered to agents).
TEMPLATES: list[dict[str, object]] = [
    {
        "name": "hello_world",
        "language": "en_US",
        "status": "approved",
        "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Hello, this is {{1}}. How can we help?"}],
    },
    {
        "name": "order_update",
        "language": "es",
        "status": "approved",
        "category": "UTILITY",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Pedido {{1}}"},
            {"type": "BODY", "text": "Hola {{1}}, tu pedido {{2}} va en camino."},
            {"type": "FOOTER", "text": "Gracias por tu compra"},
        ],
    },
    {
        "name": "spring_sale",
        "language": "es",
        "status": "paused",
        "category": "MARKETING",
        "components": [{"type": "BODY", "text": "¡Rebajas de primavera!"}],
    },
    {
        "name": "catalog_photo",
        "language": "es",
        "status": "approved",
        "category": "MARKETING",
        "components": [
            {"type": "HEADER", "format": "IMAGE"},
            {"type": "BODY", "text": "Nuestro catálogo"},
        ],
    },
]


def _placeholders(text: object) -> int:
    return len(set(re.findall(r"\{\{\s*(\w+)\s*\}\}", text))) if isinstance(text, str) else 0


def _template_error(template: object) -> web.Response | None:
    """Meta's answer to a template send that does not fit TEMPLATES; None when it does."""
    if not isinstance(template, dict):
        return _error(400, "template must be an object (fake 360dialog)")
    language = template.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    known = next(
        (t for t in TEMPLATES if t["name"] == template.get("name") and t["language"] == code),
        None,
    )
    if known is None:
        return _error(404, "Template name does not exist in the translation", code=132001)
    if known["status"] != "approved":
        return _error(400, "Template is paused", code=132015)
    components = known["components"]
    assert isinstance(components, list)
    sent = {
        str(c.get("type", "")).upper(): len(c.get("parameters") or [])
        for c in template.get("components") or []
        if isinstance(c, dict)
    }
    for component in components:
        part = component["type"]
        if _placeholders(component.get("text")) != sent.get(part, 0):
            return _error(
                400, "Number of parameters does not match the expected number", code=132000
            )
    return None


async def _templates(request: web.Request) -> web.Response:
    if not request.headers.get("D360-API-KEY"):
        return _error(401, "Missing D360-API-KEY (fake 360dialog)")
    return web.json_response(
        {"count": len(TEMPLATES), "total": len(TEMPLATES), "offset": 0, "waba_templates": TEMPLATES}
    )


async def _messages(request: web.Request) -> web.Response:
    body = await request.json()
    if body.get("status") == "read":
        return web.json_response({"success": True})
    kind = body.get("type")
    interactive = body.get("interactive")
    if kind == "interactive" and not (
        isinstance(interactive, dict)
        and interactive.get("type") in ("button", "list")
        and isinstance(interactive.get("action"), dict)
    ):
        return _error(400, "interactive needs type button or list and an action (fake 360dialog)")
    if kind == "template":
        refused = _template_error(body.get("template"))
        if refused is not None:
            return refused
    wamid = f"wamid.FAKE{uuid.uuid4().hex}"
    # Meta answers a send to a user id (`recipient`) with user_id, not wa_id.
    if "to" in body:
        to = str(body["to"])
        contact = {"input": to, "wa_id": to.removeprefix("+")}
    else:
        to = str(body.get("recipient", ""))
        contact = {"input": to, "user_id": to}
    print(f"fake 360dialog: {body.get('type')} to {to} -> {wamid}", flush=True)
    return web.json_response(
        {"messaging_product": "whatsapp", "contacts": [contact], "messages": [{"id": wamid}]}
    )


async def _upload(request: web.Request) -> web.Response:
    """As the Cloud API: the file is counted as it arrives, never kept."""
    if not request.headers.get("D360-API-KEY"):
        return _error(401, "Missing D360-API-KEY (fake 360dialog)")
    if not request.content_type.startswith("multipart/"):
        return _error(400, "Upload must be multipart/form-data (fake 360dialog)")
    fields: dict[str, str] = {}
    size, mime = -1, None
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            return _error(400, "Nested multipart (fake 360dialog)")
        if part.name == "file":
            mime, size = part.headers.get("Content-Type"), 0
            while chunk := await part.read_chunk(64 * 1024):
                size += len(chunk)
        elif part.name is not None:
            fields[part.name] = await part.text()
    if fields.get("messaging_product") != "whatsapp" or size < 0 or not fields.get("type"):
        return _error(400, "Need messaging_product, type and file (fake 360dialog)")
    media_id = str(uuid.uuid4().int % 10**16)
    print(f"fake 360dialog: upload {mime} of {size} bytes -> {media_id}", flush=True)
    return web.json_response({"id": media_id})


async def _media_info(request: web.Request) -> web.Response:
    media_id = request.match_info["media_id"]
    return web.json_response(
        {
            "messaging_product": "whatsapp",
            "id": media_id,
            "url": f"https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid={media_id}",
            "mime_type": "image/gif",
            "file_size": len(PLACEHOLDER),
        }
    )


async def _media_bytes(_: web.Request) -> web.Response:
    return web.Response(body=PLACEHOLDER, content_type="image/gif")


async def _configure_webhook(request: web.Request) -> web.Response:
    """As 360dialog: the number's key in D360-API-KEY, an https URL, optional headers."""
    if not request.headers.get("D360-API-KEY"):
        return _error(401, "Missing D360-API-KEY (fake 360dialog)")
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "Body is not JSON (fake 360dialog)")
    url = body.get("url") if isinstance(body, dict) else None
    headers = body.get("headers", {}) if isinstance(body, dict) else None
    if not isinstance(url, str) or not url.startswith("https://"):
        return _error(400, "url must be an https URL (fake 360dialog)")
    if not isinstance(headers, dict):
        return _error(400, "headers must be an object (fake 360dialog)")
    # Header names only: the values are the channel's webhook secret.
    print(f"fake 360dialog: webhook -> {url} (headers: {sorted(headers)})", flush=True)
    return web.json_response({"url": url})


def _error(status: int, message: str, *, code: int = 100) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


async def _unknown(_: web.Request) -> web.Response:
    return _error(400, "Unsupported request (fake 360dialog)")


def make_app() -> web.Application:
    # Uploads go up to WhatsApp's 100 MB document limit.
    app = web.Application(client_max_size=101 * 1024 * 1024)
    app.router.add_post("/messages", _messages)
    app.router.add_post("/media", _upload)
    app.router.add_post("/v1/configs/webhook", _configure_webhook)
    app.router.add_get("/v1/configs/templates", _templates)
    app.router.add_get("/whatsapp_business/attachments/", _media_bytes)
    app.router.add_get(r"/{media_id:[0-9]+}", _media_info)
    app.router.add_route("*", "/{tail:.*}", _unknown)
    return app


@contextmanager
def fake_360dialog(port: int) -> Iterator[str]:
    """Serves in a background thread until the block ends; yields its base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(make_app())
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(runner.cleanup())
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    web.run_app(make_app(), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
