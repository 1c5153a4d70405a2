"""Liveness and readiness."""

from __future__ import annotations

from typing import Annotated

import httpx
import msgspec
from litestar import Controller, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from msgspec import Meta

from service.clients import Clients
from service.root import api_runtime


class Health(msgspec.Struct):
    status: Annotated[str, Meta(description="`ok` while the process runs")]


class Readiness(msgspec.Struct):
    status: Annotated[str, Meta(description="`ready`, or `unavailable`")]
    database: Annotated[str, Meta(description="`ok`, or `down`")]
    reason: Annotated[str | None, Meta(description="Why it is not ready; null when ready")] = None


class HealthController(Controller):
    path = ""
    tags = ["health"]  # noqa: RUF012 (Litestar reads it per instance)

    @get("/health", operation_id="getHealth", summary="The process is alive")
    async def health(self) -> Health:
        return Health(status="ok")

    @get(
        "/ready",
        operation_id="getReadiness",
        summary="The database answers through the gateway (503 with the reason if not)",
        responses={503: ResponseSpec(data_container=Readiness, description="Not ready, and why")},
    )
    async def ready(self, state: State) -> Response[Readiness]:
        reason = await probe_rest(api_runtime(state).root.clients)
        if reason is None:
            return Response(Readiness(status="ready", database="ok"), status_code=HTTP_200_OK)
        return Response(
            Readiness(status="unavailable", database="down", reason=reason),
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
        )


async def probe_rest(clients: Clients) -> str | None:
    """None when a one-row read as the service role succeeds, else why not.

    The read goes gateway → PostgREST → Postgres, with the keys every other
    call uses, so it fails exactly when the webhook could not store. Not the
    API root: hosted projects refuse it to anonymous and publishable keys.
    """
    rest = clients.service_db.postgrest
    try:
        response = await clients.db_http.head(
            f"{clients.rest_url}/workspaces",
            params={"select": "id", "limit": "1"},
            headers=rest.headers,
            timeout=2.0,
        )
    except httpx.HTTPError as exc:
        return f"gateway unreachable: {type(exc).__name__}"
    if response.status_code == HTTP_200_OK:
        return None
    return _WHY.get(response.status_code, f"PostgREST answered {response.status_code}")


# What the Supabase gateway's answers mean for the webhook: it cannot store.
_WHY = {
    401: "the gateway refused the service role key (401): check SUPABASE_SERVICE_ROLE_KEY",
    403: "the service role may not read public.workspaces (403): are the migrations applied?",
    404: "public.workspaces is missing (404): apply the migrations (supabase db push)",
    502: "the gateway cannot reach PostgREST (502)",
    504: "the gateway timed out waiting for PostgREST (504)",
    503: "PostgREST cannot reach Postgres (503)",
}
