"""Time-bounded caches for lookups that must not cost a round trip each time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from service.repositories import channels as channels_repo
from service.repositories.channels import ChannelAuth
from service.repositories.roles import ServiceClient

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

# Database lookups of webhook secrets no channel was known to hold, per
# second. Every request with a new made-up secret used to cost a PostgREST
# round trip (about 1 ms of PostgREST CPU, a query on the shared pool) and a
# log line: an unauthenticated flood of random secrets ran the database for
# everyone. Real secrets are looked up once per TTL, so 20 leaves ample room.
UNKNOWN_SECRET_LOOKUPS_PER_SECOND = 20
# How long a secret that was held is still looked up outside that budget.
WAS_HELD_SECONDS = 24 * 3600.0


# Lookups of Meta's subscription handshake, per second: it is answered once
# when a channel is set up, and every request costs a database query.
VERIFY_LOOKUPS_PER_SECOND = 5


class LookupsExhausted(Exception):
    """This second's lookups of unknown secrets are spent: answer "retry later"."""


class TokenBucket:
    """At most `rate` takes per second, in bursts of at most `rate`."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._clock = clock
        self._tokens = rate
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._rate, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class TtlCache(Generic[K, V]):
    """Entries expire `ttl_seconds` after they were put; misses are values too (None).

    Bounded: forged webhooks naming random channels must not grow it forever.
    Entries are kept in the order they expire (one TTL for all), so making
    room is dropping the first one: O(1), whatever the flood.
    """

    def __init__(
        self,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._max = max_entries
        self._entries: dict[K, tuple[float, V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> tuple[bool, V | None]:
        """(True, value) while fresh, else (False, None)."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            return False, None
        return True, entry[1]

    def put(self, key: K, value: V) -> None:
        # Re-inserted at the end, so the first entry always expires first.
        self._entries.pop(key, None)
        if len(self._entries) >= self._max:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (self._clock() + self._ttl, value)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


class ChannelCache:
    """The one short-lived cache of channel rows, keyed by phone_number_id.

    It serves both the webhook (credentials: a database round trip per
    delivery would cap throughput) and sending (the 360dialog key). A rotated
    secret or key, or a removed or deactivated channel, takes effect within
    `ttl_seconds`. Unknown ids are cached too, so a flood of forged
    deliveries cannot hammer the database.
    """

    def __init__(
        self,
        db: ServiceClient,
        *,
        ttl_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._rows: TtlCache[str, ChannelAuth | None] = TtlCache(ttl_seconds, clock)
        # The channels holding a secret, by its hash: whether it is held at all
        # (checked before a body is decoded) and, for deliveries that name no
        # number, the one channel it belongs to. One lookup answers both.
        self._holders: TtlCache[str, list[ChannelAuth]] = TtlCache(ttl_seconds, clock)
        self._unknown_secret_lookups = TokenBucket(UNKNOWN_SECRET_LOOKUPS_PER_SECOND, clock)
        # Secrets seen held lately are looked up again past the budget when
        # their entry expires, so a flood cannot lock real senders out.
        self._was_held: TtlCache[str, bool] = TtlCache(WAS_HELD_SECONDS, clock)
        self._verify_lookups = TokenBucket(VERIFY_LOOKUPS_PER_SECOND, clock)

    def __repr__(self) -> str:
        return f"ChannelCache(cached={len(self._rows)})"

    async def lookup(self, phone_number_ids: Iterable[str]) -> dict[str, ChannelAuth | None]:
        found: dict[str, ChannelAuth | None] = {}
        missing: set[str] = set()
        for pid in set(phone_number_ids):
            hit, channel = self._rows.get(pid)
            if hit:
                found[pid] = channel
            else:
                missing.add(pid)
        if missing:
            # No lock: concurrent misses for one id cost a duplicate query,
            # while a lock would queue every delivery behind a flood of
            # forged ids (or behind one slow query during an outage).
            fetched = {
                c.phone_number_id: c for c in await channels_repo.fetch_auth(self._db, missing)
            }
            for pid in missing:
                channel = fetched.get(pid)
                self._rows.put(pid, channel)
                found[pid] = channel
        return found

    async def lookup_by_secret(self, secret: str | None) -> dict[str, ChannelAuth | None]:
        """For deliveries that name no phone number (account-level fields)."""
        if not secret:
            return {}
        digest = channels_repo.hash_webhook_secret(secret)
        hit, rows = self._holders.get(digest)
        if not hit:
            rows = await self._fetch_holders(digest)
        # A secret two channels share names no one channel.
        return {rows[0].phone_number_id: rows[0]} if rows and len(rows) == 1 else {}

    async def secret_is_held(self, secret: str) -> bool:
        """Whether any channel holds this webhook secret, whichever number it names.

        Checked before the body is decoded: a secret no channel holds can
        authenticate nothing, so its delivery costs no more than its headers.
        A secret not in the cache costs a database lookup, and made-up secrets
        are never in it: past UNKNOWN_SECRET_LOOKUPS_PER_SECOND such lookups
        this raises LookupsExhausted instead (a real sender retries).
        """
        digest = channels_repo.hash_webhook_secret(secret)
        hit, rows = self._holders.get(digest)
        if hit:
            return bool(rows)
        if not self._was_held.get(digest)[0] and not self._unknown_secret_lookups.take():
            raise LookupsExhausted
        held = bool(await self._fetch_holders(digest))
        if held:
            self._was_held.put(digest, True)
        else:
            # Once per secret and TTL, within the lookup budget: a flood of
            # made-up secrets cannot flood the log.
            log.warning("webhook refused: a secret no channel holds")
        return held

    async def verify_token_exists(self, token: str) -> bool:
        """Whether an active channel has this verify token; LookupsExhausted past the budget.

        Unauthenticated and never cached (a handshake is rare), so it is the
        budget that keeps a flood of made-up tokens off the database.
        """
        if not self._verify_lookups.take():
            raise LookupsExhausted
        return await channels_repo.verify_token_exists(self._db, token)

    async def _fetch_holders(self, digest: str) -> list[ChannelAuth]:
        rows = await channels_repo.fetch_auth_by_secret_hash(self._db, digest)
        self._holders.put(digest, rows)
        return rows

    async def api_key_for(self, phone_number_id: str) -> str | None:
        """The channel's D360-API-KEY; None for an unknown channel."""
        channel = (await self.lookup([phone_number_id]))[phone_number_id]
        return channel.api_key if channel is not None else None

    def forget(self, phone_number_id: str) -> None:
        """Drop a cached row (360dialog refused its key: it may have been rotated)."""
        self._rows.forget(phone_number_id)
