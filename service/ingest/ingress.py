"""The webhook's decision: authenticate, store durably, or refuse."""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence

from service.cache import ChannelCache, LookupsExhausted
from service.ingest.batcher import BatchWriter
from service.ingest.channels import authenticate
from service.ingest.limits import (
    MAX_CHANNELS_PER_DELIVERY,
    MAX_ITEMS_PER_DELIVERY,
    delivery_items,
    phone_number_ids,
)
from service.repositories import inbox as inbox_repo
from service.repositories.inbox import NewEvent
from service.repositories.roles import ServiceClient
from service.whatsapp.payloads import InvalidPayload, decode_webhook

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    STORED = "stored"
    INVALID = "invalid"
    UNAUTHORIZED = "unauthorized"
    TOO_MANY_ITEMS = "too_many_items"
    UNAVAILABLE = "unavailable"


class WebhookIngress:
    def __init__(self, db: ServiceClient, directory: ChannelCache, window_seconds: float) -> None:
        self._db = db
        self._directory = directory
        self._writer: BatchWriter[NewEvent] = BatchWriter(
            self._store, window_seconds=window_seconds
        )

    def start(self) -> None:
        self._writer.start()

    async def stop(self) -> None:
        await self._writer.stop()

    async def _store(self, events: Sequence[NewEvent]) -> None:
        await inbox_repo.enqueue(self._db, events)

    async def accept(self, body: bytes, *, secret: str | None, signature: str | None) -> Outcome:
        # Before any work on the body (docs/SECURITY.md): a request with no
        # credential, or with a 360dialog secret no channel holds, can
        # authenticate nothing. Only a Meta signature needs the body (and the
        # channel it names) to be checked.
        if not signature:
            if not secret:
                return Outcome.UNAUTHORIZED
            try:
                held = await self._directory.secret_is_held(secret)
            except LookupsExhausted:  # a flood of made-up secrets: not worth a log line each
                return Outcome.UNAVAILABLE
            except Exception as exc:  # database unreachable: the sender must retry
                log.warning("channel lookup failed: %s", type(exc).__name__)
                return Outcome.UNAVAILABLE
            if not held:
                return Outcome.UNAUTHORIZED
        try:
            payload = decode_webhook(body)
            text = body.decode("utf-8")
        except (InvalidPayload, UnicodeDecodeError):
            return Outcome.INVALID
        ids = phone_number_ids(payload)
        if len(ids) > MAX_CHANNELS_PER_DELIVERY:
            return Outcome.INVALID
        try:
            if ids:
                candidates = await self._directory.lookup(ids)
            else:
                candidates = await self._directory.lookup_by_secret(secret)
        except Exception as exc:  # database unreachable: the sender must retry
            log.warning("channel lookup failed: %s", type(exc).__name__)
            return Outcome.UNAVAILABLE
        channel = authenticate(candidates, secret=secret, signature=signature, body=body)
        if channel is None:
            log.warning("webhook refused: no valid credential for phone_number_ids=%s", ids)
            return Outcome.UNAUTHORIZED
        items = delivery_items(payload)
        if items > MAX_ITEMS_PER_DELIVERY:
            # Refused whole, before anything is stored: a delivery is never
            # half-ingested, and the sender learns why.
            log.warning(
                "webhook for %s refused: %d items, the cap is %d",
                channel.phone_number_id,
                items,
                MAX_ITEMS_PER_DELIVERY,
            )
            return Outcome.TOO_MANY_ITEMS
        foreign = [pid for pid in ids if pid != channel.phone_number_id]
        if foreign:
            # Stored as received, but the worker only reads this channel's entries.
            log.warning(
                "webhook for %s carried entries of other channels %s; they are ignored",
                channel.phone_number_id,
                foreign,
            )
        event = NewEvent(
            channel_id=channel.id,
            workspace_id=channel.workspace_id,
            body=text,
        )
        try:
            await self._writer.submit(event)
        except Exception:
            return Outcome.UNAVAILABLE
        return Outcome.STORED
