"""SendLedger, and a status racing the send result that carries its wamid."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import msgspec
import pytest

from service.clients import Clients
from service.repositories import inbox
from service.repositories.inbox import IngestBatch, StatusRow
from service.repositories.messages import IdempotencyKeyTaken, NewOutbound, SenderNotMember
from service.repositories.send_ledger import SendLedger
from service.whatsapp.vocabulary import DeliveryStatus
from tests.support.inbox import AGENT_A, CHANNEL_A, WORKSPACE_A
from tests.support.payloads import new_phone, new_wamid
from tests.support.rows import rows

OWNER_A = "a0000000-0000-4000-8000-00000000000a"  # another member of workspace A


async def pending_reply(clients: Clients) -> str:
    """An agent's reply as the send path stores it before calling 360dialog."""
    conversation = rows(
        await clients.service_db.table("conversations")
        .insert(
            {"workspace_id": WORKSPACE_A, "phone": f"+{new_phone()}", "phone_number_id": CHANNEL_A}
        )
        .execute()
    )[0]
    message = rows(
        await clients.service_db.table("messages")
        .insert(
            {
                "conversation_id": conversation["id"],
                "direction": "outbound",
                "type": "text",
                "content": {"body": "¡Hola!"},
                "status": "pending",
                "sent_by": AGENT_A,
            }
        )
        .execute()
    )[0]
    return str(message["id"])


async def stored(clients: Clients, message_id: str) -> dict[str, object]:
    query = clients.service_db.table("messages").select("wamid,status,error_code")
    return rows(await query.eq("id", message_id).execute())[0]


async def test_the_ledger_only_moves_the_senders_own_pending_reply(clients: Clients) -> None:
    ledger = SendLedger(clients.service_db)
    message_id = await pending_reply(clients)
    now = datetime.now(tz=UTC)

    someone_else = await ledger.record(
        uuid.UUID(message_id), sent_by=uuid.UUID(OWNER_A), status="sent", at=now, wamid="w.x"
    )
    assert someone_else is None
    assert await stored(clients, message_id) == {
        "wamid": None,
        "status": "pending",
        "error_code": None,
    }

    wamid = new_wamid("wamid.OUT")
    sent = await ledger.record(
        uuid.UUID(message_id), sent_by=uuid.UUID(AGENT_A), status="sent", at=now, wamid=wamid
    )
    assert sent is not None
    assert (sent.status, sent.wamid) == ("sent", wamid)

    # Once out of pending, the outcome is never rewritten; what is stored comes back.
    again = await ledger.record(
        uuid.UUID(message_id),
        sent_by=uuid.UUID(AGENT_A),
        status="failed",
        at=now,
        error_code=131047,
        error_message="late",
    )
    assert again is not None
    assert (again.status, again.wamid, again.error_code) == ("sent", wamid, None)
    assert await stored(clients, message_id) == {
        "wamid": wamid,
        "status": "sent",
        "error_code": None,
    }


async def test_a_status_racing_the_send_result_is_never_left_parked(clients: Clients) -> None:
    """The worker parks a status for an unknown wamid while the ledger writes that wamid.

    Without the per-wamid lock, each transaction could miss the other's
    uncommitted row and the status would stay parked for good.
    """
    ledger = SendLedger(clients.service_db)
    rounds = []
    for _ in range(30):
        message_id = await pending_reply(clients)
        rounds.append((message_id, new_wamid("wamid.OUT")))

    async def deliver_status(wamid: str) -> None:
        status = StatusRow(
            workspace_id=uuid.UUID(WORKSPACE_A),
            wamid=wamid,
            status=DeliveryStatus.DELIVERED,
            timestamp=datetime.now(tz=UTC),
        )
        await inbox.ingest(clients.service_db, IngestBatch(statuses=[status]))

    async def record_sent(message_id: str, wamid: str) -> None:
        await ledger.record(
            uuid.UUID(message_id),
            sent_by=uuid.UUID(AGENT_A),
            status="sent",
            at=datetime.now(tz=UTC),
            wamid=wamid,
        )

    await asyncio.gather(
        *(deliver_status(w) for _, w in rounds), *(record_sent(m, w) for m, w in rounds)
    )

    wamids = [w for _, w in rounds]
    parked = rows(
        await clients.service_db.table("pending_message_updates")
        .select("wamid")
        .in_("wamid", wamids)
        .execute()
    )
    assert parked == []
    statuses = rows(
        await clients.service_db.table("messages").select("status").in_("wamid", wamids).execute()
    )
    assert [s["status"] for s in statuses] == ["delivered"] * 30


async def test_opening_a_reply_raises_typed_errors(clients: Clients) -> None:
    """The handler sees what went wrong by type, never by a PostgREST code."""
    conversation = rows(
        await clients.service_db.table("conversations")
        .insert(
            {"workspace_id": WORKSPACE_A, "phone": f"+{new_phone()}", "phone_number_id": CHANNEL_A}
        )
        .execute()
    )[0]
    ledger = SendLedger(clients.service_db)
    new = NewOutbound(
        conversation_id=uuid.UUID(conversation["id"]),
        sent_by=uuid.UUID(AGENT_A),
        type="text",
        content={"body": "Hola"},
        idempotency_key="same-key",
    )
    await ledger.open(new)
    with pytest.raises(IdempotencyKeyTaken):
        await ledger.open(new)
    stranger = msgspec.structs.replace(
        new, sent_by=uuid.UUID("b0000000-0000-4000-8000-0000000000b1"), idempotency_key="other"
    )
    with pytest.raises(SenderNotMember):
        await ledger.open(stranger)
