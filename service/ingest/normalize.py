"""Turns one stored webhook delivery into rows for the set-based ingest."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from service.ingest.limits import MAX_ITEMS_PER_DELIVERY, delivery_items
from service.repositories.inbox import (
    ClaimedEvent,
    InboundMessageRow,
    IngestBatch,
    ReactionRow,
    StatusRow,
)
from service.whatsapp.domain import USER_ID
from service.whatsapp.payloads import (
    IncomingMessage,
    StatusUpdate,
    WebhookContact,
    WebhookValue,
    decode_webhook,
    message_content,
    normalize_phone,
    stored_message_type,
)
from service.whatsapp.vocabulary import REPORTED_STATUSES, DeliveryStatus

log = logging.getLogger(__name__)


# Longest profile name and username kept (the database's checks).
MAX_PROFILE_NAME = 200
MAX_USERNAME = 100


class Undeliverable(ValueError):
    """An event whose payload can never be ingested: retrying cannot help."""


class UnroutableMessage(Undeliverable):
    """A message that names neither a phone number nor a user id to file it under."""


@dataclass(frozen=True)
class Sender:
    """Who wrote a message: a phone, a business-scoped user id, or both; never neither."""

    phone: str | None
    user_id: str | None
    profile_name: str | None
    username: str | None

    @property
    def key(self) -> str:
        """How reactions name their sender: the phone when known, else the user id."""
        key = self.phone or self.user_id
        assert key is not None
        return key


class TooManyItems(Undeliverable):
    """A delivery over MAX_ITEMS_PER_DELIVERY (stored before the webhook refused such)."""


def instant(unix_seconds: str | int | None, fallback: datetime) -> datetime:
    """WhatsApp's send time; when it is missing or unreadable, when we received it."""
    try:
        return datetime.fromtimestamp(int(unix_seconds or ""), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return fallback


def normalize_event(event: ClaimedEvent, *, received_at: datetime | None = None) -> IngestBatch:
    """Every entry, change, message and status of the delivery.

    Raises only when the event as a whole cannot be read or is over the cap
    (Undeliverable when retrying cannot help); a message that cannot
    be filed is listed in `problems` and the rest of the delivery still lands.
    """
    now = received_at or datetime.now(tz=UTC)
    if not event.phone_number_id:
        # Its channel was deleted: nothing says which entries are whose any more.
        raise UnroutableMessage(f"event {event.id}: its channel no longer exists")
    payload = decode_webhook(event.body.encode())
    items = delivery_items(payload)
    if items > MAX_ITEMS_PER_DELIVERY:
        raise TooManyItems(
            f"event {event.id}: {items} messages and statuses, "
            f"over the cap of {MAX_ITEMS_PER_DELIVERY} per delivery; nothing of it was ingested"
        )
    batch = IngestBatch(event_ids=[event.id])
    for entry in payload.entry:
        for change in entry.changes:
            value = change.value
            if change.field != "messages" or value is None or value.metadata is None:
                continue
            if value.metadata.phone_number_id != event.phone_number_id:
                log.warning(
                    "event %s: ignoring entry for foreign phone_number_id %s",
                    event.id,
                    value.metadata.phone_number_id,
                )
                continue
            _messages(event, value, batch, now)
            _statuses(event, value.statuses or [], batch, now)
            for error in value.errors or []:
                log.warning(
                    "event %s: WhatsApp reported error %s: %s", event.id, error.code, error.title
                )
    return batch


def _contact(message: IncomingMessage, value: WebhookValue) -> WebhookContact | None:
    """The `contacts[]` entry of the message's sender."""
    contacts = value.contacts or []
    for contact in contacts:
        if (message.from_ and contact.wa_id == message.from_) or (
            message.from_user_id and contact.user_id == message.from_user_id
        ):
            return contact
    # One contact per value is the norm; with several, only an id match is trusted.
    return contacts[0] if len(contacts) == 1 else None


def _sender(message: IncomingMessage, value: WebhookValue) -> Sender:
    """The message's phone and user id (either may be missing since usernames, 2026)."""
    contact = _contact(message, value)
    wa_id = message.from_ or (contact.wa_id if contact else None)
    user_id = message.from_user_id or (contact.user_id if contact else None)
    # A malformed key is dropped when the other one still names the customer.
    problems: list[str] = []
    phone = None
    if wa_id:
        try:
            phone = normalize_phone(wa_id)
        except ValueError as exc:
            problems.append(str(exc))
    if user_id is not None and not USER_ID.fullmatch(user_id):
        problems.append(f"not a WhatsApp user id: {user_id!r}")
        user_id = None
    if phone is None and user_id is None:
        raise UnroutableMessage(
            f"message {message.id}: " + "; ".join(problems)
            if problems
            else f"message {message.id} carries neither a phone number (wa_id) nor a user id"
        )
    for problem in problems:
        log.warning("message %s: ignoring %s", message.id, problem)
    profile = contact.profile if contact else None
    return Sender(
        phone=phone,
        user_id=user_id,
        profile_name=_clip(profile.name if profile else None, MAX_PROFILE_NAME),
        username=_clip(profile.username if profile else None, MAX_USERNAME),
    )


def _clip(value: str | None, limit: int) -> str | None:
    value = (value or "").replace("\x00", "").strip()
    return value[:limit] or None


def _messages(event: ClaimedEvent, value: WebhookValue, batch: IngestBatch, now: datetime) -> None:
    assert value.metadata is not None
    for message in value.messages or []:
        try:
            sender = _sender(message, value)
        except UnroutableMessage as exc:
            # The rest of the delivery still lands; the event then stays
            # visible as failed for this one (see Worker).
            batch.problems.append(str(exc))
            continue
        sent_at = instant(message.timestamp, now)
        if message.type == "reaction" and message.reaction is not None:
            batch.reactions.append(
                ReactionRow(
                    workspace_id=event.workspace_id,
                    target_wamid=message.reaction.message_id,
                    wamid=message.id,
                    sender=sender.key,
                    emoji=message.reaction.emoji or None,
                    timestamp=sent_at,
                )
            )
            continue
        content = message_content(message)
        batch.messages.append(
            InboundMessageRow(
                workspace_id=event.workspace_id,
                phone_number_id=value.metadata.phone_number_id,
                phone=sender.phone,
                user_id=sender.user_id,
                profile_name=sender.profile_name,
                username=sender.username,
                wamid=message.id,
                type=stored_message_type(message.type),
                content=content,
                timestamp=sent_at,
                media_mime_type=_str_or_none(content.get("mime_type")),
                media_filename=_str_or_none(content.get("filename")),
            )
        )


def _statuses(
    event: ClaimedEvent, statuses: list[StatusUpdate], batch: IngestBatch, now: datetime
) -> None:
    for status in statuses:
        reported = DeliveryStatus(status.status)
        if reported not in REPORTED_STATUSES:
            log.info("event %s: ignoring status %r for %s", event.id, status.status, status.id)
            continue
        error = status.errors[0] if status.errors else None
        batch.statuses.append(
            StatusRow(
                workspace_id=event.workspace_id,
                wamid=status.id,
                status=reported,
                timestamp=instant(status.timestamp, now),
                error_code=error.code if error else None,
                error_message=_error_text(error) if error else None,
            )
        )


def _error_text(error: object) -> str | None:
    title = getattr(error, "title", None) or getattr(error, "message", None)
    data = getattr(error, "error_data", None)
    details = getattr(data, "details", None) if data is not None else None
    parts = [p for p in (title, details) if p]
    return ": ".join(parts) if parts else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
