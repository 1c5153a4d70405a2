"""The local stack behaves like Supabase: gateway, keys, user JWTs, RLS."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from postgrest.exceptions import APIError
from postgrest.types import CountMethod
from supabase import AsyncClientOptions, acreate_client

from service.clients import Clients
from service.tokens import mint_access_token
from tests.support.rows import rows
from tests.support.stack import psql

USER_A = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
USER_B = uuid.UUID("00000000-0000-4000-8000-0000000000b1")


@pytest.fixture(scope="module")
async def probe_table(stack_env: dict[str, str], clients: Clients) -> AsyncIterator[str]:
    """A test-only table with an owner policy, created and dropped here."""
    db = stack_env["DATABASE_URL"]
    psql(
        db,
        f"""
        create table public.stack_probe (
            id bigint generated always as identity primary key,
            owner uuid not null,
            note text not null
        );
        create index on public.stack_probe (owner);
        alter table public.stack_probe enable row level security;
        create policy stack_probe_owner on public.stack_probe to authenticated
            using (owner = (select auth.uid())) with check (owner = (select auth.uid()));
        grant select, insert on public.stack_probe to authenticated;
        grant all on public.stack_probe to service_role;
        insert into public.stack_probe (owner, note)
            values ('{USER_A}', 'a1'), ('{USER_A}', 'a2'), ('{USER_B}', 'b1');
        """,
    )
    await wait_until_exposed(clients, "stack_probe")
    yield "stack_probe"
    psql(db, "drop table public.stack_probe")


async def wait_until_exposed(clients: Clients, table: str) -> None:
    """PostgREST reloads its schema cache asynchronously after DDL (NOTIFY).

    A GET works before that (Postgres resolves the name), but writes need the
    cache, so wait until the table is in the OpenAPI document it serves.
    """
    deadline = time.monotonic() + 10
    key = clients.settings.supabase_service_role_key
    while True:
        response = await clients.db_http.get(f"{clients.rest_url}/", headers={"apikey": key})
        if f"/{table}" in response.json().get("paths", {}):
            return
        assert time.monotonic() < deadline, f"PostgREST never exposed {table}"
        await asyncio.sleep(0.05)


async def test_service_role_reads_every_row_through_gateway(
    clients: Clients, probe_table: str
) -> None:
    result = await clients.service_db.table(probe_table).select("note").order("id").execute()
    assert [row["note"] for row in rows(result)] == ["a1", "a2", "b1"]


async def test_user_jwt_is_subject_to_rls(
    clients: Clients, jwt_secret: str, probe_table: str
) -> None:
    token = mint_access_token(jwt_secret, USER_A, email="a@example.com")
    db = clients.user_db(token)
    result = (
        await db.table(probe_table).select("note", count=CountMethod.exact).order("id").execute()
    )
    assert [row["note"] for row in rows(result)] == ["a1", "a2"]
    assert result.count == 2

    with pytest.raises(APIError) as denied:
        await db.table(probe_table).insert({"owner": str(USER_B), "note": "forged"}).execute()
    assert denied.value.code == "42501"

    inserted = await db.table(probe_table).insert({"owner": str(USER_A), "note": "a3"}).execute()
    try:
        assert rows(inserted)[0]["note"] == "a3"
    finally:
        # The probe table holds exactly a1, a2, b1 for every other test, whatever the order.
        await clients.service_db.table(probe_table).delete().eq("note", "a3").execute()


async def test_supabase_client_with_user_authorization_header(
    clients: Clients, jwt_secret: str, probe_table: str
) -> None:
    token = mint_access_token(jwt_secret, USER_B)
    user_client = await acreate_client(
        clients.settings.supabase_url,
        clients.settings.supabase_anon_key,
        AsyncClientOptions(
            httpx_client=clients.db_http, headers={"Authorization": f"Bearer {token}"}
        ),
    )
    result = await user_client.table(probe_table).select("note").execute()
    assert [row["note"] for row in rows(result)] == ["b1"]


async def test_anon_key_sees_nothing_it_was_not_granted(clients: Clients, probe_table: str) -> None:
    anon = clients.user_db(clients.settings.supabase_anon_key)
    with pytest.raises(APIError) as denied:
        await anon.table(probe_table).select("id").execute()
    assert denied.value.code == "42501"


@pytest.mark.parametrize(
    ("secret_override", "ttl", "expected_message"),
    [
        ("a-completely-different-secret-of-enough-length!!", 3600, "JWSInvalidSignature"),
        (None, -60, "JWT expired"),
    ],
    ids=["forged", "expired"],
)
async def test_bad_tokens_are_refused(
    clients: Clients,
    jwt_secret: str,
    probe_table: str,
    secret_override: str | None,
    ttl: int,
    expected_message: str,
) -> None:
    token = mint_access_token(secret_override or jwt_secret, USER_A, ttl_seconds=ttl)
    with pytest.raises(APIError) as refused:
        await clients.user_db(token).table(probe_table).select("id").execute()
    assert refused.value.code == "PGRST301"
    assert expected_message in (refused.value.message or "")


async def test_opaque_keys_map_to_their_roles(clients: Clients, probe_table: str) -> None:
    response = await clients.db_http.get(
        f"{clients.rest_url}/{probe_table}?select=note&order=id",
        headers={"apikey": "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"},
    )
    assert response.status_code == 200
    assert [row["note"] for row in response.json()] == ["a1", "a2", "b1"]
    response = await clients.db_http.get(
        f"{clients.rest_url}/{probe_table}?select=note",
        headers={"apikey": "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"},
    )
    assert response.status_code == 401
