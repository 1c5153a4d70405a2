"""whatsapp_channels, as the service role sees them."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from typing import Any

import msgspec
from postgrest import APIError

from service.repositories.roles import ServiceClient
from service.repositories.workspaces import UnknownWorkspace

_AUTH_COLUMNS = (
    "id,workspace_id,phone_number_id,webhook_secret_hash,app_secret,is_active,"
    "api_key,send_read_receipts"
)
_PUBLIC_COLUMNS = "id,workspace_id,phone_number_id,display_phone_number,is_active,created_at"


class DuplicateChannel(ValueError):
    """Another channel already has this phone_number_id."""


class UnknownChannel(LookupError):
    """No channel has this phone_number_id."""


class ChannelAuth(msgspec.Struct, frozen=True):
    """One channel's credentials: what the webhook checks and what sending uses.

    The one row the channel cache keeps per phone_number_id.
    """

    id: uuid.UUID
    workspace_id: uuid.UUID
    phone_number_id: str
    webhook_secret_hash: str | None
    app_secret: str | None
    is_active: bool
    api_key: str
    send_read_receipts: bool

    def __repr__(self) -> str:
        return f"ChannelAuth(phone_number_id={self.phone_number_id!r}, active={self.is_active})"


class ChannelSummary(msgspec.Struct, frozen=True):
    id: uuid.UUID
    workspace_id: uuid.UUID
    phone_number_id: str
    display_phone_number: str
    is_active: bool
    created_at: str


def hash_webhook_secret(secret: str) -> str:
    """sha256 hex, the form whatsapp_channels.webhook_secret_hash stores."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _rows(data: Any) -> list[dict[str, Any]]:
    return list(data or [])


async def fetch_auth(db: ServiceClient, phone_number_ids: Iterable[str]) -> list[ChannelAuth]:
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


async def fetch_auth_by_secret_hash(db: ServiceClient, secret_hash: str) -> list[ChannelAuth]:
    result = (
        await db.table("whatsapp_channels")
        .select(_AUTH_COLUMNS)
        .eq("webhook_secret_hash", secret_hash)
        .execute()
    )
    return msgspec.convert(_rows(result.data), list[ChannelAuth])


async def verify_token_exists(db: ServiceClient, token: str) -> bool:
    result = (
        await db.table("whatsapp_channels")
        .select("id")
        .eq("verify_token", token)
        .eq("is_active", True)
        .limit(1)
        .execute()
    )
    return bool(result.data)


async def add(
    db: ServiceClient,
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
    try:
        result = await db.table("whatsapp_channels").insert(row).execute()
    except APIError as exc:
        if exc.code == "23505":
            raise DuplicateChannel(phone_number_id) from None
        if exc.code == "23503":
            raise UnknownWorkspace(workspace_id) from None
        raise
    inserted = _rows(result.data)[0]
    return msgspec.convert(
        {k: inserted[k] for k in _PUBLIC_COLUMNS.split(",")}, ChannelSummary, strict=False
    )


async def list_all(db: ServiceClient) -> list[ChannelSummary]:
    result = (
        await db.table("whatsapp_channels").select(_PUBLIC_COLUMNS).order("created_at").execute()
    )
    return msgspec.convert(_rows(result.data), list[ChannelSummary], strict=False)


async def remove(db: ServiceClient, phone_number_id: str) -> ChannelSummary:
    """Deletes the channel; its conversations keep their history (they name the number)."""
    result = (
        await db.table("whatsapp_channels")
        .delete()
        .eq("phone_number_id", phone_number_id)
        .execute()
    )
    rows = _rows(result.data)
    if not rows:
        raise UnknownChannel(phone_number_id)
    return msgspec.convert(
        {k: rows[0][k] for k in _PUBLIC_COLUMNS.split(",")}, ChannelSummary, strict=False
    )


async def rotate(
    db: ServiceClient,
    phone_number_id: str,
    *,
    webhook_secret: str | None = None,
    api_key: str | None = None,
) -> None:
    """Replaces the webhook secret (stored as its hash) and/or the 360dialog key."""
    changes: dict[str, str] = {}
    if webhook_secret is not None:
        changes["webhook_secret_hash"] = hash_webhook_secret(webhook_secret)
    if api_key is not None:
        changes["api_key"] = api_key
    if not changes:
        raise ValueError("nothing to rotate")
    result = (
        await db.table("whatsapp_channels")
        .update(changes)
        .eq("phone_number_id", phone_number_id)
        .execute()
    )
    if not _rows(result.data):
        raise UnknownChannel(phone_number_id)
