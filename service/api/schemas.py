"""Request and response bodies of the agent API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from service.repositories.conversations import Conversation, ConversationDetailsRow
from service.repositories.messages import Message
from service.whatsapp.domain import WindowStatus, window_status

__all__ = [
    "ConversationListItem",
    "ConversationPage",
    "ConversationWithDetails",
    "LinkContactBody",
    "Message",
    "MessagePage",
]


_WINDOW = Meta(description="The 24-hour customer service window: open, closing or closed")


class ConversationListItem(Conversation, frozen=True, kw_only=True):
    window: Annotated[WindowStatus, _WINDOW]

    @classmethod
    def build(cls, row: Conversation, now: datetime) -> ConversationListItem:
        fields = msgspec.structs.asdict(row)
        return cls(**fields, window=window_status(row.last_customer_message_at, now))


class ConversationWithDetails(ConversationDetailsRow, frozen=True, kw_only=True):
    window: Annotated[WindowStatus, _WINDOW]

    @classmethod
    def build(cls, row: ConversationDetailsRow, now: datetime) -> ConversationWithDetails:
        fields = msgspec.structs.asdict(row)
        return cls(**fields, window=window_status(row.last_customer_message_at, now))


class ConversationPage(msgspec.Struct, frozen=True):
    items: Annotated[
        list[ConversationListItem], Meta(description="This page, newest activity first")
    ]
    next_cursor: Annotated[
        str | None, Meta(description="Pass as `cursor` for the next page; null on the last page")
    ]


class MessagePage(msgspec.Struct, frozen=True):
    items: Annotated[list[Message], Meta(description="This page, newest first")]
    next_cursor: Annotated[
        str | None,
        Meta(description="Pass as `before` for older messages; null when there are none"),
    ]


class LinkContactBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    contact_id: Annotated[
        uuid.UUID | None,
        Meta(description="A contact of the conversation's workspace, or null to unlink"),
    ]
