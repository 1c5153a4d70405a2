"""The Data API as a public API: what the database itself refuses or bounds.

Every call here goes through PostgREST (supabase-py or plain HTTP through the
gateway), as an agent's browser or a service-role script would make it.
"""

from __future__ import annotations

from service.clients import Clients
from tests.support.inbox import CHANNEL_A, WORKSPACE_A
from tests.support.payloads import new_phone, new_wamid
from tests.support.rows import rows


async def test_upsert_on_wamid_ignores_a_duplicate(clients: Clients) -> None:
    """The call supabase-py documents for idempotent inserts: no 42P10, one row."""
    conversation = rows(
        await clients.service_db.table("conversations")
        .insert(
            {"workspace_id": WORKSPACE_A, "phone": f"+{new_phone()}", "phone_number_id": CHANNEL_A}
        )
        .execute()
    )[0]
    row = {
        "conversation_id": conversation["id"],
        "wamid": new_wamid("wamid.UPSERT"),
        "direction": "inbound",
        "type": "text",
        "content": {"body": "first"},
        "status": "delivered",
    }
    first = (
        await clients.service_db.table("messages")
        .upsert(row, on_conflict="wamid", ignore_duplicates=True)
        .execute()
    )
    assert [r["wamid"] for r in rows(first)] == [row["wamid"]]

    again = (
        await clients.service_db.table("messages")
        .upsert({**row, "content": {"body": "second"}}, on_conflict="wamid", ignore_duplicates=True)
        .execute()
    )
    assert rows(again) == []

    stored = rows(
        await clients.service_db.table("messages")
        .select("content")
        .eq("wamid", row["wamid"])
        .execute()
    )
    assert stored == [{"content": {"body": "first"}}]
