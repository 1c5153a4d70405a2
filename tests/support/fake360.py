"""A stand-in for 360dialog on loopback, for tests that run the API as a real process."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from tests.support.processes import free_port_block


async def _send(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": body.get("to", ""), "wa_id": body.get("to", "")}],
            "messages": [{"id": f"wamid.FAKE{uuid.uuid4().hex}"}],
        }
    )


async def _not_found(_: web.Request) -> web.Response:
    return web.json_response(
        {"error": {"code": 100, "message": "Unsupported get request"}}, status=400
    )


@contextmanager
def fake_360dialog() -> Iterator[str]:
    """Serves until the block ends; yields its base URL."""
    app = web.Application()
    app.router.add_post("/messages", _send)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    port = free_port_block(1, start=59000)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
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
