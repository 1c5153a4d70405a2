"""The worker against the real stack: every message and status stored exactly once."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from postgrest.types import CountMethod

from service import cli
from service.__main__ import main as _main  # noqa: F401 (the worker entry point must import)
from service.clients import Clients
from service.ingest.worker import Worker
from service.settings import Settings
from service.whatsapp.payloads import decode_webhook
from tests.support.corpus import CASES
from tests.support.inbox import (
    CHANNEL_A,
    CHANNEL_B,
    SECRET_A,
    SECRET_B,
    WORKSPACE_A,
    WORKSPACE_B,
    body_sha256,
    deliver,
    drain,
    fixture_bytes,
    fixture_json,
    valid_fixture_names,
)
from tests.support.payloads import (
    messages_payload,
    new_phone,
    new_wamid,
    reaction_message,
    status,
    statuses_payload,
    text_message,
    text_payload,
    unix,
)
from tests.support.rows import rows
from tests.support.stack import psql


def raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


async def conversation(clients: Clients, phone: str) -> dict[str, Any]:
    found = rows(
        await clients.service_db.table("conversations").select("*").eq("phone", phone).execute()
    )
    assert len(found) == 1, found
    return found[0]


async def message(clients: Clients, wamid: str) -> dict[str, Any]:
    found = rows(
        await clients.service_db.table("messages").select("*").eq("wamid", wamid).execute()
    )
    assert len(found) == 1, found
    return found[0]


async def outbound(clients: Clients, phone: str, *, wamid: str | None) -> str:
    """An outbound message as the send path leaves it; returns its wamid ("" for none yet)."""
    created = rows(
        await clients.service_db.table("conversations")
        .upsert(
            {"workspace_id": WORKSPACE_A, "phone": f"+{phone}", "phone_number_id": CHANNEL_A},
            on_conflict="workspace_id,phone",
        )
        .execute()
    )
    wamid = new_wamid("wamid.OUT") if wamid is None else wamid
    await (
        clients.service_db.table("messages")
        .insert(
            {
                "conversation_id": created[0]["id"],
                "wamid": wamid or None,
                "direction": "outbound",
                "type": "text",
                "content": {"body": "¡Hola!"},
                "status": "pending",
            }
        )
        .execute()
    )
    return wamid


# --- the corpus --------------------------------------------------------------------------


def secret_for(body: bytes) -> str:
    payload = decode_webhook(body)
    ids = {
        c.value.metadata.phone_number_id
        for e in payload.entry
        for c in e.changes
        if c.value is not None and c.value.metadata is not None
    }
    return SECRET_B if ids == {CHANNEL_B} else SECRET_A


def expected_wamids(body: bytes, channel: str) -> set[str]:
    """The oracle: every non-reaction message of the authenticated channel's entries."""
    payload = decode_webhook(body)
    return {
        m.id
        for e in payload.entry
        for c in e.changes
        if c.field == "messages" and c.value is not None and c.value.metadata is not None
        if c.value.metadata.phone_number_id == channel
        for m in c.value.messages or []
        if m.type != "reaction"
        and (m.from_ or m.from_user_id or any(x.wa_id or x.user_id for x in c.value.contacts or []))
    }


async def test_corpus_replays_into_exactly_the_expected_rows(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings, stack_env: dict[str, str]
) -> None:
    names = valid_fixture_names()
    expected: set[str] = set()
    for name in names:
        body = fixture_bytes(name)
        secret = secret_for(body)
        assert await deliver(api, body, secret=secret) == 200, name
        expected |= expected_wamids(body, CHANNEL_B if secret == SECRET_B else CHANNEL_A)
    # Every body delivered twice, as 360dialog does when an ACK is slow.
    for name in names:
        body = fixture_bytes(name)
        assert await deliver(api, body, secret=secret_for(body)) == 200

    await drain(clients, settings)

    stored = rows(
        await clients.service_db.table("messages")
        .select("wamid,type,content,direction")
        .in_("wamid", sorted(expected))
        .execute()
    )
    assert {m["wamid"] for m in stored} == expected
    assert len(stored) == len(expected)
    assert {m["direction"] for m in stored} == {"inbound"}

    # The database's preview of each type, from what was really stored.
    database_url = stack_env["DATABASE_URL"]
    for fixture, kind, content, preview in CASES:
        if kind == "reaction":
            continue  # not a message of its own; see the reaction tests
        (wamid,) = expected_wamids(fixture_bytes(f"{fixture}.json"), CHANNEL_A)
        got = psql(
            database_url,
            "select m.type || '|' || private.message_preview(m.type, m.content, w.locale) "
            "from public.messages m join public.workspaces w on w.id = m.workspace_id "
            f"where m.wamid = '{wamid}'",
        )
        assert got == f"{kind}|{preview}", fixture
        stored_content = (await message(clients, wamid))["content"]
        assert {k: stored_content.get(k) for k in content} == content, fixture

    # Only the corpus's events: the Data API returns at most 1,000 rows (db-max-rows).
    events = rows(
        await clients.service_db.table("webhook_events")
        .select("status,last_error,body")
        .in_("body_sha256", [body_sha256(fixture_bytes(n)) for n in names])
        .execute()
    )
    # Every delivery landed, the username-only sender's (bsuid_contact.json) too.
    assert len(events) == len(names)
    assert {e["status"] for e in events} == {"done"}


async def test_reply_context_forwarded_and_unsupported_are_kept(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    sender = new_phone()
    quoted = new_wamid("wamid.OUT")
    reply = text_message(sender, "sí, esa")
    reply["context"] = {"from": "15550000001", "id": quoted}
    unknown = {"from": sender, "id": new_wamid(), "timestamp": unix(), "type": "hologram"}
    unsupported: dict[str, Any] = {
        "from": sender,
        "id": new_wamid(),
        "timestamp": unix(),
        "type": "unsupported",
        "errors": [{"code": 131051, "title": "Message type unknown"}],
    }
    payload = messages_payload(CHANNEL_A, sender, [reply, unknown, unsupported])
    assert await deliver(api, raw(payload)) == 200
    await drain(clients, settings)

    assert (await message(clients, reply["id"]))["content"]["context"]["id"] == quoted
    kept = await message(clients, unknown["id"])
    assert (kept["type"], kept["content"]) == ("unsupported", {"original_type": "hologram"})
    placeholder = await message(clients, unsupported["id"])
    assert placeholder["type"] == "unsupported"
    assert placeholder["content"]["errors"][0]["code"] == 131051


async def test_one_unfileable_message_does_not_hold_back_the_rest_of_its_delivery(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    sender = new_phone()
    good = text_message(sender, "llega")
    nul = text_message(sender, "con\u0000nulo")
    odd_time = text_message(sender, "hora rara", timestamp="not-a-number")
    nameless = {"id": new_wamid(), "timestamp": unix(), "type": "text", "text": {"body": "¿?"}}
    payload = messages_payload(CHANNEL_A, sender, [good, nul, odd_time])
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"].append(nameless)
    value["contacts"] = []  # the nameless one has no wa_id anywhere
    assert await deliver(api, raw(payload)) == 200
    await drain(clients, settings)

    assert (await message(clients, good["id"]))["content"]["body"] == "llega"
    assert (await message(clients, nul["id"]))["content"]["body"] == "connulo"
    assert (await message(clients, odd_time["id"]))["content"]["body"] == "hora rara"
    event = rows(
        await clients.service_db.table("webhook_events")
        .select("status,last_error")
        .like("body", f"%{nameless['id']}%")
        .execute()
    )
    # Stored partly and kept for an operator, not retried for nothing.
    assert event[0]["status"] == "dead"
    assert "neither a phone number" in event[0]["last_error"]
    assert not rows(
        await clients.service_db.table("messages")
        .select("id")
        .eq("wamid", nameless["id"])
        .execute()
    )


async def test_unicode_survives_byte_for_byte(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    sender = new_phone()
    body = "👩‍👩‍👧‍👦 مرحبا שלום 🏳️‍🌈 " + "ñ" * 4000
    payload = text_payload(CHANNEL_A, sender, body)
    assert await deliver(api, raw(payload)) == 200
    await drain(clients, settings)

    stored = await message(clients, payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"])
    assert stored["content"]["body"] == body


# --- conversations ----------------------------------------------------------------------


async def test_first_message_creates_a_conversation_linked_to_the_contact(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    sender = new_phone()
    contact = rows(
        await clients.service_db.table("contacts")
        .insert({"workspace_id": WORKSPACE_A, "name": "Lucía", "phone": f"+{sender}"})
        .execute()
    )[0]
    sent_at = unix(-60)
    assert (
        await deliver(api, raw(text_payload(CHANNEL_A, sender, "Hola", timestamp=sent_at))) == 200
    )
    await drain(clients, settings)

    conv = await conversation(clients, f"+{sender}")
    assert conv["workspace_id"] == WORKSPACE_A
    assert conv["contact_id"] == contact["id"]
    assert conv["phone_number_id"] == CHANNEL_A
    assert conv["unread_count"] == 1
    assert conv["is_read"] is False
    assert conv["last_message_preview"] == "Hola"
    # WhatsApp's send time, as a true instant.
    assert datetime.fromisoformat(conv["last_customer_message_at"]) == datetime.fromtimestamp(
        int(sent_at), tz=UTC
    )


async def test_same_number_in_two_workspaces_is_two_conversations(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    sender = new_phone()
    assert await deliver(api, raw(text_payload(CHANNEL_A, sender, "a A"))) == 200
    assert await deliver(api, raw(text_payload(CHANNEL_B, sender, "a B")), secret=SECRET_B) == 200
    await drain(clients, settings)

    found = rows(
        await clients.service_db.table("conversations")
        .select("workspace_id")
        .eq("phone", f"+{sender}")
        .execute()
    )
    assert sorted(c["workspace_id"] for c in found) == [WORKSPACE_A, WORKSPACE_B]


async def test_fifty_concurrent_first_messages_make_one_conversation(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    sender = new_phone()
    bodies = [raw(text_payload(CHANNEL_A, sender, f"mensaje {i}")) for i in range(50)]

    codes = await asyncio.gather(*(deliver(api, body) for body in bodies))
    assert codes == [200] * 50
    # Three workers racing on small batches, so conversation creation races too.
    small = msgspec.structs.replace(settings, worker_batch_size=4)
    await asyncio.gather(*(Worker(clients.service_db, small).drain() for _ in range(3)))

    conv = await conversation(clients, f"+{sender}")
    assert conv["unread_count"] == 50
    count = (
        await clients.service_db.table("messages")
        .select("id", count=CountMethod.exact)
        .eq("conversation_id", conv["id"])
        .execute()
    ).count
    assert count == 50


async def test_late_older_message_does_not_move_the_conversation_back(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    sender = new_phone()
    assert (
        await deliver(api, raw(text_payload(CHANNEL_A, sender, "nuevo", timestamp=unix(-10))))
        == 200
    )
    await drain(clients, settings)
    assert (
        await deliver(api, raw(text_payload(CHANNEL_A, sender, "viejo", timestamp=unix(-600))))
        == 200
    )
    await drain(clients, settings)

    conv = await conversation(clients, f"+{sender}")
    assert conv["last_message_preview"] == "nuevo"
    assert conv["unread_count"] == 2


async def test_inbound_message_reopens_an_archived_conversation(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    sender = new_phone()
    assert await deliver(api, raw(text_payload(CHANNEL_A, sender, "uno"))) == 200
    await drain(clients, settings)
    await (
        clients.service_db.table("conversations")
        .update({"status": "archived", "is_read": True, "unread_count": 0})
        .eq("phone", f"+{sender}")
        .execute()
    )

    assert await deliver(api, raw(text_payload(CHANNEL_A, sender, "dos"))) == 200
    await drain(clients, settings)

    conv = await conversation(clients, f"+{sender}")
    assert (conv["status"], conv["is_read"], conv["unread_count"]) == ("active", False, 1)


# --- statuses ---------------------------------------------------------------------------


@pytest.mark.parametrize("order", list(itertools.permutations(["sent", "delivered", "read"])))
@pytest.mark.parametrize("together", [False, True], ids=["one-by-one", "one-batch"])
async def test_statuses_in_any_order_end_at_read(
    api: AsyncTestClient[Litestar],
    clients: Clients,
    settings: Settings,
    order: tuple[str, ...],
    together: bool,
) -> None:
    recipient = new_phone()
    wamid = await outbound(clients, recipient, wamid=None)
    items = [status(wamid, s, recipient) for s in order]
    if together:
        assert await deliver(api, raw(statuses_payload(CHANNEL_A, items))) == 200
        await drain(clients, settings)
    else:
        for item in items:
            assert await deliver(api, raw(statuses_payload(CHANNEL_A, [item]))) == 200
            await drain(clients, settings)

    assert (await message(clients, wamid))["status"] == "read"


async def test_failed_status_keeps_meta_error_and_is_final(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    recipient = new_phone()
    wamid = await outbound(clients, recipient, wamid=None)
    for item in (
        status(wamid, "sent", recipient),
        status(wamid, "failed", recipient, error_code=131047),
        status(wamid, "delivered", recipient),
    ):
        assert await deliver(api, raw(statuses_payload(CHANNEL_A, [item]))) == 200
        await drain(clients, settings)

    stored = await message(clients, wamid)
    assert stored["status"] == "failed"
    assert stored["error_code"] == 131047
    assert "Re-engagement" in stored["error_message"]


async def test_status_before_its_message_is_parked_then_applied(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    recipient = new_phone()
    wamid = new_wamid("wamid.OUT")
    other = await outbound(clients, recipient, wamid=None)
    payload = statuses_payload(
        CHANNEL_A, [status(wamid, "delivered", recipient), status(other, "sent", recipient)]
    )
    assert await deliver(api, raw(payload)) == 200
    await drain(clients, settings)

    # The known one is applied; the unknown one waits without blocking it.
    assert (await message(clients, other))["status"] == "sent"
    parked = rows(
        await clients.service_db.table("pending_message_updates")
        .select("kind")
        .eq("wamid", wamid)
        .execute()
    )
    assert parked == [{"kind": "status"}]

    # The send response arrives: the message gets its wamid, the status lands.
    await outbound(clients, recipient, wamid="")
    conv = await conversation(clients, f"+{recipient}")
    await (
        clients.service_db.table("messages")
        .update({"wamid": wamid})
        .eq("conversation_id", conv["id"])
        .is_("wamid", "null")
        .execute()
    )

    assert (await message(clients, wamid))["status"] == "delivered"
    assert not rows(
        await clients.service_db.table("pending_message_updates")
        .select("id")
        .eq("wamid", wamid)
        .execute()
    )


async def test_status_of_another_workspace_message_is_not_applied(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    recipient = new_phone()
    wamid = await outbound(clients, recipient, wamid=None)  # workspace A's message
    payload = statuses_payload(CHANNEL_B, [status(wamid, "read", recipient)])
    assert await deliver(api, raw(payload), secret=SECRET_B) == 200
    await drain(clients, settings)

    assert (await message(clients, wamid))["status"] == "pending"


# --- reactions --------------------------------------------------------------------------


async def test_reaction_is_recorded_on_its_message_and_removal_clears_it(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    sender = new_phone()
    original = text_payload(CHANNEL_A, sender, "¿Llegó?", timestamp=unix(-100))
    target = original["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert await deliver(api, raw(original)) == 200
    await drain(clients, settings)
    before = await message_count(clients, sender)

    react = reaction_message(sender, target, "👍", timestamp=unix(-50))
    assert await deliver(api, raw(messages_payload(CHANNEL_A, sender, [react]))) == 200
    await drain(clients, settings)
    stored = await message(clients, target)
    assert stored["reaction"]["emoji"] == "👍"
    assert stored["reaction"]["from"] == f"+{sender}"
    assert await message_count(clients, sender) == before  # not a message of its own

    # An older reaction arriving late changes nothing; a newer removal clears.
    late = reaction_message(sender, target, "😡", timestamp=unix(-80))
    removal = reaction_message(sender, target, None, timestamp=unix(-10))
    assert await deliver(api, raw(messages_payload(CHANNEL_A, sender, [late]))) == 200
    await drain(clients, settings)
    assert (await message(clients, target))["reaction"]["emoji"] == "👍"
    assert await deliver(api, raw(messages_payload(CHANNEL_A, sender, [removal]))) == 200
    await drain(clients, settings)
    assert (await message(clients, target))["reaction"] is None


async def test_reaction_to_a_message_not_seen_yet_waits_for_it(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    sender = new_phone()
    later = text_message(sender, "primero", timestamp=unix(-30))
    react = reaction_message(sender, later["id"], "❤️", timestamp=unix(-5))
    assert await deliver(api, raw(messages_payload(CHANNEL_A, sender, [react]))) == 200
    await drain(clients, settings)
    assert await deliver(api, raw(messages_payload(CHANNEL_A, sender, [later]))) == 200
    await drain(clients, settings)

    assert (await message(clients, later["id"]))["reaction"]["emoji"] == "❤️"


async def message_count(clients: Clients, sender: str) -> int:
    conv = await conversation(clients, f"+{sender}")
    result = (
        await clients.service_db.table("messages")
        .select("id", count=CountMethod.exact)
        .eq("conversation_id", conv["id"])
        .execute()
    )
    return result.count or 0


# --- failures: retries, dead letters, replay, crashes -----------------------------------


async def test_poison_event_is_retried_dead_lettered_and_replayable(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings, stack_env: dict[str, str]
) -> None:
    database_url = stack_env["DATABASE_URL"]
    poisoned, healthy = new_phone(), new_phone()
    poison = text_payload(CHANNEL_A, poisoned, "💥")
    poison_wamid = poison["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    # A processing bug, simulated: any insert of this wamid fails.
    psql(
        database_url,
        f"""
        create function public.test_poison() returns trigger language plpgsql
        set search_path = '' as $$ begin
            if new.wamid = '{poison_wamid}' then raise exception 'simulated bug'; end if;
            return new;
        end $$;
        create trigger test_poison before insert on public.messages
            for each row execute function public.test_poison();
        """,
    )
    try:
        assert await deliver(api, raw(poison)) == 200
        assert await deliver(api, raw(text_payload(CHANNEL_A, healthy, "detrás"))) == 200
        strict = msgspec.structs.replace(settings, worker_max_attempts=2)
        worker = Worker(clients.service_db, strict)

        first = await worker.drain()
        assert first.failed == 1
        # The event behind the poison was not held back.
        assert (await conversation(clients, f"+{healthy}"))["unread_count"] == 1
        event = rows(
            await clients.service_db.table("webhook_events")
            .select("id,status,attempts,next_attempt_at,last_error")
            .like("body", f"%{poison_wamid}%")
            .execute()
        )[0]
        assert event["status"] == "pending"  # retried later, with backoff
        assert event["next_attempt_at"] > event_time_now(database_url)
        assert "simulated bug" in event["last_error"]

        psql(
            database_url,
            f"update public.webhook_events set next_attempt_at = now() where id = {event['id']}",
        )
        second = await worker.drain()
        assert second.failed == 1

        out = io.StringIO()
        assert await run_cli(["events", "list", "--failed"], settings, out) == 0
        assert str(event["id"]) in out.getvalue()
        assert "simulated bug" in out.getvalue()
    finally:
        psql(
            database_url,
            "drop trigger test_poison on public.messages; drop function public.test_poison()",
        )

    # The fix is deployed; the operator replays.
    assert await run_cli(["events", "replay", str(event["id"])], settings, io.StringIO()) == 0
    await drain(clients, settings)
    assert (await message(clients, poison_wamid))["content"]["body"] == "💥"
    after = rows(
        await clients.service_db.table("webhook_events")
        .select("status")
        .eq("id", event["id"])
        .execute()
    )
    assert after == [{"status": "done"}]


def event_time_now(database_url: str) -> str:
    return psql(database_url, "select to_json(now())#>>'{}'")


async def run_cli(argv: list[str], settings: Settings, out: io.StringIO) -> int:
    return await cli.run(cli.build_parser().parse_args(argv), settings, out)


async def test_worker_killed_mid_batch_loses_and_doubles_nothing(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings, stack_env: dict[str, str]
) -> None:
    sender = new_phone()
    bodies = [raw(text_payload(CHANNEL_A, sender, f"n{i}")) for i in range(300)]
    for chunk in range(0, 300, 50):
        codes = await asyncio.gather(*(deliver(api, b) for b in bodies[chunk : chunk + 50]))
        assert codes == [200] * 50

    env = {
        **os.environ,
        **stack_env,
        "WORKER_BATCH_SIZE": "10",
        "WORKER_LEASE_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "worker", env=env
    )
    try:
        deadline = time.monotonic() + 30
        while await stored_for(clients, sender) < 50:
            assert worker.returncode is None, "worker exited"
            assert time.monotonic() < deadline, "worker made no progress"
            await asyncio.sleep(0.01)
    finally:
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
    assert await stored_for(clients, sender) < 300, "killed too late to prove anything"

    # A new worker takes over, including the batch whose lease the dead one held.
    deadline = time.monotonic() + 30
    while await stored_for(clients, sender) < 300:
        assert time.monotonic() < deadline
        await drain(clients, settings)
        await asyncio.sleep(0.05)

    conv = await conversation(clients, f"+{sender}")
    assert conv["unread_count"] == 300
    assert await stored_for(clients, sender) == 300


async def stored_for(clients: Clients, sender: str) -> int:
    found = rows(
        await clients.service_db.table("conversations")
        .select("id")
        .eq("phone", f"+{sender}")
        .execute()
    )
    if not found:
        return 0
    result = (
        await clients.service_db.table("messages")
        .select("id", count=CountMethod.exact)
        .eq("conversation_id", found[0]["id"])
        .execute()
    )
    return result.count or 0


async def test_cli_lists_events_without_leaking_bodies(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    secret_words = f"my address is {uuid.uuid4().hex}"
    delivered = [raw(text_payload(CHANNEL_A, new_phone(), secret_words)) for _ in range(2)]
    for body in delivered:
        assert await deliver(api, body) == 200
    ours = rows(
        await clients.service_db.table("webhook_events")
        .select("id")
        .like("body", f"%{secret_words}%")
        .execute()
    )
    assert len(ours) == 2

    out = io.StringIO()
    assert await run_cli(["events", "list", "--limit", "5"], settings, out) == 0
    listed = {line.split()[0] for line in out.getvalue().splitlines()}
    # Newest first: the two just stored are listed, by id, without their bodies.
    assert {str(row["id"]) for row in ours} <= listed
    assert secret_words not in out.getvalue()
    assert "whatsapp_business_account" not in out.getvalue()


def test_fixture_secrets_are_the_seeded_ones() -> None:
    assert (
        fixture_json("text.json")["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"]
        == CHANNEL_A
    )
    assert uuid.UUID(WORKSPACE_A)


@pytest.mark.usefixtures("quiet_inbox")
async def test_a_stopped_worker_still_ingests_the_batch_it_claimed_ahead(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings, stack_env: dict[str, str]
) -> None:
    await drain(clients, settings)
    sender = new_phone()
    for i in range(9):
        assert await deliver(api, raw(text_payload(CHANNEL_A, sender, f"n{i}"))) == 200
    stop = asyncio.Event()
    worker = Worker(clients.service_db, msgspec.structs.replace(settings, worker_batch_size=3))
    rounds: list[int] = []
    process = worker._process

    async def process_then_stop(events: list[Any]) -> Any:
        report = await process(events)
        rounds.append(len(events))
        stop.set()  # stop after the first batch; the second was claimed meanwhile
        return report

    worker._process = process_then_stop  # type: ignore[method-assign]
    await asyncio.wait_for(worker.run_forever(stop), timeout=30)

    assert rounds == [3, 3]
    assert await stored_for(clients, sender) == 6
    # Nothing is left leased by a worker that is gone: the rest is simply due.
    left = psql(
        stack_env["DATABASE_URL"],
        f"select count(*) filter (where locked_until > now()) || '/' || count(*) "
        f"from webhook_events where status = 'pending' and body like '%{sender}%'",
    )
    assert left == "0/3"


@pytest.mark.usefixtures("quiet_inbox")
async def test_deliveries_arriving_during_a_batch_do_not_wait_for_the_idle_poll(
    api: AsyncTestClient[Litestar], clients: Clients, settings: Settings
) -> None:
    await drain(clients, settings)
    first, second = new_phone(), new_phone()
    for i in range(3):
        assert await deliver(api, raw(text_payload(CHANNEL_A, first, f"a{i}"))) == 200
    # Idle polls this long would time the test out.
    patient = msgspec.structs.replace(settings, worker_batch_size=3, worker_idle_poll_seconds=60)
    worker = Worker(clients.service_db, patient)
    stop = asyncio.Event()
    ahead_returned = asyncio.Event()

    def second_claim_returned(sizes: list[int]) -> None:
        if len(sizes) == 2:  # the one made ahead, while the first batch is processed
            ahead_returned.set()

    claims = record_claims(worker, second_claim_returned)
    more_sent: list[bool] = []
    process = worker._process

    async def process_slowly(events: list[Any]) -> Any:
        if not more_sent:
            more_sent.append(True)
            # The claim made ahead has come back empty; only now do more arrive.
            await ahead_returned.wait()
            for i in range(3):
                assert await deliver(api, raw(text_payload(CHANNEL_A, second, f"b{i}"))) == 200
        report = await process(events)
        if await stored_for(clients, second) == 3:
            stop.set()
        return report

    worker._process = process_slowly  # type: ignore[method-assign]
    await asyncio.wait_for(worker.run_forever(stop), timeout=20)

    assert claims[:2] == [3, 0]
    assert await stored_for(clients, first) == 3
    assert await stored_for(clients, second) == 3


@pytest.mark.usefixtures("quiet_inbox")
async def test_an_idle_worker_polls_at_its_idle_interval(
    clients: Clients, settings: Settings
) -> None:
    await drain(clients, settings)
    idle = msgspec.structs.replace(settings, worker_idle_poll_seconds=0.2)
    worker = Worker(clients.service_db, idle)
    claims = record_claims(worker)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run_forever(stop))
    await asyncio.sleep(1.0)  # the span being measured, not a wait for readiness
    stop.set()
    await asyncio.wait_for(running, timeout=5)

    # About five polls in one second; a worker that never slept would make hundreds.
    assert 3 <= len(claims) <= 8
    assert set(claims) == {0}


def record_claims(
    worker: Worker, after: Callable[[list[int]], object] = lambda sizes: None
) -> list[int]:
    """The sizes of the worker's claims, in order; `after` sees them after each one."""
    sizes: list[int] = []
    claim = worker._claim

    async def recorded() -> list[Any]:
        events = await claim()
        sizes.append(len(events))
        after(sizes)
        return events

    worker._claim = recorded  # type: ignore[method-assign]
    return sizes


@pytest.fixture
def quiet_inbox(stack_env: dict[str, str]) -> Iterator[None]:
    """Earlier tests' pending events (in backoff, or leased) must not become due mid-test."""
    database_url = stack_env["DATABASE_URL"]
    moved = psql(
        database_url,
        "with moved as (update webhook_events set next_attempt_at = next_attempt_at "
        "+ interval '1 day' where status = 'pending' returning id) "
        "select coalesce(string_agg(id::text, ','), '') from moved",
    )
    try:
        yield
    finally:
        if moved:
            psql(
                database_url,
                "update webhook_events set next_attempt_at = next_attempt_at - interval '1 day' "
                f"where id in ({moved})",
            )
