"""Typed views of PostgREST results for assertions."""

from __future__ import annotations

from typing import Any, cast

from postgrest import APIResponse


def rows(response: APIResponse) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], response.data)
