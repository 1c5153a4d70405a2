"""Channels' message templates: agents read them under RLS; the service role replaces them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from postgrest import AsyncPostgrestClient

from service.whatsapp.templates import ListedTemplate, TemplateComponent

_COLUMNS = "name,language,status,category,components,refreshed_at"


class StoredTemplate(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    language: str
    status: str
    category: str | None
    components: list[TemplateComponent]
    refreshed_at: datetime


def _rows(data: Any) -> list[dict[str, Any]]:
    return data if isinstance(data, list) else []


async def for_channel(db: AsyncPostgrestClient, channel_id: uuid.UUID) -> list[StoredTemplate]:
    """The channel's templates the caller may read (as the agent: RLS decides), by name."""
    result = (
        await db.table("whatsapp_templates")
        .select(_COLUMNS)
        .eq("channel_id", str(channel_id))
        .order("name")
        .order("language")
        .execute()
    )
    return msgspec.convert(_rows(result.data), list[StoredTemplate], strict=False)


async def one(
    db: AsyncPostgrestClient, channel_id: uuid.UUID, name: str, language: str
) -> StoredTemplate | None:
    result = (
        await db.table("whatsapp_templates")
        .select(_COLUMNS)
        .eq("channel_id", str(channel_id))
        .eq("name", name)
        .eq("language", language)
        .limit(1)
        .execute()
    )
    rows = _rows(result.data)
    return msgspec.convert(rows[0], StoredTemplate, strict=False) if rows else None


async def replace_for_channel(
    service: AsyncPostgrestClient, channel_id: uuid.UUID, templates: list[ListedTemplate]
) -> int:
    """The channel's whole list, in one transaction (service role); the rows written."""
    result = await service.rpc(
        "replace_channel_templates",
        {"p_channel_id": str(channel_id), "p_templates": msgspec.to_builtins(templates)},
    ).execute()
    return int(result.data) if isinstance(result.data, int) else 0
