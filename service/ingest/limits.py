"""What one webhook delivery and one ingest call may hold (docs/SECURITY.md).

Every cap is checked before the work it bounds: the webhook refuses a body
before any lookup, the worker splits or refuses before calling the database,
and the database refuses an ingest call over its cap before taking a lock.
"""

from __future__ import annotations

from service.whatsapp.payloads import WebhookPayload

# Real deliveries name one number; a body naming more is only there to make
# us look them all up.
MAX_CHANNELS_PER_DELIVERY = 10

# Messages (reactions included) + statuses of one delivery. Meta batches a few
# dozen at most; the cap leaves room for bursts and keeps one delivery far
# below what one ingest transaction may hold.
MAX_ITEMS_PER_DELIVERY = 1000

# Rows (messages + statuses + reactions) of one ingest call; the same figure
# is enforced by public.ingest_webhook_batch (migration 006).
MAX_ROWS_PER_INGEST = 3000


def phone_number_ids(payload: WebhookPayload) -> list[str]:
    """The distinct channels a delivery names, in order; at most one over the cap.

    The scan stops as soon as the cap is exceeded, so a body naming thousands
    of numbers costs no more than one naming eleven.
    """
    ids: dict[str, None] = {}
    for entry in payload.entry:
        for change in entry.changes:
            metadata = change.value.metadata if change.value else None
            if metadata is not None:
                ids[metadata.phone_number_id] = None
                if len(ids) > MAX_CHANNELS_PER_DELIVERY:
                    return list(ids)
    return list(ids)


def delivery_items(payload: WebhookPayload) -> int:
    """Messages (reactions included) and statuses of every entry of a delivery."""
    return sum(
        len(change.value.messages or ()) + len(change.value.statuses or ())
        for entry in payload.entry
        for change in entry.changes
        if change.value is not None
    )
