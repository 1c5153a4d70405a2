"""Crashes and outages on a private stack: a delivery answered 200 is never lost or doubled."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from service.clients import open_clients
from service.repositories.send_ledger import SendLedger
from service.settings import Settings
from tests.integration.test_send_ledger import pending_reply
from tests.support.agent import drop_tenant, make_tenant
from tests.support.inbox import AGENT_A, CHANNEL_A, SECRET_A
from tests.support.payloads import new_phone, text_payload
from tests.support.processes import IsolatedStack, ServiceProcess, free_port_block
from tests.support.stack import psql

HEADERS = {"X-Webhook-Secret": SECRET_A, "content-type": "application/json"}


@pytest.fixture(scope="module")
def stack() -> Iterator[IsolatedStack]:
    own = IsolatedStack("reliability")
    own.up()
    try:
        yield own
    finally:
        own.destroy()


@pytest.fixture
async def api(stack: IsolatedStack) -> AsyncIterator[ServiceProcess]:
    process = ServiceProcess("api", stack.env, port=free_port_block(1, start=58000))
    process.start()
    await process.wait_healthy()
    yield process
    process.stop()


@pytest.fixture
def worker(stack: IsolatedStack) -> Iterator[ServiceProcess]:
    env = {**stack.env, "WORKER_LEASE_SECONDS": "2", "WORKER_IDLE_POLL_SECONDS": "0.05"}
    process = ServiceProcess("worker", env)
    process.start()
    yield process
    process.stop()


async def post(client: httpx.AsyncClient, url: str, body: bytes) -> int:
    try:
        response = await client.post(
            f"{url}/api/webhooks/whatsapp", content=body, headers=HEADERS, timeout=5.0
        )
    except httpx.TransportError:
        return 0  # what a sender sees while the service is down
    return response.status_code


def count(database_url: str, sql: str) -> int:
    return int(psql(database_url, sql))


async def test_kill_9_of_api_and_worker_under_load_loses_and_doubles_nothing(
    stack: IsolatedStack, api: ServiceProcess, worker: ServiceProcess
) -> None:
    sender = new_phone()
    bodies = [
        json.dumps(text_payload(CHANNEL_A, sender, f"carga {i}")).encode() for i in range(400)
    ]
    acked: set[int] = set()
    answers: list[int] = []
    rng = random.Random(20261124)

    async def sender_loop(client: httpx.AsyncClient, indexes: list[int]) -> None:
        # Like 360dialog: retry each delivery until it is acknowledged (bounded).
        for i in indexes:
            deadline = time.monotonic() + 30
            while True:
                status = await post(client, api.url, bodies[i])
                answers.append(status)
                if status == 200:
                    acked.add(i)
                    break
                assert status in (0, 503), f"unexpected answer {status}"
                assert time.monotonic() < deadline, "delivery never acknowledged"
                await asyncio.sleep(0.02)

    async def chaos() -> None:
        for round_ in range(6):
            await asyncio.sleep(rng.uniform(0.1, 0.4))  # a random moment, not a readiness wait
            victim = api if round_ % 2 == 0 else worker
            victim.kill9()
            victim.start()
            if victim is api:
                await api.wait_healthy()

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=16)) as client:
        lanes = [list(range(n, len(bodies), 8)) for n in range(8)]
        await asyncio.gather(chaos(), *(sender_loop(client, lane) for lane in lanes))

    assert acked == set(range(len(bodies)))
    assert 0 in answers, "the API was never down while senders were sending"
    database_url = stack.env["DATABASE_URL"]
    deadline = time.monotonic() + 30
    while count(database_url, "select count(*) from webhook_events where status = 'pending'"):
        assert time.monotonic() < deadline, "worker did not finish"
        await asyncio.sleep(0.05)

    phone = f"+{sender}"
    messages = count(
        database_url,
        "select count(*) from messages m join conversations c on c.id = m.conversation_id "
        f"where c.phone = '{phone}'",
    )
    distinct_bodies = count(
        database_url,
        "select count(distinct m.content->>'body') from messages m "
        f"join conversations c on c.id = m.conversation_id where c.phone = '{phone}'",
    )
    unread = count(database_url, f"select unread_count from conversations where phone = '{phone}'")
    assert (messages, distinct_bodies, unread) == (400, 400, 400)
    assert count(database_url, "select count(*) from webhook_events where status = 'dead'") == 0


async def test_outages_answer_503_never_200_and_retries_land_once(
    stack: IsolatedStack, api: ServiceProcess, worker: ServiceProcess
) -> None:
    database_url = stack.env["DATABASE_URL"]
    async with httpx.AsyncClient() as client:
        # Warm up: the channel is known and cached.
        warm = json.dumps(text_payload(CHANNEL_A, new_phone(), "hola")).encode()
        assert await post(client, api.url, warm) == 200

        for piece, why in (
            ("postgrest", "cannot reach PostgREST"),
            ("postgres", "cannot reach Postgres"),
        ):
            sender = new_phone()
            body = json.dumps(text_payload(CHANNEL_A, sender, f"durante {piece}")).encode()
            stack.stop(piece)
            try:
                started = time.monotonic()
                assert await post(client, api.url, body) == 503
                # At once: 360dialog should retry, not wait on us.
                assert time.monotonic() - started < 1.0
                assert await post(client, api.url, body) == 503
                ready = await client.get(f"{api.url}/ready")
                assert ready.status_code == 503
                assert ready.json()["status"] == "unavailable"
                assert why in ready.json()["reason"]
            finally:
                stack.up()
            ready = await client.get(f"{api.url}/ready")
            assert ready.status_code == 200, ready.text
            # The sender retries; now it lands, once.
            assert await post(client, api.url, body) == 200
            assert await post(client, api.url, body) == 200
            deadline = time.monotonic() + 20
            phone = f"+{sender}"
            sql = (
                "select count(*) from messages m join conversations c on c.id = m.conversation_id "
                f"where c.phone = '{phone}'"
            )
            while count(database_url, sql) == 0:
                assert time.monotonic() < deadline, (
                    f"delivery after the {piece} outage never landed"
                )
                await asyncio.sleep(0.05)
            assert count(database_url, sql) == 1


async def test_the_send_ledger_outlasts_a_database_blink(
    stack: IsolatedStack, caplog: pytest.LogCaptureFixture
) -> None:
    """A reply 360dialog accepted is recorded even though the first tries hit an outage."""
    async with open_clients(Settings.from_env(stack.env)) as clients:
        message_id = uuid.UUID(await pending_reply(clients))
        wamid = f"wamid.BLINK{uuid.uuid4().hex}"
        stack.stop("postgrest")
        try:
            with caplog.at_level(logging.WARNING, logger="service.repositories.send_ledger"):
                recording = asyncio.create_task(
                    SendLedger(clients.service_db).record(
                        message_id,
                        sent_by=uuid.UUID(AGENT_A),
                        status="sent",
                        at=datetime.now(tz=UTC),
                        wamid=wamid,
                    )
                )
                deadline = time.monotonic() + 5
                while not any("retrying" in r.getMessage() for r in caplog.records):
                    assert not recording.done(), "recorded without meeting the outage"
                    assert time.monotonic() < deadline, "the ledger never tried"
                    await asyncio.sleep(0.02)
        finally:
            await asyncio.to_thread(stack.up)
        recorded = await asyncio.wait_for(recording, timeout=10)

    assert recorded is not None
    assert (recorded.status, recorded.wamid) == ("sent", wamid)
    stored = psql(
        stack.env["DATABASE_URL"], f"select status from messages where id = '{message_id}'"
    )
    assert stored == "sent"


async def test_sigterm_under_load_loses_nothing_and_leaves_nothing_leased(
    stack: IsolatedStack,
) -> None:
    """A deploy's stop: the API finishes what it accepted, the worker its leased batch."""
    database_url = stack.env["DATABASE_URL"]
    # A long lease: an event left leased would still be leased when we look.
    env = {**stack.env, "WORKER_LEASE_SECONDS": "300", "WORKER_BATCH_SIZE": "25"}
    api = ServiceProcess("api", env, port=free_port_block(1, start=58300))
    worker = ServiceProcess("worker", env)
    api.start()
    await api.wait_healthy()
    worker.start()
    sender = new_phone()
    bodies = [
        json.dumps(text_payload(CHANNEL_A, sender, f"parada {i}")).encode() for i in range(3000)
    ]
    acked: set[int] = set()
    refused = 0

    async def sender_loop(client: httpx.AsyncClient, indexes: list[int]) -> None:
        nonlocal refused
        for i in indexes:
            status = await post(client, api.url, bodies[i])
            if status == 200:
                acked.add(i)
            else:  # the API is stopping or gone: not accepted, so the sender would retry
                assert status in (0, 503), f"unexpected answer {status}"
                refused += 1

    leased = "select count(*) from webhook_events where status = 'pending' and locked_until > now()"

    async def stop_both_mid_load() -> None:
        deadline = time.monotonic() + 30
        # Mid-load: deliveries are being accepted and the worker holds a batch.
        while len(acked) < 200 or count(database_url, leased) == 0:
            assert time.monotonic() < deadline, "no load built up"
            await asyncio.sleep(0.01)
        assert api.process is not None
        assert worker.process is not None
        worker.process.send_signal(signal.SIGTERM)
        api.process.send_signal(signal.SIGTERM)

    try:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=16)) as client:
            lanes = [list(range(n, len(bodies), 16)) for n in range(16)]
            await asyncio.gather(
                stop_both_mid_load(), *(sender_loop(client, lane) for lane in lanes)
            )
        assert api.process is not None
        assert worker.process is not None
        # uvicorn re-raises SIGTERM once it has shut down, so that is its exit status.
        assert api.process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert worker.process.wait(timeout=30) == 0
    finally:
        api.kill9()
        worker.kill9()

    assert refused > 0, "the API stopped only after the load ended"
    assert count(database_url, leased) == 0
    stored = psql(
        database_url,
        "select coalesce(string_agg(substring(body from 'parada ([0-9]+)'), ','), '') "
        "from webhook_events where body like '%parada %'",
    )
    stored_ids = {int(i) for i in stored.split(",") if i}
    assert acked <= stored_ids, f"{len(acked - stored_ids)} accepted deliveries were lost"

    # What was stored but not yet processed is there for the next worker, once.
    restarted = ServiceProcess("worker", {**stack.env, "WORKER_IDLE_POLL_SECONDS": "0.05"})
    restarted.start()
    try:
        deadline = time.monotonic() + 60
        while count(database_url, "select count(*) from webhook_events where status = 'pending'"):
            assert time.monotonic() < deadline, "the restarted worker did not finish"
            await asyncio.sleep(0.05)
    finally:
        restarted.stop()
    phone = f"+{sender}"
    messages = count(
        database_url,
        "select count(distinct m.content->>'body') from messages m "
        f"join conversations c on c.id = m.conversation_id where c.phone = '{phone}'",
    )
    total = count(
        database_url,
        "select count(*) from messages m join conversations c on c.id = m.conversation_id "
        f"where c.phone = '{phone}'",
    )
    assert (messages, total) == (len(stored_ids), len(stored_ids))


class SilentD360:
    """A 360dialog that takes each request and never answers it."""

    def __init__(self) -> None:
        self.requests = 0
        self.received = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._held: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._take, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _take(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._held.append(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        if head.startswith(b"POST /messages "):
            self.requests += 1
            self.received.set()

    async def close(self) -> None:
        for writer in self._held:
            writer.close()
        if self._server is not None:
            self._server.close()


async def test_a_sender_killed_mid_send_is_settled_by_the_sweep_and_never_resent(
    stack: IsolatedStack,
) -> None:
    """SIGKILL while 360dialog has the request: the reply is failed as unknown, not sent again."""
    env = stack.env
    database_url = env["DATABASE_URL"]
    tenant = make_tenant(database_url, env["SUPABASE_JWT_SECRET"], "Sweep")
    d360 = SilentD360()
    api = ServiceProcess(
        "api", {**env, "D360_BASE_URL": await d360.start()}, port=free_port_block(1, start=58500)
    )
    worker = ServiceProcess("worker", {**env, "REPLY_SWEEP_INTERVAL_SECONDS": "0.1"})
    try:
        conversation = tenant.add_conversation()
        tenant.add_inbound(conversation)
        api.start()
        await api.wait_healthy()
        url = f"{api.url}/api/conversations/{conversation}/messages"
        headers = {**tenant.headers, "Idempotency-Key": "reply-1"}
        async with httpx.AsyncClient(timeout=60) as client:
            sending = asyncio.create_task(
                client.post(url, headers=headers, json={"type": "text", "text": "¡Hola!"})
            )
            await asyncio.wait_for(d360.received.wait(), timeout=20)
            api.kill9()
            with pytest.raises(httpx.TransportError):
                await sending

            reply = (
                "select status from messages "
                f"where conversation_id = '{conversation}' and direction = 'outbound'"
            )
            assert psql(database_url, reply) == "pending"
            # Past REPLY_PENDING_TIMEOUT_SECONDS, as if its minutes had gone by.
            psql(
                database_url,
                "update messages set created_at = now() - interval '10 minutes' "
                f"where conversation_id = '{conversation}' and direction = 'outbound'",
            )
            worker.start()
            deadline = time.monotonic() + 30
            while psql(database_url, reply) == "pending":
                assert time.monotonic() < deadline, "the worker never swept the reply"
                await asyncio.sleep(0.05)
            assert psql(database_url, reply) == "failed"

            # The agent retries with the same key: the stored outcome, nothing sent.
            api.start()
            await api.wait_healthy()
            replay = await client.post(
                url, headers=headers, json={"type": "text", "text": "¡Hola!"}
            )
        assert replay.status_code == 502, replay.text
        detail = replay.json()["detail"]
        assert replay.json()["error"] == "send_failed"
        assert detail["reason"].startswith("outcome unknown:")
        assert detail["message"]["status"] == "failed"
        assert d360.requests == 1
    finally:
        worker.stop()
        api.kill9()
        await d360.close()
        drop_tenant(tenant)
