"""Workspaces and their members, as the service role sees them (operator commands)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from postgrest import APIError

from service.repositories.roles import ServiceClient

ROLES = ("owner", "admin", "agent")


class UnknownWorkspace(LookupError):
    """No workspace has this id."""


class UnknownUser(LookupError):
    """No Supabase Auth user has this email or id."""


class InvalidWorkspace(ValueError):
    """The database refused the name or time zone."""


class Workspace(msgspec.Struct, frozen=True):
    id: uuid.UUID
    name: str
    timezone: str
    created_at: datetime


class Member(msgspec.Struct, frozen=True):
    user_id: uuid.UUID
    email: str | None
    role: str
    created_at: datetime


def _rows(data: Any) -> list[dict[str, Any]]:
    return list(data or [])


async def add(db: ServiceClient, *, name: str, timezone: str | None = None) -> Workspace:
    row = {"name": name} if timezone is None else {"name": name, "timezone": timezone}
    try:
        result = await db.table("workspaces").insert(row).execute()
    except APIError as exc:
        if exc.code == "23514":  # the name's length or the time zone's check
            raise InvalidWorkspace(name) from None
        raise
    return msgspec.convert(_rows(result.data)[0], Workspace, strict=False)


async def list_all(db: ServiceClient) -> list[Workspace]:
    result = (
        await db.table("workspaces")
        .select("id,name,timezone,created_at")
        .order("created_at")
        .execute()
    )
    return msgspec.convert(_rows(result.data), list[Workspace], strict=False)


async def exists(db: ServiceClient, workspace_id: uuid.UUID) -> bool:
    result = (
        await db.table("workspaces").select("id").eq("id", str(workspace_id)).limit(1).execute()
    )
    return bool(result.data)


async def user_id_for_email(db: ServiceClient, email: str) -> uuid.UUID:
    """The Auth user with this email (auth.users is not exposed: an RPC reads it)."""
    result = await db.rpc("operator_user_id", {"p_email": email}).execute()
    if result.data is None:
        raise UnknownUser(email)
    return uuid.UUID(str(result.data))


async def add_member(
    db: ServiceClient, workspace_id: uuid.UUID, user_id: uuid.UUID, role: str
) -> None:
    """Adds the user, or changes the role of one already a member."""
    row = {"workspace_id": str(workspace_id), "user_id": str(user_id), "role": role}
    try:
        await (
            db.table("workspace_members").upsert(row, on_conflict="workspace_id,user_id").execute()
        )
    except APIError as exc:
        if exc.code == "23503":
            if "user_id" in f"{exc.message} {exc.details}":
                raise UnknownUser(str(user_id)) from None
            raise UnknownWorkspace(str(workspace_id)) from None
        raise


async def remove_member(db: ServiceClient, workspace_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """False when the user was not a member."""
    result = (
        await db.table("workspace_members")
        .delete()
        .eq("workspace_id", str(workspace_id))
        .eq("user_id", str(user_id))
        .execute()
    )
    return bool(result.data)


async def members(db: ServiceClient, workspace_id: uuid.UUID) -> list[Member]:
    result = await db.rpc(
        "operator_workspace_members", {"p_workspace_id": str(workspace_id)}
    ).execute()
    return msgspec.convert(_rows(result.data), list[Member], strict=False)
