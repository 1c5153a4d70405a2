"""The one door from the agent endpoints to a channel's 360dialog API key.

Agents' requests run as the agent, under RLS, and column grants hide
`whatsapp_channels.api_key` from them. Sending, media and read receipts still
need that key, so this narrow object reads it with the service role and
exposes nothing else: no rows, no client. Callers use it only after the
agent's own RLS-scoped read returned the conversation and its channel, so an
agent can only cause the use of keys of channels they can see.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from supabase import AsyncClient

from service.cache import TtlCache
from service.repositories import channels as channels_repo
from service.repositories.channels import ChannelKey


class ChannelKeys:
    __slots__ = ("__weakref__", "_cache", "_fetch")

    def __init__(
        self,
        service_db: AsyncClient,
        *,
        ttl_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Only the bound lookup is kept, never the client itself.
        async def fetch(phone_number_id: str) -> ChannelKey | None:
            return await channels_repo.fetch_key(service_db, phone_number_id)

        self._fetch: Callable[[str], Awaitable[ChannelKey | None]] = fetch
        self._cache: TtlCache[str, str | None] = TtlCache(ttl_seconds, clock)

    def __repr__(self) -> str:
        return f"ChannelKeys(cached={len(self._cache)})"

    async def api_key_for(self, phone_number_id: str) -> str | None:
        """The channel's D360-API-KEY (cached for a minute); None for an unknown channel."""
        hit, key = self._cache.get(phone_number_id)
        if hit:
            return key
        found = await self._fetch(phone_number_id)
        key = found.api_key if found is not None else None
        self._cache.put(phone_number_id, key)
        return key

    def forget(self, phone_number_id: str) -> None:
        """Drop a cached key (360dialog refused it: it may have been rotated)."""
        self._cache.forget(phone_number_id)
