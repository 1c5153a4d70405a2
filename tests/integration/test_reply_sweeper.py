"""No reply stays pending forever: the worker's sweep, and a late sender racing it."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from service.clients import Clients
from service.ingest.worker import Worker
from service.repositories import inbox
from service.repositories.inbox import IngestBatch, StatusRow
from service.repositories.messages import NewOutbound
from service.repositories.send_ledger import SendLedger
from service.settings import Settings
from service.whatsapp.vocabulary import DeliveryStatus
from tests.support.inbox import AGENT_A, CHANNEL_A, WORKSPACE_A
from tests.support.payloads import new_phone, new_wamid
from tests.support.rows import rows
from tests.support.stack import psql

UNKNOWN = "outcome unknown:"


async def open_reply(clients: Clients) -> uuid.UUID:
    """A reply as the send path opens it (with its key) before calling 360dialog."""
    conversation = rows(
        await clients.service_db.table("conversations")
        .insert(
            {"workspace_id": WORKSPACE_A, "phone": f"+{new_phone()}", "phone_number_id": CHANNEL_A}
        )
        .execute()
    )[0]
    opened = await SendLedger(clients.service_db).open(
        NewOutbound(
            conversation_id=uuid.UUID(conversation["id"]),
            sent_by=uuid.UUID(AGENT_A),
            type="text",
            content={"body": "¿Sigue disponible?"},
            idempotency_key=f"key-{uuid.uuid4()}",
        )
    )
    return opened.id


def age(settings: Settings, *message_ids: uuid.UUID, minutes: int = 10) -> None:
    """As if the replies had been stored `minutes` ago (their sender long gone)."""
    ids = ", ".join(f"'{m}'" for m in message_ids)
    psql(
        settings.database_url,
        f"update messages set created_at = now() - interval '{minutes} minutes' "
        f"where id in ({ids})",
    )


async def stored(clients: Clients, message_id: uuid.UUID) -> dict[str, object]:
    query = clients.service_db.table("messages").select("status,wamid,error_code,error_message")
    return rows(await query.eq("id", str(message_id)).execute())[0]


def swept_mark(settings: Settings, message_id: uuid.UUID) -> str:
    return psql(
        settings.database_url,
        "select swept_at is not null from reply_idempotency_keys "
        f"where message_id = '{message_id}'",
    )


async def record_sent(clients: Clients, message_id: uuid.UUID, wamid: str) -> None:
    await SendLedger(clients.service_db).record(
        message_id, sent_by=uuid.UUID(AGENT_A), status="sent", at=datetime.now(UTC), wamid=wamid
    )


async def test_the_sweep_fails_only_replies_pending_past_the_timeout(
    clients: Clients, settings: Settings
) -> None:
    stale_id = await open_reply(clients)
    fresh = await open_reply(clients)
    recorded = await open_reply(clients)
    wamid = new_wamid("wamid.OUT")
    await record_sent(clients, recorded, wamid)
    age(settings, stale_id, recorded)

    swept = await Worker(clients.service_db, settings).sweep_replies()

    assert stale_id in swept
    assert fresh not in swept
    assert recorded not in swept
    failed = await stored(clients, stale_id)
    assert (failed["status"], failed["wamid"], failed["error_code"]) == ("failed", None, None)
    assert str(failed["error_message"]).startswith(UNKNOWN)
    assert "new Idempotency-Key" in str(failed["error_message"])
    assert (await stored(clients, fresh))["status"] == "pending"
    assert (await stored(clients, recorded))["status"] == "sent"
    # The view agrees: nothing pending is past the timeout any more.
    view = rows(await clients.service_db.table("ops_pending_replies").select("*").execute())[0]
    assert view["stale"] == 0
    assert view["outcome_unknown"] >= 1


async def test_a_late_sender_replaces_the_unknown_outcome_once(
    clients: Clients, settings: Settings
) -> None:
    """A sender frozen past the timeout still records what 360dialog answered."""
    sent_late, failed_late = await open_reply(clients), await open_reply(clients)
    age(settings, sent_late, failed_late)
    swept = await Worker(clients.service_db, settings).sweep_replies()
    assert {sent_late, failed_late} <= set(swept)

    # WhatsApp's status for the message arrived while it had no wamid: parked.
    wamid = new_wamid("wamid.LATE")
    status = StatusRow(
        workspace_id=uuid.UUID(WORKSPACE_A),
        wamid=wamid,
        status=DeliveryStatus.DELIVERED,
        timestamp=datetime.now(UTC),
    )
    await inbox.ingest(clients.service_db, IngestBatch(statuses=[status]))

    await record_sent(clients, sent_late, wamid)
    after = await stored(clients, sent_late)
    assert after == {
        "status": "delivered",
        "wamid": wamid,
        "error_code": None,
        "error_message": None,
    }
    assert swept_mark(settings, sent_late) == "f"

    ledger = SendLedger(clients.service_db)
    again = await ledger.record(
        sent_late,
        sent_by=uuid.UUID(AGENT_A),
        status="failed",
        at=datetime.now(UTC),
        error_code=131047,
        error_message="too late",
    )
    assert again is not None
    assert again.status == "delivered", "a known outcome is never rewritten"

    meta = await ledger.record(
        failed_late,
        sent_by=uuid.UUID(AGENT_A),
        status="failed",
        at=datetime.now(UTC),
        error_code=131047,
        error_message="Re-engagement message",
    )
    assert meta is not None
    assert (meta.status, meta.error_code, meta.error_message) == (
        "failed",
        131047,
        "Re-engagement message",
    )
    # Once known, the failure is final like any other.
    await record_sent(clients, failed_late, new_wamid("wamid.TOO_LATE"))
    assert (await stored(clients, failed_late))["wamid"] is None


async def test_a_sweep_racing_live_senders_never_loses_a_recorded_send(
    clients: Clients, settings: Settings
) -> None:
    replies = [await open_reply(clients) for _ in range(20)]
    age(settings, *replies)
    wamids = {m: new_wamid("wamid.RACE") for m in replies}
    worker = Worker(clients.service_db, settings)

    await asyncio.gather(
        worker.sweep_replies(),
        *(record_sent(clients, m, w) for m, w in wamids.items()),
        worker.sweep_replies(),
    )

    for message_id, wamid in wamids.items():
        after = await stored(clients, message_id)
        assert (after["status"], after["wamid"], after["error_message"]) == ("sent", wamid, None)
        assert swept_mark(settings, message_id) == "f"


async def test_the_running_worker_sweeps(clients: Clients, settings: Settings) -> None:
    reply = await open_reply(clients)
    age(settings, reply)
    stop = asyncio.Event()
    running = asyncio.create_task(Worker(clients.service_db, settings).run_forever(stop))
    try:
        deadline = time.monotonic() + 20
        while (await stored(clients, reply))["status"] == "pending":
            assert time.monotonic() < deadline, "the worker never swept the reply"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await running
    assert str((await stored(clients, reply))["error_message"]).startswith(UNKNOWN)


async def test_a_send_recorded_while_the_sweep_holds_the_reply_keeps_its_wamid(
    clients: Clients, settings: Settings
) -> None:
    """The sender records just as the sweep fails the reply: its wamid still wins.

    The sweep runs in a transaction held open, so the sender's record waits on
    the row; it must read the sweep's mark after the sweep commits, not before.
    """
    reply = await open_reply(clients)
    age(settings, reply)
    sweep = await asyncio.create_subprocess_exec(
        *("psql", settings.database_url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert sweep.stdin is not None
    assert sweep.stdout is not None
    try:
        sweep.stdin.write(
            b"begin;\n"
            b"select count(*) from public.sweep_pending_replies(60, 10000) s "
            + f"where s = '{reply}';\n".encode()
        )
        await sweep.stdin.drain()
        taken = await asyncio.wait_for(sweep.stdout.readline(), 20)
        assert taken.strip() == b"1", "the sweep did not take the reply"

        wamid = new_wamid("wamid.HELD")
        recording = asyncio.create_task(record_sent(clients, reply, wamid))
        deadline = time.monotonic() + 20
        # The only session that can wait on a lock here is the sender's.
        while psql(settings.database_url, "select count(*) from pg_locks where not granted") == "0":
            assert time.monotonic() < deadline, "the sender never waited on the sweep"
            await asyncio.sleep(0.05)
        sweep.stdin.write(b"commit;\n")
        sweep.stdin.close()
        assert await asyncio.wait_for(sweep.wait(), 20) == 0
        await recording
    finally:
        if sweep.returncode is None:
            sweep.kill()
            await sweep.wait()

    after = await stored(clients, reply)
    assert (after["status"], after["wamid"], after["error_message"]) == ("sent", wamid, None)
    assert swept_mark(settings, reply) == "f"
