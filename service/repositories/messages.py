"""Messages: the reads run as the calling agent (RLS decides); `open_reply`,
`by_idempotency_key`, `record_send` and `own_outbound` are used only through
the service-role `SendLedger`, since agents can neither insert nor update
messages nor read idempotency keys.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from postgrest import APIError

from service.repositories.roles import AgentDb, ServiceDb
from service.whatsapp.vocabulary import DeliveryStatus, Direction, MessageType

_COLUMNS = (
    "id,conversation_id,workspace_id,wamid,direction,type,content,status,status_timestamp,"
    "error_code,error_message,reaction,media_url,media_mime_type,media_filename,sent_by,"
    "timestamp,created_at"
)


class Message(msgspec.Struct, frozen=True, kw_only=True):
    id: Annotated[uuid.UUID, Meta(description="The message's id")]
    conversation_id: Annotated[uuid.UUID, Meta(description="The conversation it belongs to")]
    workspace_id: Annotated[uuid.UUID, Meta(description="The workspace it belongs to")]
    wamid: Annotated[
        str | None, Meta(description="WhatsApp's message id; null until 360dialog accepted a reply")
    ]
    direction: Annotated[
        Direction,
        Meta(description="`inbound` from the customer, `outbound` from the business"),
    ]
    type: Annotated[
        MessageType,
        Meta(
            description="WhatsApp's message type; `unsupported` for a kind this service cannot show"
        ),
    ]
    content: Annotated[
        dict[str, Any],
        Meta(description="The type's fields (`body` for text; `media_id`, `caption`, … for media)"),
    ]
    status: Annotated[
        DeliveryStatus,
        Meta(
            description="Delivery state: pending, sent, delivered, read, or failed; never back "
            "(`unknown` is reserved for a state a newer server may add)"
        ),
    ]
    status_timestamp: Annotated[
        datetime | None, Meta(description="WhatsApp's time of the current status")
    ]
    error_code: Annotated[int | None, Meta(description="Meta's error code when `failed`")]
    error_message: Annotated[str | None, Meta(description="Meta's error text when `failed`")]
    reaction: Annotated[
        dict[str, Any] | None,
        Meta(description="The customer's reaction to this message (`emoji`, `from`, `timestamp`)"),
    ]
    media_url: Annotated[
        str | None,
        Meta(description="A reply's media URL (https; never served by the media endpoint)"),
    ]
    media_mime_type: Annotated[str | None, Meta(description="The media's content type")]
    media_filename: Annotated[str | None, Meta(description="The document's file name")]
    sent_by: Annotated[
        uuid.UUID | None, Meta(description="The agent (user id) who sent an outbound message")
    ]
    timestamp: Annotated[datetime, Meta(description="WhatsApp's time for the message")]
    created_at: Annotated[datetime, Meta(description="When it was stored here")]
    in_reply_to_message_id: Annotated[
        uuid.UUID | None,
        Meta(
            description="The message this one answers (a tapped button or list row, a quoted "
            "reply: WhatsApp's `content.context.id`), when it is stored here; in message "
            "history only"
        ),
    ] = None


class NewOutbound(msgspec.Struct, frozen=True, kw_only=True):
    conversation_id: uuid.UUID
    sent_by: uuid.UUID
    type: str
    content: dict[str, Any]
    idempotency_key: str
    media_url: str | None = None
    media_filename: str | None = None


class IdempotencyKeyTaken(Exception):
    """The sender already used this Idempotency-Key in this conversation."""


class SenderNotMember(Exception):
    """The reply's sender is not a member of the conversation's workspace."""


def _rows(data: Any) -> list[dict[str, Any]]:
    return list(data or [])


def _one(data: Any) -> Message | None:
    rows = _rows(data)
    return msgspec.convert(rows[0], Message, strict=False) if rows else None


async def page(
    db: AgentDb,
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
    messages = msgspec.convert(_rows(result.data), list[Message], strict=False)
    return await _link_replies(db, conversation_id, messages)


# What a wamid looks like; anything else in a context is not looked up (and could
# not be quoted safely into the `in` filter).
_WAMID = re.compile(r"[A-Za-z0-9._=+/-]{1,200}")


def _answered_wamid(message: Message) -> str | None:
    context = message.content.get("context")
    wamid = context.get("id") if isinstance(context, dict) else None
    return wamid if isinstance(wamid, str) and _WAMID.fullmatch(wamid) else None


async def _link_replies(
    db: AgentDb, conversation_id: uuid.UUID, messages: list[Message]
) -> list[Message]:
    """Each message that answers another (its context) gets that message's id, in one query."""
    answered = {wamid for m in messages if (wamid := _answered_wamid(m)) is not None}
    if not answered:
        return messages
    result = await (
        db.table("messages")
        .select("id,wamid")
        .eq("conversation_id", str(conversation_id))
        .in_("wamid", sorted(answered))
        .execute()
    )
    ids = {row["wamid"]: uuid.UUID(row["id"]) for row in _rows(result.data)}
    linked = []
    for message in messages:
        target = ids.get(_answered_wamid(message) or "")
        linked.append(
            msgspec.structs.replace(message, in_reply_to_message_id=target) if target else message
        )
    return linked


async def get(db: AgentDb, message_id: uuid.UUID) -> Message | None:
    result = (
        await db.table("messages").select(_COLUMNS).eq("id", str(message_id)).limit(1).execute()
    )
    return _one(result.data)


async def by_idempotency_key(
    db: ServiceDb, conversation_id: uuid.UUID, sent_by: uuid.UUID, key: str
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


async def last_inbound_wamid(db: AgentDb, conversation_id: uuid.UUID) -> str | None:
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


async def open_reply(db: ServiceDb, new: NewOutbound) -> Message:
    """Stores the reply as `pending` with its key (service role).

    Raises IdempotencyKeyTaken when the sender already used the key in this
    conversation, SenderNotMember when the sender is not a member of its
    workspace.
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
    try:
        result = await db.rpc("open_reply", params).select(_COLUMNS).execute()
    except APIError as exc:
        if exc.code == "23505":
            raise IdempotencyKeyTaken(new.idempotency_key) from exc
        if exc.code == "42501":
            raise SenderNotMember(str(new.sent_by)) from exc
        raise
    opened = _one(result.data)
    assert opened is not None, "open_reply returned no row"
    return opened


async def own_outbound(db: ServiceDb, message_id: uuid.UUID, sent_by: uuid.UUID) -> Message | None:
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
    db: ServiceDb,
    message_id: uuid.UUID,
    *,
    sent_by: uuid.UUID,
    status: Literal["sent", "failed"],
    at: datetime,
    wamid: str | None = None,
    error_code: int | None = None,
    error_message: str | None = None,
) -> Message | None:
    """The sender's outcome from `pending`, or over the sweep's "outcome unknown" (service role).

    None when the message is not this sender's reply or its outcome is known.
    """
    params: dict[str, Any] = {
        "p_message_id": str(message_id),
        "p_sent_by": str(sent_by),
        "p_status": status,
        "p_at": at.isoformat(),
        "p_wamid": wamid,
        "p_error_code": error_code if status == "failed" else None,
        "p_error_message": error_message if status == "failed" else None,
    }
    result = await db.rpc("record_reply_outcome", params).select(_COLUMNS).execute()
    return _one(result.data)


async def sweep_pending_replies(
    db: ServiceDb, *, older_than_seconds: int, limit: int
) -> list[uuid.UUID]:
    """Fails replies pending longer than that as "outcome unknown"; their ids (service role)."""
    params: dict[str, Any] = {"p_older_than_seconds": older_than_seconds, "p_limit": limit}
    result = await db.rpc("sweep_pending_replies", params).execute()
    return [uuid.UUID(str(row)) for row in _rows(result.data)]
