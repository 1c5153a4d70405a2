"""Which channel a delivery belongs to, and whether it proved it."""

from __future__ import annotations

import hashlib
import hmac

from service.repositories import channels as channels_repo
from service.repositories.channels import ChannelAuth


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
