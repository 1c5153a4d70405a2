"""The words a message is described with, once: its type, its delivery status, its direction.

The database checks the same values (`messages_type_check`,
`messages_status_check`, `messages_direction_check`);
tests/integration/test_vocabulary.py reads those checks from the catalog and
fails when the two disagree. A value WhatsApp adds tomorrow decodes to the
unknown member instead of failing: a type is stored as `unsupported`, a
status is ignored.
"""

from __future__ import annotations

import enum


class MessageType(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACTS = "contacts"
    TEMPLATE = "template"
    INTERACTIVE = "interactive"
    REACTION = "reaction"
    BUTTON = "button"
    ORDER = "order"
    SYSTEM = "system"
    # The unknown member: what WhatsApp itself calls a type it cannot show.
    UNSUPPORTED = "unsupported"

    @classmethod
    def _missing_(cls, value: object) -> MessageType:
        return cls.UNSUPPORTED


class DeliveryStatus(enum.StrEnum):
    """pending < sent < delivered < read; failed apart (private.message_status_advances)."""

    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    # The unknown member: a status WhatsApp may add; never stored.
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> DeliveryStatus:
        return cls.UNKNOWN


# What a status webhook may move a message to (WhatsApp never reports `pending`).
REPORTED_STATUSES = frozenset(
    {DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.FAILED}
)


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
