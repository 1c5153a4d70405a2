"""Shared network clients. Created once in the app lifespan (or worker start), never at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from httpx_aiohttp import AiohttpTransport
from postgrest import AsyncPostgrestClient
from supabase import AsyncClientOptions, acreate_client

from service.repositories.roles import AgentDb, ServiceClient, ServiceDb
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class Clients:
    settings: Settings
    # Talks to our own Supabase gateway: aiohttp-backed, several times faster
    # than httpx's default transport under concurrency.
    db_http: httpx.AsyncClient
    # Talks to 360dialog: httpx's default transport (pytest-httpx fakes it).
    d360_http: httpx.AsyncClient
    service_db: ServiceClient

    @property
    def rest_url(self) -> str:
        return f"{self.settings.supabase_url.rstrip('/')}/rest/v1"

    @property
    def service_rest(self) -> ServiceDb:
        """PostgREST as the service role (the supabase client's own, shared)."""
        return ServiceDb(self.service_db.postgrest)

    def user_db(self, access_token: str) -> AgentDb:
        """PostgREST as the calling user, so RLS decides.

        A fresh, cheap client per request shares `db_http`. Never close it:
        postgrest-py would close the shared httpx client with it.
        """
        return AgentDb(
            AsyncPostgrestClient(
                self.rest_url,
                headers={
                    "apikey": self.settings.supabase_anon_key,
                    "Authorization": f"Bearer {access_token}",
                },
                http_client=self.db_http,
                retry_enabled=False,
            )
        )


def make_db_http(settings: Settings) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits),
        timeout=httpx.Timeout(settings.http_timeout_seconds, connect=5.0),
    )


def make_d360_http(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(settings.http_timeout_seconds, connect=5.0))


async def make_service_db(settings: Settings, db_http: httpx.AsyncClient) -> ServiceClient:
    key = settings.require_service_role()
    options = AsyncClientOptions(
        httpx_client=db_http,
        headers={"Authorization": f"Bearer {key}"},
        auto_refresh_token=False,
        persist_session=False,
        # postgrest-py would retry GETs for seconds; a webhook must answer 503
        # at once instead (360dialog retries), and the worker has its own backoff.
        postgrest_client_retry=False,
    )
    return ServiceClient(await acreate_client(settings.supabase_url, key, options))


@asynccontextmanager
async def open_clients(settings: Settings) -> AsyncIterator[Clients]:
    db_http = make_db_http(settings)
    d360_http = make_d360_http(settings)
    try:
        service_db = await make_service_db(settings, db_http)
        yield Clients(
            settings=settings, db_http=db_http, d360_http=d360_http, service_db=service_db
        )
    finally:
        await d360_http.aclose()
        await db_http.aclose()
