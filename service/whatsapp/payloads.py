"""Cloud API webhook payloads as 360dialog forwards them, and what we store from them.

Decoding is deliberately lenient below the envelope: unknown fields are ignored,
`type` stays a plain string and every per-type object is optional, so a message
type Meta adds tomorrow still decodes (and is stored as "unsupported") instead of
failing the whole batch. Numbers sent as strings are accepted (msgspec lax mode).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal, TypeVar

import msgspec

from service.whatsapp.domain import MediaContent, TextContent
from service.whatsapp.vocabulary import MessageType

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class InvalidPayload(ValueError):
    """The body is not JSON, or not a WhatsApp Business Account webhook."""


class _Struct(msgspec.Struct, omit_defaults=True):
    """Base: `to_builtins` leaves out absent (None/default) fields."""


# --- errors ---------------------------------------------------------------------------


class ErrorData(_Struct):
    details: str | None = None


class WhatsAppError(_Struct):
    """An error object in `statuses[].errors`, `messages[].errors` or `value.errors`."""

    code: int | None = None
    title: str | None = None
    message: str | None = None
    error_data: ErrorData | None = None
    href: str | None = None

    @property
    def details(self) -> str | None:
        return self.error_data.details if self.error_data else None


# --- envelope ---------------------------------------------------------------------------


class Metadata(_Struct):
    phone_number_id: str
    display_phone_number: str | None = None


class Profile(_Struct):
    name: str | None = None
    username: str | None = None


class WebhookContact(_Struct):
    profile: Profile | None = None
    # Omitted for username users since the 2026 BSUID rollout; `user_id` is then the key.
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    country_code: str | None = None
    identity_key_hash: str | None = None


# --- message parts ----------------------------------------------------------------------


class Text(_Struct):
    body: str = ""


class Media(_Struct):
    """image / video / audio / document / sticker: one shape, type-specific fields optional."""

    id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    voice: bool | None = None
    animated: bool | None = None
    # Newer Graph versions include a lookaside URL; it expires in minutes, so it is not stored.
    url: str | None = None


class Location(_Struct):
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None
    url: str | None = None


class ContactName(_Struct):
    formatted_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None
    prefix: str | None = None


class ContactPhone(_Struct):
    phone: str | None = None
    wa_id: str | None = None
    type: str | None = None


class ContactEmail(_Struct):
    email: str | None = None
    type: str | None = None


class ContactUrl(_Struct):
    url: str | None = None
    type: str | None = None


class ContactAddress(_Struct):
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    type: str | None = None


class ContactOrg(_Struct):
    company: str | None = None
    department: str | None = None
    title: str | None = None


class ContactCard(_Struct):
    name: ContactName | None = None
    phones: list[ContactPhone] | None = None
    emails: list[ContactEmail] | None = None
    urls: list[ContactUrl] | None = None
    addresses: list[ContactAddress] | None = None
    org: ContactOrg | None = None
    birthday: str | None = None


class ButtonReply(_Struct):
    id: str | None = None
    title: str | None = None


class ListReply(_Struct):
    id: str | None = None
    title: str | None = None
    description: str | None = None


class NfmReply(_Struct):
    """A WhatsApp Flow submission; `response_json` is a JSON document encoded as a string."""

    name: str | None = None
    body: str | None = None
    response_json: str | None = None


class Interactive(_Struct):
    type: str = ""
    button_reply: ButtonReply | None = None
    list_reply: ListReply | None = None
    nfm_reply: NfmReply | None = None


class Button(_Struct):
    """A template quick-reply button press."""

    payload: str | None = None
    text: str | None = None


class Reaction(_Struct):
    message_id: str
    # A removed reaction omits `emoji` (current) or sends "" (older payloads).
    emoji: str | None = None

    @property
    def removed(self) -> bool:
        return not self.emoji


class ProductItem(_Struct):
    product_retailer_id: str | None = None
    quantity: int | None = None
    item_price: float | None = None
    currency: str | None = None


class Order(_Struct):
    catalog_id: str | None = None
    text: str | None = None
    product_items: list[ProductItem] | None = None


class System(_Struct):
    body: str | None = None
    # "user_changed_number", "customer_identity_changed", ...
    type: str | None = None
    wa_id: str | None = None
    new_wa_id: str | None = None
    identity: str | None = None
    customer: str | None = None


class ReferredProduct(_Struct):
    catalog_id: str | None = None
    product_retailer_id: str | None = None


class Context(_Struct):
    """Quoted reply (`from`, `id`), forward flags, or product enquiry."""

    from_: str | None = msgspec.field(default=None, name="from")
    id: str | None = None
    forwarded: bool | None = None
    frequently_forwarded: bool | None = None
    referred_product: ReferredProduct | None = None


class Referral(_Struct):
    """Click-to-WhatsApp ad or post the conversation started from."""

    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None
    headline: str | None = None
    body: str | None = None
    media_type: str | None = None
    image_url: str | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    ctwa_clid: str | None = None


class IncomingMessage(_Struct):
    id: str
    # Phone digits; may be missing for BSUID-only (username) senders, see `from_user_id`.
    from_: str | None = msgspec.field(default=None, name="from")
    from_user_id: str | None = None
    timestamp: str | None = None
    type: str = "unknown"
    text: Text | None = None
    image: Media | None = None
    video: Media | None = None
    audio: Media | None = None
    document: Media | None = None
    sticker: Media | None = None
    location: Location | None = None
    contacts: list[ContactCard] | None = None
    interactive: Interactive | None = None
    button: Button | None = None
    reaction: Reaction | None = None
    order: Order | None = None
    system: System | None = None
    context: Context | None = None
    referral: Referral | None = None
    errors: list[WhatsAppError] | None = None

    def media(self) -> Media | None:
        """The media object matching `type`, if this is a media message."""
        match self.type:
            case "image":
                return self.image
            case "video":
                return self.video
            case "audio":
                return self.audio
            case "document":
                return self.document
            case "sticker":
                return self.sticker
        return None


# --- statuses ---------------------------------------------------------------------------


class ConversationOrigin(_Struct):
    type: str | None = None


class StatusConversation(_Struct):
    id: str | None = None
    expiration_timestamp: str | None = None
    origin: ConversationOrigin | None = None


class Pricing(_Struct):
    billable: bool | None = None
    pricing_model: str | None = None
    category: str | None = None
    type: str | None = None


class StatusUpdate(_Struct):
    """Delivery report for one of our outbound messages (`id` is its wamid)."""

    id: str
    status: str
    timestamp: str | None = None
    recipient_id: str | None = None
    recipient_user_id: str | None = None
    conversation: StatusConversation | None = None
    pricing: Pricing | None = None
    errors: list[WhatsAppError] | None = None
    biz_opaque_callback_data: str | None = None


class WebhookValue(_Struct):
    messaging_product: str | None = None
    metadata: Metadata | None = None
    contacts: list[WebhookContact] | None = None
    messages: list[IncomingMessage] | None = None
    statuses: list[StatusUpdate] | None = None
    # Out-of-band errors that concern no particular message (e.g. 130429).
    errors: list[WhatsAppError] | None = None


class WebhookChange(_Struct):
    field: str
    # Other `field`s (account_update, template status, ...) carry other shapes; their
    # keys are simply ignored, leaving an empty value.
    value: WebhookValue | None = None


class WebhookEntry(_Struct):
    # The WABA id: several phone numbers can share one; route by metadata.phone_number_id.
    id: str = ""
    changes: list[WebhookChange] = msgspec.field(default_factory=list)


class WebhookPayload(_Struct):
    object: Literal["whatsapp_business_account"]
    entry: list[WebhookEntry]


_DECODER = msgspec.json.Decoder(WebhookPayload, strict=False)


def decode_webhook(body: bytes | str) -> WebhookPayload:
    """Decode a webhook body; raises InvalidPayload for anything that is not one.

    A valid envelope with one malformed part (a field of an unexpected type) is not
    rejected: refusing it would make 360dialog redeliver the whole batch for days.
    The part is dropped instead, or, for a message that still has an id, kept as an
    "unsupported" message that says why.
    """
    try:
        return _decode(body)
    except RecursionError as exc:
        # msgspec checks the nesting depth (a C-level check, not a crash): a
        # body nested deeper than Python's recursion limit is no webhook.
        raise InvalidPayload("not a WhatsApp webhook: nested too deeply") from exc


def _decode(body: bytes | str) -> WebhookPayload:
    try:
        return _DECODER.decode(body)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as exc:
        raise InvalidPayload(f"not a WhatsApp webhook: {exc}") from exc
    # The typed decoder can fail on the shape before it reaches a syntax error
    # further on (b'0\x00'), so the untyped pass may still find the body is not JSON.
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidPayload(f"not a WhatsApp webhook: {exc}") from exc
    return _salvage(data)


class _Envelope(msgspec.Struct):
    object: Literal["whatsapp_business_account"]
    entry: list[dict[str, Any]]


def _salvage(data: object) -> WebhookPayload:
    try:
        envelope = msgspec.convert(data, _Envelope)
    except msgspec.ValidationError as exc:
        raise InvalidPayload(f"not a WhatsApp webhook: {exc}") from exc
    log.warning("webhook payload had malformed parts; decoded what was usable")
    return WebhookPayload(object=envelope.object, entry=[_salvage_entry(e) for e in envelope.entry])


def _salvage_entry(raw: dict[str, Any]) -> WebhookEntry:
    entry = _convert(raw, WebhookEntry)
    if entry is not None:
        return entry
    changes = raw.get("changes")
    salvaged = [_salvage_change(c) for c in changes] if isinstance(changes, list) else []
    entry_id = raw.get("id")
    return WebhookEntry(
        id=entry_id if isinstance(entry_id, str) else "",
        changes=[c for c in salvaged if c is not None],
    )


def _salvage_change(raw: object) -> WebhookChange | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("field"), str):
        return None
    change = _convert(raw, WebhookChange)
    if change is not None:
        return change
    value = raw.get("value")
    if not isinstance(value, dict):
        return WebhookChange(field=raw["field"])
    return WebhookChange(
        field=raw["field"],
        value=WebhookValue(
            messaging_product=_convert(value.get("messaging_product"), str),
            metadata=_convert(value.get("metadata"), Metadata),
            contacts=_convert_items(value.get("contacts"), WebhookContact),
            messages=_salvage_messages(value.get("messages")),
            statuses=_convert_items(value.get("statuses"), StatusUpdate),
            errors=_convert_items(value.get("errors"), WhatsAppError),
        ),
    )


def _salvage_messages(raw: object) -> list[IncomingMessage] | None:
    if not isinstance(raw, list):
        return None
    messages: list[IncomingMessage] = []
    for item in raw:
        try:
            messages.append(msgspec.convert(item, IncomingMessage, strict=False))
            continue
        except msgspec.ValidationError as exc:
            problem = str(exc)
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            continue  # nothing to dedupe or file it by
        original = item.get("type")
        sender, timestamp = item.get("from"), item.get("timestamp")
        messages.append(
            IncomingMessage(
                id=item["id"],
                from_=sender if isinstance(sender, str) else None,
                timestamp=timestamp if isinstance(timestamp, str) else None,
                type=MessageType.UNSUPPORTED,
                errors=[
                    WhatsAppError(
                        title="Undecodable message",
                        message=f"could not decode {original!r} message: {problem}"[:300],
                    )
                ],
            )
        )
    return messages


def _convert(raw: object, kind: type[_T]) -> _T | None:
    if raw is None:
        return None
    try:
        return msgspec.convert(raw, kind, strict=False)
    except msgspec.ValidationError:
        return None


def _convert_items(raw: object, kind: type[_T]) -> list[_T] | None:
    if not isinstance(raw, list):
        return None
    items = (_convert(item, kind) for item in raw)
    return [item for item in items if item is not None]


# --- what gets stored -------------------------------------------------------------------


def stored_message_type(incoming_type: str) -> MessageType:
    """The `messages.type` for an incoming `type`; anything unknown is "unsupported".

    Templates are outbound only: an inbound "template" would be a new, unknown kind.
    """
    stored = MessageType(incoming_type)
    return MessageType.UNSUPPORTED if stored is MessageType.TEMPLATE else stored


# The database's check on conversations.phone and contacts.phone (E.164: a
# country code never starts with 0; 7 to 15 digits). Checked here, before
# anything is written, so a bad number fails its own message and not the
# batch it travels in; the database keeps its check as the last line.
_E164_DIGITS = re.compile(r"[1-9][0-9]{6,14}")


def normalize_phone(wa_id: str) -> str:
    """E.164 for a wa_id: "+" and the digits exactly as WhatsApp sent them.

    No country rewriting (Brazil's 9th digit, Mexico's 521): replies come from the
    wa_id as given, so that is the identity.
    """
    digits = wa_id.removeprefix("+")
    if not (digits.isascii() and _E164_DIGITS.fullmatch(digits)):
        raise ValueError(f"not a WhatsApp phone number (E.164): {wa_id!r}")
    return f"+{digits}"


def message_content(msg: IncomingMessage) -> dict[str, object]:
    """The JSON stored in `messages.content` for an incoming message."""
    content = _type_content(msg)
    if msg.context is not None:
        content["context"] = _builtins(msg.context)
    if msg.referral is not None:
        content["referral"] = _builtins(msg.referral)
    if msg.errors:
        content["errors"] = [_error(e) for e in msg.errors]
    return content


def _type_content(msg: IncomingMessage) -> dict[str, object]:
    kind = stored_message_type(msg.type)
    if kind == "text" and msg.text is not None:
        return _builtins(TextContent(body=msg.text.body))
    media = msg.media()
    if media is not None:
        return _builtins(
            MediaContent(
                media_id=media.id,
                mime_type=media.mime_type,
                sha256=media.sha256,
                caption=media.caption,
                filename=media.filename,
                voice=media.voice,
                animated=media.animated,
            )
        )
    if kind == "location" and msg.location is not None:
        return _builtins(msg.location)
    if kind == "contacts" and msg.contacts is not None:
        return {"contacts": [_builtins(card) for card in msg.contacts]}
    if kind == "interactive" and msg.interactive is not None:
        return _interactive(msg.interactive)
    if kind == "button" and msg.button is not None:
        return _builtins(msg.button)
    if kind == "reaction" and msg.reaction is not None:
        return {"message_id": msg.reaction.message_id, "emoji": msg.reaction.emoji or None}
    if kind == "order" and msg.order is not None:
        return _builtins(msg.order)
    if kind == "system" and msg.system is not None:
        system = _builtins(msg.system)
        if "type" in system:
            system["kind"] = system.pop("type")
        return system
    # Unsupported, unknown, or a known type without its object: keep what the UI
    # needs to say what arrived; the errors (131051) are added by the caller.
    return {} if msg.type in ("unsupported", "unknown") else {"original_type": msg.type}


def _interactive(interactive: Interactive) -> dict[str, object]:
    reply: ButtonReply | ListReply | NfmReply | None
    match interactive.type:
        case "button_reply":
            reply = interactive.button_reply
        case "list_reply":
            reply = interactive.list_reply
        case "nfm_reply":
            reply = interactive.nfm_reply
        case _:
            reply = None
    content: dict[str, object] = {"kind": interactive.type}
    if reply is not None:
        content.update(_builtins(reply))
    return content


def _error(error: WhatsAppError) -> dict[str, object]:
    return _drop_none(
        {
            "code": error.code,
            "title": error.title,
            "message": error.message,
            "details": error.details,
            "href": error.href,
        }
    )


def _builtins(struct: msgspec.Struct) -> dict[str, Any]:
    result: dict[str, Any] = msgspec.to_builtins(struct)
    return result


def _drop_none(values: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in values.items() if v is not None}
