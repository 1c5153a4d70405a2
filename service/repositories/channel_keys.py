"""The one door from the agent endpoints to a channel's 360dialog API key.

Agents' requests run as the agent, under RLS, and column grants hide
`whatsapp_channels.api_key` from them. Sending, media and read receipts still
need that key, so this narrow view of the shared channel cache (filled with
the service role) exposes the key and nothing else: no rows, no client.
Callers use it only after the agent's own RLS-scoped read returned the
conversation and its channel, so an agent can only cause the use of keys of
channels they can see.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from service.cache import ChannelCache


class ChannelKeys:
    __slots__ = ("__weakref__", "_forget", "_key_for")

    def __init__(self, channels: ChannelCache) -> None:
        # Only these two operations are exposed: no rows, secrets or client.
        self._key_for: Callable[[str], Awaitable[str | None]] = channels.api_key_for
        self._forget: Callable[[str], None] = channels.forget

    def __repr__(self) -> str:
        return "ChannelKeys()"

    async def api_key_for(self, phone_number_id: str) -> str | None:
        """The channel's D360-API-KEY (cached); None for an unknown channel."""
        return await self._key_for(phone_number_id)

    def forget(self, phone_number_id: str) -> None:
        """Drop a cached key (360dialog refused it: it may have been rotated)."""
        self._forget(phone_number_id)
