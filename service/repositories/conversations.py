"""Conversations, contacts and channels as the calling agent sees them (RLS decides).

Every function takes the agent's own PostgREST client (`Clients.user_db`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec
from postgrest import APIError, AsyncPostgrestClient

ConversationStatus = Literal["active", "archived"]


class Tag(msgspec.Struct, frozen=True):
    id: uuid.UUID
    name: str
    color: str | None = None


class ContactCard(msgspec.Struct, frozen=True):
    id: uuid.UUID
    # A contact has a phone, a WhatsApp user id, or both.
    phone: str | None = None
    user_id: str | None = None
    name: str | None = None
    email: str | None = None
    city: str | None = None
    tags: list[Tag] = msgspec.field(default_factory=list)


class Conversation(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    workspace_id: uuid.UUID
    contact_id: uuid.UUID | None
    contact: ContactCard | None
    # The customer's key: the phone when WhatsApp gave one, else the
    # business-scoped user id (BSUID) of a username user; never neither.
    phone: str | None
    user_id: str | None
    # What the customer calls themselves on WhatsApp (contacts[].profile).
    profile_name: str | None
    username: str | None
    phone_number_id: str
    status: ConversationStatus
    is_read: bool
    unread_count: int
    last_message_preview: str | None
    last_message_at: datetime
    # WhatsApp's timestamp of the customer's last message: the 24h window's start.
    last_customer_message_at: datetime | None
    assigned_to: uuid.UUID | None
    created_at: datetime


class ConversationDetailsRow(Conversation, frozen=True, kw_only=True):
    recent_orders_count: int


class ChannelInfo(msgspec.Struct, frozen=True):
    """The channel's readable columns (never its secrets)."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    phone_number_id: str
    send_read_receipts: bool
    is_active: bool


class ConversationFilters(msgspec.Struct, frozen=True, kw_only=True):
    workspace_id: uuid.UUID | None = None
    search: str | None = None
    status: ConversationStatus | None = None
    is_read: bool | None = None
    assigned_to: uuid.UUID | None = None


class WorkspaceRequired(ValueError):
    """The agent belongs to several workspaces and named none."""


def _rows(data: Any) -> list[dict[str, Any]]:
    return list(data or [])


async def list_page(
    db: AsyncPostgrestClient,
    filters: ConversationFilters,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Conversation]:
    params: dict[str, Any] = {
        "p_workspace_id": str(filters.workspace_id) if filters.workspace_id else None,
        "p_search": filters.search,
        "p_status": filters.status,
        "p_is_read": filters.is_read,
        "p_assigned_to": str(filters.assigned_to) if filters.assigned_to else None,
        "p_limit": limit,
        "p_after_last_message_at": after[0].isoformat() if after else None,
        "p_after_id": str(after[1]) if after else None,
    }
    try:
        result = await db.rpc("list_conversations", params).execute()
    except APIError as exc:
        if exc.code == "22023" and "p_workspace_id is required" in (exc.message or ""):
            raise WorkspaceRequired(exc.message) from exc
        raise
    return msgspec.convert(_rows(result.data), list[Conversation], strict=False)


async def get(
    db: AsyncPostgrestClient, conversation_id: uuid.UUID
) -> ConversationDetailsRow | None:
    result = await db.rpc("get_conversation", {"p_conversation_id": str(conversation_id)}).execute()
    rows = _rows(result.data)
    return msgspec.convert(rows[0], ConversationDetailsRow, strict=False) if rows else None


async def update(
    db: AsyncPostgrestClient, conversation_id: uuid.UUID, values: dict[str, Any]
) -> bool:
    """Whether a visible conversation was updated."""
    result = await db.table("conversations").update(values).eq("id", str(conversation_id)).execute()
    return bool(result.data)


async def contact_in_workspace(
    db: AsyncPostgrestClient, contact_id: uuid.UUID, workspace_id: uuid.UUID
) -> bool:
    result = (
        await db.table("contacts")
        .select("id")
        .eq("id", str(contact_id))
        .eq("workspace_id", str(workspace_id))
        .limit(1)
        .execute()
    )
    return bool(result.data)


async def channel(
    db: AsyncPostgrestClient, phone_number_id: str, workspace_id: uuid.UUID
) -> ChannelInfo | None:
    """The conversation's channel, if the agent can see it in that workspace."""
    result = (
        await db.table("whatsapp_channels")
        .select("id,workspace_id,phone_number_id,send_read_receipts,is_active")
        .eq("phone_number_id", phone_number_id)
        .eq("workspace_id", str(workspace_id))
        .limit(1)
        .execute()
    )
    rows = _rows(result.data)
    return msgspec.convert(rows[0], ChannelInfo, strict=False) if rows else None
