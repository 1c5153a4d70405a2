"""The durable webhook inbox (webhook_events) and the ingestion RPCs, as the service role.

The three calls of the hot path (enqueue, claim, ingest) go through `rpc`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from service.repositories import rpc
from service.repositories.roles import ServiceClient
from service.whatsapp.vocabulary import DeliveryStatus, MessageType


class NewEvent(msgspec.Struct, frozen=True):
    channel_id: uuid.UUID
    workspace_id: uuid.UUID
    body: str


class ClaimedEvent(msgspec.Struct, frozen=True):
    id: int
    channel_id: uuid.UUID | None
    workspace_id: uuid.UUID
    phone_number_id: str | None
    body: str
    attempts: int


class EventSummary(msgspec.Struct, frozen=True):
    id: int
    status: str
    attempts: int
    received_at: datetime
    last_error: str | None
    phone_number_id: str | None = None


class InboundMessageRow(msgspec.Struct, frozen=True):
    """One inbound message, normalized, ready for the set-based insert.

    `phone` or `user_id` (or both) name the customer; the names are what the
    customer's WhatsApp profile said when they wrote.
    """

    workspace_id: uuid.UUID
    phone_number_id: str
    phone: str | None
    wamid: str
    type: MessageType
    content: dict[str, Any]
    timestamp: datetime
    media_mime_type: str | None = None
    media_filename: str | None = None
    user_id: str | None = None
    profile_name: str | None = None
    username: str | None = None


class StatusRow(msgspec.Struct, frozen=True):
    workspace_id: uuid.UUID
    wamid: str
    status: DeliveryStatus
    timestamp: datetime
    error_code: int | None = None
    error_message: str | None = None


class ReactionRow(msgspec.Struct, frozen=True):
    workspace_id: uuid.UUID
    target_wamid: str
    wamid: str
    # The customer's phone, or their user id when WhatsApp gave no phone.
    sender: str
    emoji: str | None
    timestamp: datetime


class IngestBatch(msgspec.Struct):
    event_ids: list[int] = msgspec.field(default_factory=list)
    messages: list[InboundMessageRow] = msgspec.field(default_factory=list)
    statuses: list[StatusRow] = msgspec.field(default_factory=list)
    reactions: list[ReactionRow] = msgspec.field(default_factory=list)
    # Messages of these events that could not be turned into rows (not sent).
    problems: list[str] = msgspec.field(default_factory=list)

    @property
    def rows(self) -> int:
        """What one ingest call is capped on (MAX_ROWS_PER_INGEST)."""
        return len(self.messages) + len(self.statuses) + len(self.reactions)

    def extend(self, other: IngestBatch) -> None:
        self.event_ids.extend(other.event_ids)
        self.messages.extend(other.messages)
        self.statuses.extend(other.statuses)
        self.reactions.extend(other.reactions)


class IngestResult(msgspec.Struct, frozen=True):
    messages: int
    statuses: int
    pending: int
    reactions: int


async def enqueue(db: ServiceClient, events: Sequence[NewEvent]) -> int:
    """Stores deliveries, skipping bodies already stored; returns how many were new."""
    return await rpc.call(db, "enqueue_webhook_events", {"p_events": events}, int)


async def claim(db: ServiceClient, *, limit: int, lease_seconds: int) -> list[ClaimedEvent]:
    args = {"p_limit": limit, "p_lease_seconds": lease_seconds}
    return await rpc.call(db, "claim_webhook_events", args, list[ClaimedEvent])


async def ingest(db: ServiceClient, batch: IngestBatch) -> IngestResult:
    """Writes a batch's rows and marks its events done, in one transaction."""
    args = {
        "p_event_ids": batch.event_ids,
        "p_messages": batch.messages,
        "p_statuses": batch.statuses,
        "p_reactions": batch.reactions,
    }
    return await rpc.call(db, "ingest_webhook_batch", args, IngestResult)


class Failure(msgspec.Struct, frozen=True):
    id: int
    error: str
    max_attempts: int


class FailedStatus(msgspec.Struct, frozen=True):
    id: int
    status: str


# fail_webhook_events' own cap (migration 015).
MAX_FAILURES_PER_CALL = 1000


async def fail_many(db: ServiceClient, failures: list[Failure]) -> dict[int, str]:
    """Schedules a retry with backoff, or dead-letters, each event (one round trip per
    1,000); each event's new status."""
    statuses: dict[int, str] = {}
    for start in range(0, len(failures), MAX_FAILURES_PER_CALL):
        chunk = failures[start : start + MAX_FAILURES_PER_CALL]
        rows = await rpc.call(db, "fail_webhook_events", {"p_failures": chunk}, list[FailedStatus])
        statuses.update((row.id, row.status) for row in rows)
    return statuses


async def prune(db: ServiceClient, *, older_than_hours: int) -> int:
    result = await db.rpc(
        "prune_webhook_events", {"p_older_than_hours": older_than_hours}
    ).execute()
    return msgspec.convert(result.data or 0, int)


async def list_events(
    db: ServiceClient, *, status: str | None, limit: int = 100
) -> list[EventSummary]:
    query = db.table("webhook_events").select("id,status,attempts,received_at,last_error")
    if status is not None:
        query = query.eq("status", status)
    result = await query.order("id", desc=True).limit(limit).execute()
    return msgspec.convert(result.data or [], list[EventSummary])


async def find_event(db: ServiceClient, event_id: int) -> EventSummary | None:
    result = (
        await db.table("webhook_events")
        .select("id,status,attempts,received_at,last_error")
        .eq("id", event_id)
        .execute()
    )
    rows = msgspec.convert(result.data or [], list[EventSummary])
    return rows[0] if rows else None


async def replay(db: ServiceClient, *, event_id: int | None) -> int:
    """Puts dead (or one given) events back in the queue with fresh attempts."""
    result = await db.rpc("replay_webhook_events", {"p_event_id": event_id}).execute()
    return msgspec.convert(result.data or 0, int)
