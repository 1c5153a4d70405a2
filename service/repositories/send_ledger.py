"""The one door through which an agent's reply and its outcome are written.

Agents have no INSERT or UPDATE on messages and cannot read idempotency keys
through the Data API (docs/SECURITY.md): a reply row exists only once the
service has checked it and is about to send it. The service has read the
conversation with the agent's token before it opens the reply here, and
`open_reply` checks the sender's membership again in the database. What
360dialog answered is bookkeeping, not an agent's action: it is written with
the service role, so it cannot be lost to a token that expired during the
send. It only ever moves the sender's own outbound message out of `pending`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from datetime import datetime
from typing import Literal

import httpx
from postgrest import APIError

from service.repositories import messages as messages_repo
from service.repositories.messages import Message, NewOutbound
from service.repositories.roles import ServiceClient, ServiceDb
from service.settings import LEDGER_RETRY_DELAYS

log = logging.getLogger(__name__)


class SendLedger:
    __slots__ = ("_by_key", "_open", "_read", "_record")

    def __init__(self, service_db: ServiceClient) -> None:
        # Only bound operations are kept, never the client itself (as ChannelKeys).
        rest = ServiceDb(service_db.postgrest)
        self._open = functools.partial(messages_repo.open_reply, rest)
        self._by_key = functools.partial(messages_repo.by_idempotency_key, rest)
        self._record = functools.partial(messages_repo.record_send, rest)
        self._read = functools.partial(messages_repo.own_outbound, rest)

    def __repr__(self) -> str:
        return "SendLedger()"

    async def open(self, new: NewOutbound) -> Message:
        """The reply stored as `pending`; IdempotencyKeyTaken if its sender already used the key."""
        return await self._open(new)

    async def by_key(
        self, conversation_id: uuid.UUID, sent_by: uuid.UUID, key: str
    ) -> Message | None:
        """The reply this sender stored with this key in this conversation, if any."""
        return await self._by_key(conversation_id, sent_by, key)

    async def record(
        self,
        message_id: uuid.UUID,
        *,
        sent_by: uuid.UUID,
        status: Literal["sent", "failed"],
        at: datetime,
        wamid: str | None = None,
        error_code: int | None = None,
        error_message: str | None = None,
    ) -> Message | None:
        """The stored message after the update; None if it is not this agent's reply.

        A message that left for WhatsApp must not stay `pending` because the
        database blinked: short outages are retried for a few seconds.
        """
        for delay in LEDGER_RETRY_DELAYS:
            await asyncio.sleep(delay)
            try:
                recorded = await self._record(
                    message_id,
                    sent_by=sent_by,
                    status=status,
                    at=at,
                    wamid=wamid,
                    error_code=error_code,
                    error_message=error_message,
                )
                # Not pending any more: an earlier try committed but its answer
                # was lost. What is stored is the outcome.
                return recorded or await self._read(message_id, sent_by)
            except (httpx.TransportError, APIError) as exc:
                last = exc
                log.warning("recording send of %s failed (%s); retrying", message_id, exc)
        raise last
