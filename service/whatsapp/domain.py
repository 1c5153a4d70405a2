"""WhatsApp domain types shared by the API, the ingest worker and the 360dialog client."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

SendType = Literal["text", "image", "video", "audio", "document", "sticker"]

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
# Types whose send object has no caption field; Meta rejects the message otherwise.
_NO_CAPTION: frozenset[str] = frozenset({"audio", "sticker"})
_RECIPIENT = re.compile(r"\+?[0-9]{1,20}")
# A business-scoped user id (BSUID): country code, dot, up to 128 letters and
# digits; a parent BSUID has ENT between them. Same rule as private.is_user_id.
USER_ID = re.compile(r"[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}")

CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)
CLOSING_THRESHOLD = timedelta(hours=2)


class TextContent(msgspec.Struct, frozen=True, omit_defaults=True):
    """`messages.content` of a text message."""

    body: str
    preview_url: bool = False


class MediaContent(msgspec.Struct, frozen=True, omit_defaults=True):
    """`messages.content` of image/video/audio/document/sticker messages.

    Inbound media carry `media_id` (to fetch through 360dialog); outbound media
    sent by URL carry `link` instead.
    """

    media_id: str | None = None
    link: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    voice: bool | None = None
    animated: bool | None = None


class Send360MessageParams(msgspec.Struct, frozen=True, omit_defaults=True, kw_only=True):
    """One free-form message to send with `POST /messages`; invalid combinations raise ValueError.

    Exactly one recipient: `to`, the customer's wa_id (digits, as WhatsApp
    reported it; a leading + is dropped), or `recipient`, the business-scoped
    user id of a customer known only by username (the Cloud API field for user
    ids; when both are sent Meta uses `to`, so a phone is always sent as `to`).
    """

    type: SendType
    to: str | None = None
    recipient: str | None = None
    body: str | None = None
    preview_url: bool = False
    media_id: str | None = None
    link: str | None = None
    caption: str | None = None
    filename: str | None = None
    context_message_id: str | None = None

    def __post_init__(self) -> None:
        if (self.to is None) == (self.recipient is None):
            raise ValueError("give exactly one of to (phone) or recipient (user id)")
        if self.to is not None and not _RECIPIENT.fullmatch(self.to):
            raise ValueError("to must be the recipient's phone number (digits)")
        if self.recipient is not None and not USER_ID.fullmatch(self.recipient):
            raise ValueError("recipient must be a business-scoped user id (e.g. US.1349120865)")
        if self.context_message_id == "":
            raise ValueError("context_message_id must not be empty")
        if self.type == "text":
            self._check_text()
        else:
            self._check_media()

    def _check_text(self) -> None:
        if not self.body or not self.body.strip():
            raise ValueError("a text message needs a non-empty body")
        if len(self.body) > MAX_TEXT_LENGTH:
            raise ValueError(f"text body is longer than {MAX_TEXT_LENGTH} characters")
        if any(v is not None for v in (self.media_id, self.link, self.caption, self.filename)):
            raise ValueError("a text message takes no media fields")

    def _check_media(self) -> None:
        if self.body is not None or self.preview_url:
            raise ValueError("a media message takes no body/preview_url; use caption")
        if (self.media_id is None) == (self.link is None):
            raise ValueError("give exactly one of media_id or link")
        if self.media_id is not None and not self.media_id:
            raise ValueError("media_id must not be empty")
        if self.link is not None and not self.link.startswith(("https://", "http://")):
            raise ValueError("link must be an http(s) URL")
        if self.caption is not None:
            if self.type in _NO_CAPTION:
                raise ValueError(f"{self.type} messages cannot have a caption")
            if len(self.caption) > MAX_CAPTION_LENGTH:
                raise ValueError(f"caption is longer than {MAX_CAPTION_LENGTH} characters")
        if self.filename is not None and self.type != "document":
            raise ValueError("only documents can have a filename")

    def to_body(self) -> dict[str, object]:
        """The Cloud API JSON body."""
        message: dict[str, object] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
        }
        if self.to is not None:
            message["to"] = self.to.removeprefix("+")
        else:
            message["recipient"] = self.recipient
        message["type"] = self.type
        if self.context_message_id is not None:
            message["context"] = {"message_id": self.context_message_id}
        if self.type == "text":
            text: dict[str, object] = {"body": self.body}
            if self.preview_url:
                text["preview_url"] = True
            message["text"] = text
            return message
        media: dict[str, object] = (
            {"id": self.media_id} if self.media_id is not None else {"link": self.link}
        )
        if self.caption is not None:
            media["caption"] = self.caption
        if self.filename is not None:
            media["filename"] = self.filename
        message[self.type] = media
        return message


class SentContact(msgspec.Struct, frozen=True):
    input: str
    # Can differ from `input` (Brazil/Mexico): this is the id replies will come from.
    # Absent when the message was sent to a user id (`recipient`).
    wa_id: str | None = None
    user_id: str | None = None


class SentMessage(msgspec.Struct, frozen=True):
    id: str
    # "accepted", "held_for_quality_assessment", "paused"; absent on older responses.
    message_status: str | None = None


class Send360Response(msgspec.Struct, frozen=True):
    """A 200 from `POST /messages`: accepted for delivery, not delivered."""

    messaging_product: str = "whatsapp"
    contacts: list[SentContact] = msgspec.field(default_factory=list)
    messages: list[SentMessage] = msgspec.field(default_factory=list)

    @property
    def message_id(self) -> str:
        """The outbound wamid; D360Client guarantees there is one."""
        return self.messages[0].id


class WindowStatus(msgspec.Struct, frozen=True):
    """The 24h customer service window.

    `closes_at` is when free-form messages stop being allowed (in the past once
    closed); None when the customer never wrote.
    """

    state: Annotated[
        Literal["open", "closing", "closed"],
        Meta(description="`closing` when under 2 hours are left; free-form replies need open"),
    ]
    closes_at: Annotated[
        datetime | None,
        Meta(
            description="When free-form replies stop being allowed; "
            "null if the customer never wrote"
        ),
    ]


def window_status(last_inbound_at: datetime | None, now: datetime) -> WindowStatus:
    """Window state from the customer's last inbound message timestamp (WhatsApp's, not ours).

    Both datetimes must be timezone-aware.
    """
    if now.tzinfo is None or (last_inbound_at is not None and last_inbound_at.tzinfo is None):
        raise ValueError("window_status needs timezone-aware datetimes")
    if last_inbound_at is None:
        return WindowStatus(state="closed", closes_at=None)
    closes_at = last_inbound_at + CUSTOMER_SERVICE_WINDOW
    remaining = closes_at - now
    if remaining <= timedelta(0):
        return WindowStatus(state="closed", closes_at=closes_at)
    if remaining < CLOSING_THRESHOLD:
        return WindowStatus(state="closing", closes_at=closes_at)
    return WindowStatus(state="open", closes_at=closes_at)
