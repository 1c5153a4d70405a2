"""Which channel a delivery belongs to, and whether it proved it."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable

from supabase import AsyncClient

from service.cache import TtlCache
from service.repositories import channels as channels_repo
from service.repositories.channels import ChannelAuth


class ChannelDirectory:
    """A short-lived cache of channel credentials keyed by phone_number_id.

    The webhook must not pay a database round trip per delivery to look up a
    secret; a rotated secret or a deactivated channel takes effect within
    `ttl_seconds`. Unknown ids are cached too, so a flood of forged
    deliveries cannot hammer the database.
    """

    def __init__(
        self,
        db: AsyncClient,
        *,
        ttl_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._cache: TtlCache[str, ChannelAuth | None] = TtlCache(ttl_seconds, clock)

    async def lookup(self, phone_number_ids: Iterable[str]) -> dict[str, ChannelAuth | None]:
        wanted = set(phone_number_ids)
        found, missing = self._cached(wanted)
        if missing:
            # No lock: concurrent misses for one id cost a duplicate query,
            # while a lock would queue every delivery behind a flood of
            # forged ids (or behind one slow query during an outage).
            fetched = {
                c.phone_number_id: c for c in await channels_repo.fetch_auth(self._db, missing)
            }
            for pid in missing:
                channel = fetched.get(pid)
                self._cache.put(pid, channel)
                found[pid] = channel
        return found

    async def lookup_by_secret(self, secret: str | None) -> dict[str, ChannelAuth | None]:
        """For deliveries that name no phone number (account-level fields)."""
        if not secret:
            return {}
        digest = channels_repo.hash_webhook_secret(secret)
        key = f"secret:{digest}"
        hit, channel = self._cache.get(key)
        if not hit:
            rows = await channels_repo.fetch_auth_by_secret_hash(self._db, digest)
            channel = rows[0] if len(rows) == 1 else None
            self._cache.put(key, channel)
        return {channel.phone_number_id: channel} if channel else {}

    async def secret_is_held(self, secret: str) -> bool:
        """Whether any channel holds this webhook secret, whichever number it names.

        Checked before the body is decoded: a secret no channel holds can
        authenticate nothing, so its delivery costs no more than its headers.
        """
        digest = channels_repo.hash_webhook_secret(secret)
        key = f"held:{digest}"
        hit, channel = self._cache.get(key)
        if not hit:
            rows = await channels_repo.fetch_auth_by_secret_hash(self._db, digest)
            channel = rows[0] if rows else None
            self._cache.put(key, channel)
        return channel is not None

    def _cached(self, ids: Iterable[str]) -> tuple[dict[str, ChannelAuth | None], set[str]]:
        found: dict[str, ChannelAuth | None] = {}
        missing: set[str] = set()
        for pid in ids:
            hit, channel = self._cache.get(pid)
            if hit:
                found[pid] = channel
            else:
                missing.add(pid)
        return found, missing


def secret_matches(channel: ChannelAuth, secret: str | None) -> bool:
    if not secret or not channel.webhook_secret_hash:
        return False
    presented = channels_repo.hash_webhook_secret(secret)
    return hmac.compare_digest(presented, channel.webhook_secret_hash)


def signature_matches(channel: ChannelAuth, signature: str | None, body: bytes) -> bool:
    """Meta's X-Hub-Signature-256: `sha256=<hex HMAC-SHA256(raw body, app secret)>`."""
    if not signature or not channel.app_secret or not signature.startswith("sha256="):
        return False
    expected = hmac.new(channel.app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.removeprefix("sha256="))


def authenticate(
    candidates: dict[str, ChannelAuth | None],
    *,
    secret: str | None,
    signature: str | None,
    body: bytes,
) -> ChannelAuth | None:
    """The active channel whose credential this delivery carries, if any.

    A channel with an app secret is in Meta-direct mode and only accepts a
    valid signature; the others accept their 360dialog webhook secret header.
    """
    for pid in sorted(candidates):
        channel = candidates[pid]
        if channel is None or not channel.is_active:
            continue
        if channel.app_secret:
            if signature_matches(channel, signature, body):
                return channel
        elif secret_matches(channel, secret):
            return channel
    return None
