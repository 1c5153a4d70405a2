"""Messages: the reads run as the calling agent (RLS decides); `open_reply`,
`by_idempotency_key`, `record_send` and `own_outbound` are used only through
the service-role `SendLedger`, since agents can neither insert nor update
messages nor read idempotency keys.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec
from postgrest import AsyncPostgrestClient

MessageStatus = Literal["pending", "sent", "delivered", "read", "failed"]

_COLUMNS = (
    "id,conversation_id,workspace_id,wamid,direction,type,content,status,status_timestamp,"
    "error_code,error_message,reaction,media_url,media_mime_type,media_filename,sent_by,"
    "timestamp,created_at"
)


class Message(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    conversation_id: uuid.UUID
    workspace_id: uuid.UUID
    wamid: str | None
    direction: Literal["inbound", "outbound"]
    type: str
    content: dict[str, Any]
    status: MessageStatus
    status_timestamp: datetime | None
    error_code: int | None
    error_message: str | None
    # The customer's reaction to this message ({emoji, from, timestamp}).
    reaction: dict[str, Any] | None
    media_url: str | None
    media_mime_type: str | None
    media_filename: str | None
    sent_by: uuid.UUID | None
    # WhatsApp's time for the message; created_at is when it was stored.
    timestamp: datetime
    created_at: datetime


class NewOutbound(msgspec.Struct, frozen=True, kw_only=True):
    conversation_id: uuid.UUID
    sent_by: uuid.UUID
    type: str
    content: dict[str, Any]
    idempotency_key: str
    media_url: str | None = None
    media_filename: str | None = None


def _rows(data: Any) -> list[dict[str, Any]]:
    return list(data or [])


def _one(data: Any) -> Message | None:
    rows = _rows(data)
    return msgspec.convert(rows[0], Message, strict=False) if rows else None


async def page(
    db: AsyncPostgrestClient,
    conversation_id: uuid.UUID,
    *,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None,
) -> list[Message]:
    params: dict[str, Any] = {
        "p_conversation_id": str(conversation_id),
        "p_limit": limit,
        "p_before_timestamp": before[0].isoformat() if before else None,
        "p_before_id": str(before[1]) if before else None,
    }
    result = await db.rpc("list_messages", params).select(_COLUMNS).execute()
    return msgspec.convert(_rows(result.data), list[Message], strict=False)


async def get(db: AsyncPostgrestClient, message_id: uuid.UUID) -> Message | None:
    result = (
        await db.table("messages").select(_COLUMNS).eq("id", str(message_id)).limit(1).execute()
    )
    return _one(result.data)


async def by_idempotency_key(
    db: AsyncPostgrestClient, conversation_id: uuid.UUID, sent_by: uuid.UUID, key: str
) -> Message | None:
    """The reply this sender stored with this key in this conversation (service role)."""
    result = (
        await db.table("reply_idempotency_keys")
        .select(f"messages({_COLUMNS})")
        .eq("conversation_id", str(conversation_id))
        .eq("sent_by", str(sent_by))
        .eq("key", key)
        .limit(1)
        .execute()
    )
    rows = _rows(result.data)
    return msgspec.convert(rows[0]["messages"], Message, strict=False) if rows else None


async def last_inbound_wamid(db: AsyncPostgrestClient, conversation_id: uuid.UUID) -> str | None:
    result = (
        await db.table("messages")
        .select("wamid")
        .eq("conversation_id", str(conversation_id))
        .eq("direction", "inbound")
        .not_.is_("wamid", "null")
        .order("timestamp", desc=True)
        .order("id", desc=True)
        .limit(1)
        .execute()
    )
    rows = _rows(result.data)
    wamid = rows[0]["wamid"] if rows else None
    return wamid if isinstance(wamid, str) else None


async def open_reply(db: AsyncPostgrestClient, new: NewOutbound) -> Message:
    """Stores the reply as `pending` with its key (service role).

    Raises postgrest.APIError 23505 when the sender already used the key in
    this conversation, 42501 when the sender is not a member of its workspace.
    """
    params: dict[str, Any] = {
        "p_conversation_id": str(new.conversation_id),
        "p_sent_by": str(new.sent_by),
        "p_type": new.type,
        "p_content": new.content,
        "p_media_url": new.media_url,
        "p_media_filename": new.media_filename,
        "p_idempotency_key": new.idempotency_key,
    }
    result = await db.rpc("open_reply", params).select(_COLUMNS).execute()
    opened = _one(result.data)
    assert opened is not None, "open_reply returned no row"
    return opened


async def own_outbound(
    db: AsyncPostgrestClient, message_id: uuid.UUID, sent_by: uuid.UUID
) -> Message | None:
    result = await (
        db.table("messages")
        .select(_COLUMNS)
        .eq("id", str(message_id))
        .eq("sent_by", str(sent_by))
        .eq("direction", "outbound")
        .execute()
    )
    return _one(result.data)


async def record_send(
    db: AsyncPostgrestClient,
    message_id: uuid.UUID,
    *,
    sent_by: uuid.UUID,
    status: Literal["sent", "failed"],
    at: datetime,
    wamid: str | None = None,
    error_code: int | None = None,
    error_message: str | None = None,
) -> Message | None:
    values: dict[str, Any] = {"status": status, "status_timestamp": at.isoformat()}
    if wamid is not None:
        values["wamid"] = wamid
    if status == "failed":
        values["error_code"] = error_code
        values["error_message"] = error_message
    result = await (
        db.table("messages")
        .update(values)
        .eq("id", str(message_id))
        .eq("sent_by", str(sent_by))
        .eq("direction", "outbound")
        .eq("status", "pending")
        .execute()
    )
    return _one(result.data)
