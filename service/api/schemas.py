"""Request and response bodies of the agent API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from service.repositories.conversations import Conversation, ConversationDetailsRow
from service.repositories.messages import Message
from service.repositories.templates import StoredTemplate
from service.whatsapp.domain import WindowStatus, window_status
from service.whatsapp.templates import APPROVED, TemplateParameterCounts, needs

__all__ = [
    "ConversationListItem",
    "ConversationPage",
    "ConversationWithDetails",
    "LinkContactBody",
    "Message",
    "MessagePage",
    "TemplateList",
    "UsableTemplate",
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


class UsableTemplate(msgspec.Struct, frozen=True, kw_only=True):
    """An approved template this conversation's channel can send, and what it needs."""

    name: Annotated[str, Meta(description="Send it as `name` of a `template` reply")]
    language: Annotated[str, Meta(description="Send it as `language` of a `template` reply")]
    category: Annotated[
        str | None, Meta(description="Meta's category: `marketing`, `utility`, `authentication`")
    ]
    parameters: Annotated[
        TemplateParameterCounts,
        Meta(description="How many texts `parameters.header` and `parameters.body` must hold"),
    ]
    header: Annotated[str | None, Meta(description="The header text, placeholders as {{1}}")]
    body: Annotated[str | None, Meta(description="The body text, placeholders as {{1}}, {{2}}, …")]
    footer: Annotated[str | None, Meta(description="The footer text")]

    @classmethod
    def usable(cls, template: StoredTemplate) -> UsableTemplate | None:
        """None for a template that cannot be sent (not approved, or needs what replies lack)."""
        if template.status != APPROVED:
            return None
        needed = needs(template.components)
        if needed.unsupported is not None:
            return None
        return cls(
            name=template.name,
            language=template.language,
            category=template.category,
            parameters=needed.parameters,
            header=needed.header,
            body=needed.body,
            footer=needed.footer,
        )


class TemplateList(msgspec.Struct, frozen=True):
    items: Annotated[
        list[UsableTemplate], Meta(description="Approved templates of the channel, by name")
    ]


class LinkContactBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    contact_id: Annotated[
        uuid.UUID | None,
        Meta(description="A contact of the conversation's workspace, or null to unlink"),
    ]
