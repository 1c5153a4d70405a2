"""WhatsApp domain types shared by the API, the ingest worker and the 360dialog client."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal, TypeAlias

import msgspec
from msgspec import Meta

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
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


# --- replies: one tagged union, validated once at the edge -------------------------------
#
# A reply is decoded from the agent's JSON straight into one of these kinds
# (`type` is the tag); every rule of a kind's shape lives on its struct (msgspec
# `Meta` for single fields, `__post_init__` for rules across fields), so the
# API, the stored content and the 360dialog body all see a value that already
# holds. What depends on the database (the window, a template's definition) is
# checked by service.api.replies; `cloud_message` is the one place that turns
# a reply into the Cloud API body.

ReplyText = Annotated[
    str, Meta(min_length=1, max_length=MAX_TEXT_LENGTH, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")
]
Caption = Annotated[str, Meta(max_length=MAX_CAPTION_LENGTH, pattern=r"^[^\x00]*$")]
MediaUrl = Annotated[str, Meta(max_length=2048, pattern=r"^https://[^\s\x00]+$")]
# 360dialog media ids are numeric; letters, digits, _ and - keep any id path-safe.
MediaId = Annotated[str, Meta(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_-]+$")]
FileName = Annotated[str, Meta(min_length=1, max_length=240, pattern=r"^[^\x00/\\]+$")]


class _Reply(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, tag_field="type"
):
    """What every kind of reply shares."""

    # Free-form kinds need the 24-hour customer service window; templates do not.
    needs_window: ClassVar[bool] = True


class TextReply(_Reply, frozen=True, tag="text"):
    text: Annotated[ReplyText, Meta(description="The message text (1-4096 characters)")]
    preview_url: Annotated[
        bool, Meta(description="Show a preview of the first link in the text")
    ] = False


class _MediaReply(_Reply, frozen=True):
    """A file sent by a public https URL (`media_url`) or an id 360dialog returned (`media_id`).

    The upload endpoint (issue 13 §3) fills `media_id`; exactly one of the two is given.
    """

    media_url: Annotated[MediaUrl | None, Meta(description="A public https URL of the file")] = None
    media_id: Annotated[
        MediaId | None, Meta(description="The id 360dialog returned for a file uploaded to it")
    ] = None

    def __post_init__(self) -> None:
        if (self.media_url is None) == (self.media_id is None):
            raise ValueError(f"{_tag(self)}: give exactly one of `media_url` or `media_id`")


_CAPTION_DOC = Meta(description="Text shown under the file")


class ImageReply(_MediaReply, frozen=True, tag="image"):
    caption: Annotated[Caption | None, _CAPTION_DOC] = None


class VideoReply(_MediaReply, frozen=True, tag="video"):
    caption: Annotated[Caption | None, _CAPTION_DOC] = None


class AudioReply(_MediaReply, frozen=True, tag="audio"):
    """Audio has no caption: Meta refuses one."""


class StickerReply(_MediaReply, frozen=True, tag="sticker"):
    """A webp sticker (uploaded from the agent's computer); no caption: Meta refuses one."""


class DocumentReply(_MediaReply, frozen=True, tag="document"):
    caption: Annotated[Caption | None, _CAPTION_DOC] = None
    filename: Annotated[FileName | None, Meta(description="The file name the customer sees")] = None


TemplateParameter = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=1024,
        pattern=r"^[^\x00]*[^\s\x00][^\x00]*$",
        description="The text for one {{n}} placeholder, in order",
    ),
]


class TemplateParameters(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True
):
    """The text for each placeholder of a template's components, in order ({{1}}, {{2}}, …)."""

    header: Annotated[
        list[TemplateParameter], Meta(max_length=1, description="The header's placeholder")
    ] = msgspec.field(default_factory=list)
    body: Annotated[
        list[TemplateParameter], Meta(max_length=100, description="The body's placeholders")
    ] = msgspec.field(default_factory=list)


class TemplateReply(_Reply, frozen=True, tag="template"):
    """An approved message template: the only kind that may go outside the window."""

    needs_window: ClassVar[bool] = False

    name: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=512,
            pattern=r"^[a-z0-9_]+$",
            description="The template's name, as listed for this conversation",
        ),
    ]
    language: Annotated[
        str,
        Meta(
            min_length=2,
            max_length=15,
            pattern=r"^[A-Za-z]{2,3}(_[A-Za-z0-9]{2,8})?$",
            description="The template's language code, such as `es` or `en_US`",
        ),
    ]
    parameters: Annotated[TemplateParameters, Meta(description="The text for each placeholder")] = (
        msgspec.field(default_factory=TemplateParameters)
    )


ButtonTitle = Annotated[
    str, Meta(min_length=1, max_length=20, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")
]
ChoiceId = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
InteractiveBody = Annotated[
    str, Meta(min_length=1, max_length=1024, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")
]
InteractiveLine = Annotated[
    str, Meta(min_length=1, max_length=60, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")
]


RowTitle = Annotated[str, Meta(min_length=1, max_length=24, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")]


class ReplyButton(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Annotated[ChoiceId, Meta(description="Comes back in the customer's button reply")]
    title: Annotated[ButtonTitle, Meta(description="The button's label (at most 20 characters)")]


class ListRow(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    id: Annotated[ChoiceId, Meta(description="Comes back in the customer's list reply")]
    title: Annotated[RowTitle, Meta(description="The row's label (at most 24 characters)")]
    description: Annotated[
        Annotated[str, Meta(max_length=72, pattern=r"^[^\x00]*$")] | None,
        Meta(description="A second line under the title (at most 72 characters)"),
    ] = None


class ListSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    rows: Annotated[
        list[ListRow], Meta(min_length=1, max_length=10, description="The section's choices")
    ]
    title: Annotated[
        RowTitle | None, Meta(description="The section's heading (needed with several sections)")
    ] = None


class _Interactive(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    kw_only=True,
    tag_field="type",
):
    body: Annotated[InteractiveBody, Meta(description="The message text")]
    header: Annotated[InteractiveLine | None, Meta(description="A text header")] = None
    footer: Annotated[InteractiveLine | None, Meta(description="A footer line")] = None


class ButtonsInteractive(_Interactive, frozen=True, tag="button"):
    """Reply buttons: 1 to 3."""

    buttons: Annotated[
        list[ReplyButton], Meta(min_length=1, max_length=3, description="1 to 3 reply buttons")
    ]

    def __post_init__(self) -> None:
        _distinct_ids(b.id for b in self.buttons)
        # The customer tells the buttons apart by their labels only.
        titles = [b.title.strip().casefold() for b in self.buttons]
        if len(set(titles)) != len(titles):
            raise ValueError("two `buttons` have the same title; each button needs its own")


class ListInteractive(_Interactive, frozen=True, tag="list"):
    """A list message: up to 10 rows in all, opened by a button."""

    button: Annotated[ButtonTitle, Meta(description="The label of the button opening the list")]
    sections: Annotated[
        list[ListSection],
        Meta(min_length=1, max_length=10, description="Sections of rows, 10 rows in all at most"),
    ]

    def __post_init__(self) -> None:
        rows = [row for section in self.sections for row in section.rows]
        if len(rows) > 10:
            raise ValueError("a list message has at most 10 rows in all its `sections`")
        if len(self.sections) > 1 and any(section.title is None for section in self.sections):
            raise ValueError("with several `sections`, every section needs a `title`")
        _distinct_ids(row.id for row in rows)


Interactive: TypeAlias = ButtonsInteractive | ListInteractive


class InteractiveReply(_Reply, frozen=True, tag="interactive"):
    """Buttons or a list, inside the window."""

    interactive: Annotated[Interactive, Meta(description="`button` or `list`")]


Reply: TypeAlias = (
    TextReply
    | ImageReply
    | VideoReply
    | AudioReply
    | DocumentReply
    | StickerReply
    | TemplateReply
    | InteractiveReply
)
REPLY_KINDS: tuple[type[_Reply], ...] = (
    TextReply,
    ImageReply,
    VideoReply,
    AudioReply,
    DocumentReply,
    StickerReply,
    TemplateReply,
    InteractiveReply,
)


def _tag(value: msgspec.Struct) -> str:
    tag = value.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


def parse_reply(value: object) -> Reply:
    """A reply from builtins (a decoded JSON object), with every rule of its kind checked.

    Building a struct directly skips `Meta` checks: code that makes a reply
    from parts goes through here. Raises msgspec.ValidationError (a ValueError).
    """
    reply: Reply = msgspec.convert(value, Reply)
    return reply


def reply_type(reply: Reply) -> str:
    """The kind, which is also `messages.type` of the stored reply."""
    return _tag(reply)


def _distinct_ids(ids: Iterable[str]) -> None:
    seen: set[str] = set()
    for value in ids:
        if value in seen:
            raise ValueError(f"the id {value!r} is used twice; each choice needs its own `id`")
        seen.add(value)


def reply_content(reply: Reply) -> dict[str, Any]:
    """What the request itself says, as stored in `messages.content`.

    Text and media keep the shapes the ingest stores (TextContent, MediaContent);
    a template's stored content adds the filled-in text (service.api.replies).
    """
    match reply:
        case TextReply():
            return (
                {"body": reply.text, "preview_url": True}
                if reply.preview_url
                else {"body": reply.text}
            )
        case ImageReply() | VideoReply() | AudioReply() | DocumentReply() | StickerReply():
            content = {"link": reply.media_url, "media_id": reply.media_id}
            content["caption"] = getattr(reply, "caption", None)
            content["filename"] = getattr(reply, "filename", None)
            return {k: v for k, v in content.items() if v is not None}
        case TemplateReply():
            built: dict[str, Any] = msgspec.to_builtins(reply)
            del built["type"]
            return built
        case InteractiveReply():
            # Flat, so the preview finds `body` as it does for every kind.
            flat: dict[str, Any] = msgspec.to_builtins(reply.interactive)
            return flat


class Recipient(msgspec.Struct, frozen=True, kw_only=True):
    """Exactly one of `to`, the customer's wa_id (digits, as WhatsApp reported it;
    a leading + is dropped), or `user_id`, the business-scoped user id of a
    customer known only by username (sent as the Cloud API's `recipient`; when
    both are sent Meta uses `to`, so a phone is always sent as `to`).
    """

    to: str | None = None
    user_id: str | None = None

    def __post_init__(self) -> None:
        if (self.to is None) == (self.user_id is None):
            raise ValueError("give exactly one of to (phone) or user_id")
        if self.to is not None and not _RECIPIENT.fullmatch(self.to):
            raise ValueError("to must be the recipient's phone number (digits)")
        if self.user_id is not None and not USER_ID.fullmatch(self.user_id):
            raise ValueError("user_id must be a business-scoped user id (e.g. US.1349120865)")


def cloud_message(
    recipient: Recipient, reply: Reply, *, context_message_id: str | None = None
) -> dict[str, object]:
    """The Cloud API JSON body of `POST /messages` for a reply: the only place it is built."""
    message: dict[str, object] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    if recipient.to is not None:
        message["to"] = recipient.to.removeprefix("+")
    else:
        message["recipient"] = recipient.user_id
    kind = reply_type(reply)
    message["type"] = kind
    if context_message_id:
        message["context"] = {"message_id": context_message_id}
    match reply:
        case TextReply():
            text: dict[str, object] = {"body": reply.text}
            if reply.preview_url:
                text["preview_url"] = True
            message["text"] = text
        case ImageReply() | VideoReply() | AudioReply() | DocumentReply() | StickerReply():
            media: dict[str, object] = (
                {"id": reply.media_id} if reply.media_id is not None else {"link": reply.media_url}
            )
            for key in ("caption", "filename"):
                value = getattr(reply, key, None)
                if value is not None:
                    media[key] = value
            message[kind] = media
        case TemplateReply():
            message["template"] = _template_object(reply)
        case InteractiveReply():
            message["interactive"] = _interactive_object(reply.interactive)
    return message


def _text_parameters(values: list[str]) -> list[dict[str, object]]:
    return [{"type": "text", "text": value} for value in values]


def _template_object(reply: TemplateReply) -> dict[str, object]:
    components: list[dict[str, object]] = []
    if reply.parameters.header:
        components.append(
            {"type": "header", "parameters": _text_parameters(reply.parameters.header)}
        )
    if reply.parameters.body:
        components.append({"type": "body", "parameters": _text_parameters(reply.parameters.body)})
    template: dict[str, object] = {"name": reply.name, "language": {"code": reply.language}}
    if components:
        template["components"] = components
    return template


def _interactive_object(interactive: Interactive) -> dict[str, object]:
    out: dict[str, object] = {"type": _tag(interactive), "body": {"text": interactive.body}}
    if interactive.header is not None:
        out["header"] = {"type": "text", "text": interactive.header}
    if interactive.footer is not None:
        out["footer"] = {"text": interactive.footer}
    match interactive:
        case ButtonsInteractive():
            out["action"] = {
                "buttons": [
                    {"type": "reply", "reply": {"id": b.id, "title": b.title}}
                    for b in interactive.buttons
                ]
            }
        case ListInteractive():
            out["action"] = {
                "button": interactive.button,
                "sections": msgspec.to_builtins(interactive.sections),
            }
    return out


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
