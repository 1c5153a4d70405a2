"""Conversations, contacts and channels as the calling agent sees them (RLS decides).

Every function takes the agent's own PostgREST client (`Clients.user_db`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from postgrest import APIError

from service.repositories.roles import AgentDb

ConversationStatus = Literal["active", "archived"]


class Tag(msgspec.Struct, frozen=True):
    id: Annotated[uuid.UUID, Meta(description="The tag's id")]
    name: Annotated[str, Meta(description="The tag's name, as agents see it")]
    color: Annotated[str | None, Meta(description="A display color (for example `#22c55e`)")] = None


class ContactCard(msgspec.Struct, frozen=True):
    id: Annotated[uuid.UUID, Meta(description="The contact's id")]
    # A contact has a phone, a WhatsApp user id, or both.
    phone: Annotated[
        str | None, Meta(description="The contact's phone number, E.164 (`+57…`), if known")
    ] = None
    user_id: Annotated[
        str | None,
        Meta(description="The contact's WhatsApp business-scoped user id (BSUID), if known"),
    ] = None
    name: Annotated[str | None, Meta(description="The contact's name")] = None
    email: Annotated[str | None, Meta(description="The contact's email")] = None
    city: Annotated[str | None, Meta(description="The contact's city")] = None
    tags: Annotated[list[Tag], Meta(description="The contact's tags, by name")] = msgspec.field(
        default_factory=list
    )


class Conversation(msgspec.Struct, frozen=True, kw_only=True):
    id: Annotated[uuid.UUID, Meta(description="The conversation's id")]
    workspace_id: Annotated[uuid.UUID, Meta(description="The workspace it belongs to")]
    contact_id: Annotated[
        uuid.UUID | None, Meta(description="The linked contact's id; null when none is linked")
    ]
    contact: Annotated[
        ContactCard | None, Meta(description="The linked contact with its tags; null when none")
    ]
    # The customer's key: the phone when WhatsApp gave one, else the
    # business-scoped user id (BSUID) of a username user; never neither.
    phone: Annotated[
        str | None,
        Meta(
            description="The customer's WhatsApp number, E.164 (`+57…`); null for a "
            "username-only customer"
        ),
    ]
    user_id: Annotated[
        str | None,
        Meta(
            description="The customer's business-scoped user id (BSUID, e.g. `CO.1502…`), "
            "when WhatsApp gave one"
        ),
    ]
    profile_name: Annotated[
        str | None, Meta(description="The name the customer uses on WhatsApp (profile name)")
    ]
    username: Annotated[str | None, Meta(description="The customer's WhatsApp username, if any")]
    phone_number_id: Annotated[
        str, Meta(description="The business number (channel) the customer writes to")
    ]
    status: Annotated[
        ConversationStatus,
        Meta(description="`active`, or `archived` (a new inbound message makes it active again)"),
    ]
    is_read: Annotated[bool, Meta(description="Whether an agent has read the latest messages")]
    unread_count: Annotated[int, Meta(description="Inbound messages since it was last read")]
    last_message_preview: Annotated[
        str | None,
        Meta(
            description="The start of the latest message, for the list, in the workspace's locale"
        ),
    ]
    last_message_at: Annotated[
        datetime, Meta(description="When the latest message was sent (the list's order)")
    ]
    last_customer_message_at: Annotated[
        datetime | None,
        Meta(
            description="WhatsApp's time of the customer's last message: the 24-hour window "
            "starts here; null if the customer never wrote"
        ),
    ]
    assigned_to: Annotated[
        uuid.UUID | None, Meta(description="The agent (user id) it is assigned to, if any")
    ]
    created_at: Annotated[datetime, Meta(description="When the conversation was first stored")]


class ConversationDetailsRow(Conversation, frozen=True, kw_only=True):
    recent_orders_count: Annotated[
        int, Meta(description="The contact's orders of the last 30 days")
    ]


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
    db: AgentDb,
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


async def get(db: AgentDb, conversation_id: uuid.UUID) -> ConversationDetailsRow | None:
    result = await db.rpc("get_conversation", {"p_conversation_id": str(conversation_id)}).execute()
    rows = _rows(result.data)
    return msgspec.convert(rows[0], ConversationDetailsRow, strict=False) if rows else None


async def _update(db: AgentDb, conversation_id: uuid.UUID, values: dict[str, Any]) -> bool:
    result = await db.table("conversations").update(values).eq("id", str(conversation_id)).execute()
    return bool(result.data)


async def mark_read(db: AgentDb, conversation_id: uuid.UUID) -> bool:
    """Read, no unread messages; False when the agent cannot see the conversation."""
    return await _update(db, conversation_id, {"is_read": True, "unread_count": 0})


async def set_status(db: AgentDb, conversation_id: uuid.UUID, status: ConversationStatus) -> bool:
    """Archives or reopens; False when the agent cannot see the conversation."""
    return await _update(db, conversation_id, {"status": status})


async def link_contact(
    db: AgentDb, conversation_id: uuid.UUID, contact_id: uuid.UUID | None
) -> bool:
    """Links a contact (None unlinks); False when the agent cannot see the conversation.

    The caller checks the contact is in the conversation's workspace first
    (`contact_in_workspace`); the database refuses any other pair as well.
    """
    contact = str(contact_id) if contact_id is not None else None
    return await _update(db, conversation_id, {"contact_id": contact})


async def contact_in_workspace(db: AgentDb, contact_id: uuid.UUID, workspace_id: uuid.UUID) -> bool:
    result = (
        await db.table("contacts")
        .select("id")
        .eq("id", str(contact_id))
        .eq("workspace_id", str(workspace_id))
        .limit(1)
        .execute()
    )
    return bool(result.data)


async def channel(db: AgentDb, phone_number_id: str, workspace_id: uuid.UUID) -> ChannelInfo | None:
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
