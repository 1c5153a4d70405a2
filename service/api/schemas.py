"""Request and response bodies of the agent API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from service.repositories.conversations import Conversation, ConversationDetailsRow
from service.repositories.messages import Message
from service.whatsapp.domain import MAX_CAPTION_LENGTH, MAX_TEXT_LENGTH, WindowStatus, window_status

__all__ = [
    "ConversationListItem",
    "ConversationPage",
    "ConversationWithDetails",
    "LinkContactBody",
    "Message",
    "MessagePage",
    "SendMessageBody",
]


class ConversationListItem(Conversation, frozen=True, kw_only=True):
    # The 24h customer service window: open, closing (< 2 h left) or closed.
    window: WindowStatus

    @classmethod
    def build(cls, row: Conversation, now: datetime) -> ConversationListItem:
        fields = msgspec.structs.asdict(row)
        return cls(**fields, window=window_status(row.last_customer_message_at, now))


class ConversationWithDetails(ConversationDetailsRow, frozen=True, kw_only=True):
    window: WindowStatus

    @classmethod
    def build(cls, row: ConversationDetailsRow, now: datetime) -> ConversationWithDetails:
        fields = msgspec.structs.asdict(row)
        return cls(**fields, window=window_status(row.last_customer_message_at, now))


class ConversationPage(msgspec.Struct, frozen=True):
    items: list[ConversationListItem]
    # Pass as `cursor` for the next page; null on the last page.
    next_cursor: str | None


class MessagePage(msgspec.Struct, frozen=True):
    # Newest first.
    items: list[Message]
    # Pass as `before` for older messages; null when there are none.
    next_cursor: str | None


class SendMessageBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A free-form reply: `text` for text; `media_url` (public https URL) for media."""

    type: Literal["text", "image", "video", "audio", "document"]
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT_LENGTH)] | None = None
    media_url: Annotated[str, msgspec.Meta(max_length=2048, pattern=r"^https://[^\s]+$")] | None = (
        None
    )
    caption: Annotated[str, msgspec.Meta(max_length=MAX_CAPTION_LENGTH)] | None = None
    filename: Annotated[str, msgspec.Meta(min_length=1, max_length=240)] | None = None


class LinkContactBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # A contact of the conversation's workspace, or null to unlink.
    contact_id: uuid.UUID | None
