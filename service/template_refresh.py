"""Keeping the database's copy of each channel's templates in step with 360dialog.

Three callers: `template refresh` (the operator), the worker (every
TEMPLATE_REFRESH_SECONDS) and the send path, after 360dialog refused a
template (Meta paused, disabled or changed it: the copy is stale). Writes go
through the service role in one transaction per channel.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from service.cache import ChannelCache
from service.repositories import channels as channels_repo
from service.repositories import templates as templates_repo
from service.repositories.channels import UnknownChannel
from service.repositories.roles import ServiceClient, ServiceDb
from service.whatsapp.d360 import D360Client
from service.whatsapp.errors import D360AuthError

log = logging.getLogger(__name__)


@dataclass
class RefreshReport:
    """Per channel (phone_number_id): templates stored, or why it failed."""

    stored: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


class TemplateRefresher:
    __slots__ = ("_channels", "_d360", "_db", "_running")

    def __init__(self, service_db: ServiceClient, channels: ChannelCache, d360: D360Client) -> None:
        self._db = service_db
        self._channels = channels
        self._d360 = d360
        self._running: dict[str, asyncio.Task[None]] = {}

    def __repr__(self) -> str:
        return "TemplateRefresher()"

    async def refresh(self, phone_number_id: str) -> int:
        """One channel's templates from 360dialog; how many are stored.

        Raises UnknownChannel, or D360Exception when 360dialog cannot list them
        (the stored copy then stays as it was).
        """
        channel = (await self._channels.lookup([phone_number_id]))[phone_number_id]
        if channel is None:
            raise UnknownChannel(phone_number_id)
        try:
            listed = await self._d360.list_templates(channel.api_key)
        except D360AuthError:
            self._channels.forget(phone_number_id)
            raise
        return await templates_repo.replace_for_channel(
            ServiceDb(self._db.postgrest), channel.id, listed
        )

    async def refresh_all(self) -> RefreshReport:
        """Every active channel; one channel's failure does not stop the others."""
        report = RefreshReport()
        for channel in await channels_repo.list_all(self._db):
            if not channel.is_active:
                continue
            try:
                report.stored[channel.phone_number_id] = await self.refresh(channel.phone_number_id)
            except Exception as exc:
                # str() of a 360dialog error names the call and Meta's message, never the key.
                report.failed[channel.phone_number_id] = f"{type(exc).__name__}: {exc}"[:500]
                log.warning(
                    "templates of channel %s not refreshed: %s",
                    channel.phone_number_id,
                    report.failed[channel.phone_number_id],
                )
        return report

    def refresh_soon(self, phone_number_id: str) -> None:
        """Refresh one channel in the background (at most one run per channel at a time)."""
        if phone_number_id in self._running:
            return
        task = asyncio.create_task(self._refresh_logged(phone_number_id))
        self._running[phone_number_id] = task
        task.add_done_callback(lambda _: self._running.pop(phone_number_id, None))

    async def _refresh_logged(self, phone_number_id: str) -> None:
        try:
            stored = await self.refresh(phone_number_id)
            log.info("templates of channel %s refreshed: %d", phone_number_id, stored)
        except Exception as exc:
            log.warning("templates of channel %s not refreshed: %s", phone_number_id, exc)

    async def aclose(self) -> None:
        """Waits for background refreshes (each is bounded by the HTTP timeouts)."""
        if self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)
