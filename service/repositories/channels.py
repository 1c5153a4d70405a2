"""whatsapp_channels, as the service role sees them."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from typing import Any

import msgspec
from supabase import AsyncClient

_AUTH_COLUMNS = "id,workspace_id,phone_number_id,webhook_secret_hash,app_secret,is_active"
_PUBLIC_COLUMNS = "id,workspace_id,phone_number_id,display_phone_number,is_active,created_at"


class ChannelAuth(msgspec.Struct, frozen=True):
    """What the webhook needs to authenticate a delivery for one channel."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    phone_number_id: str
    webhook_secret_hash: str | None
    app_secret: str | None
    is_active: bool

    def __repr__(self) -> str:
        return f"ChannelAuth(phone_number_id={self.phone_number_id!r}, active={self.is_active})"


class ChannelSummary(msgspec.Struct, frozen=True):
    id: uuid.UUID
    workspace_id: uuid.UUID
    phone_number_id: str
    display_phone_number: str
    is_active: bool
    created_at: str


class ChannelKey(msgspec.Struct, frozen=True):
    """A channel's 360dialog API key, for sending and media."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    phone_number_id: str
    api_key: str
    send_read_receipts: bool

    def __repr__(self) -> str:
        return f"ChannelKey(phone_number_id={self.phone_number_id!r})"


def hash_webhook_secret(secret: str) -> str:
    """sha256 hex, the form whatsapp_channels.webhook_secret_hash stores."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _rows(data: Any) -> list[dict[str, Any]]:
    return list(data or [])


async def fetch_auth(db: AsyncClient, phone_number_ids: Iterable[str]) -> list[ChannelAuth]:
    ids = sorted(set(phone_number_ids))
    if not ids:
        return []
    result = (
        await db.table("whatsapp_channels")
        .select(_AUTH_COLUMNS)
        .in_("phone_number_id", ids)
        .execute()
    )
    return msgspec.convert(_rows(result.data), list[ChannelAuth])


async def fetch_auth_by_secret_hash(db: AsyncClient, secret_hash: str) -> list[ChannelAuth]:
    result = (
        await db.table("whatsapp_channels")
        .select(_AUTH_COLUMNS)
        .eq("webhook_secret_hash", secret_hash)
        .execute()
    )
    return msgspec.convert(_rows(result.data), list[ChannelAuth])


async def verify_token_exists(db: AsyncClient, token: str) -> bool:
    result = (
        await db.table("whatsapp_channels")
        .select("id")
        .eq("verify_token", token)
        .eq("is_active", True)
        .limit(1)
        .execute()
    )
    return bool(result.data)


async def fetch_key(db: AsyncClient, phone_number_id: str) -> ChannelKey | None:
    result = (
        await db.table("whatsapp_channels")
        .select("id,workspace_id,phone_number_id,api_key,send_read_receipts")
        .eq("phone_number_id", phone_number_id)
        .limit(1)
        .execute()
    )
    rows = _rows(result.data)
    return msgspec.convert(rows[0], ChannelKey) if rows else None


async def add(
    db: AsyncClient,
    *,
    workspace_id: uuid.UUID,
    phone_number_id: str,
    display_phone_number: str,
    api_key: str,
    webhook_secret: str,
    app_secret: str | None = None,
    verify_token: str | None = None,
) -> ChannelSummary:
    row = {
        "workspace_id": str(workspace_id),
        "phone_number_id": phone_number_id,
        "display_phone_number": display_phone_number,
        "api_key": api_key,
        "webhook_secret_hash": hash_webhook_secret(webhook_secret),
        "app_secret": app_secret,
        "verify_token": verify_token,
    }
    result = await db.table("whatsapp_channels").insert(row).execute()
    inserted = _rows(result.data)[0]
    return msgspec.convert(
        {k: inserted[k] for k in _PUBLIC_COLUMNS.split(",")}, ChannelSummary, strict=False
    )


async def list_all(db: AsyncClient) -> list[ChannelSummary]:
    result = (
        await db.table("whatsapp_channels").select(_PUBLIC_COLUMNS).order("created_at").execute()
    )
    return msgspec.convert(_rows(result.data), list[ChannelSummary], strict=False)
