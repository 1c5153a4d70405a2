"""Request and response bodies of the agent API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

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


class SendMessageBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A free-form reply: `text` for text; `media_url` (public https URL) for media."""

    type: Annotated[
        Literal["text", "image", "video", "audio", "document"],
        Meta(description="What is sent: `text`, or a media type with `media_url`"),
    ]
    text: Annotated[
        Annotated[str, Meta(min_length=1, max_length=MAX_TEXT_LENGTH)] | None,
        Meta(description="The message text; required for `text`"),
    ] = None
    media_url: Annotated[
        Annotated[str, Meta(max_length=2048, pattern=r"^https://[^\s]+$")] | None,
        Meta(description="A public https URL of the file; required for media types"),
    ] = None
    caption: Annotated[
        Annotated[str, Meta(max_length=MAX_CAPTION_LENGTH)] | None,
        Meta(description="Text shown under an image, video or document"),
    ] = None
    filename: Annotated[
        Annotated[str, Meta(min_length=1, max_length=240)] | None,
        Meta(description="The file name the customer sees, for a document"),
    ] = None


class LinkContactBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    contact_id: Annotated[
        uuid.UUID | None,
        Meta(description="A contact of the conversation's workspace, or null to unlink"),
    ]
