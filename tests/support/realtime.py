"""What the Supabase Realtime server does against a project's database, with its own SQL.

The queries are read at test time from the unmodified server files in
../shared/vendor/supabase-realtime/server (REALTIME_VENDOR_DIR overrides the
folder; see ../shared/reference/realtime.md); nothing here restates them.
Only the two statements Ecto generates from the server's `Message` schema
(the probe insert and the read-back select of the join check) are written
out, since they are not SQL text in the vendored files.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
PUBLICATION = "supabase_realtime"
# The server's default (Extensions.PostgresCdcRls): 1 MiB per record.
MAX_RECORD_BYTES = 1024 * 1024
MAX_CHANGES = 1000


def vendor_dir() -> Path:
    folder = Path(
        os.environ.get("REALTIME_VENDOR_DIR", ROOT.parent / "shared/vendor/supabase-realtime")
    )
    if not (folder / "server").is_dir():
        raise RuntimeError(
            f"Supabase Realtime's server files are not in {folder}: check out ../shared "
            "beside the repository or set REALTIME_VENDOR_DIR"
        )
    return folder


def _after(source: str, marker: str) -> str:
    start = source.index(marker)
    return source[start + len(marker) :]


def _string(source: str, marker: str) -> str:
    """The first Elixir string literal ("..." or a \"\"\" heredoc) after `marker`."""
    rest = _after(source, marker)
    heredoc = re.search(r'"""\n(.*?)\n\s*"""', rest, re.S)
    plain = re.search(r'"([^"]*)"', rest, re.S)
    assert plain is not None, marker
    if heredoc is not None and heredoc.start() <= plain.start():
        return heredoc.group(1)
    return plain.group(1)


@dataclass(frozen=True)
class ServerSql:
    create_slot: str
    list_changes: str
    subscribe: str
    unsubscribe: str
    set_conn_config: str


@cache
def server_sql() -> ServerSql:
    server = vendor_dir() / "server"
    replications = (server / "replications.ex").read_text()
    subscriptions = (server / "subscriptions.ex").read_text()
    authorization = (server / "authorization.ex").read_text()
    return ServerSql(
        create_slot=_string(replications, "def prepare_replication(conn, slot_name) do"),
        list_changes=_string(replications, "def list_changes("),
        subscribe=_string(subscriptions, "defp query(conn, publication, id, claims,"),
        unsubscribe=_string(_after(subscriptions, "def delete_multi("), "sql ="),
        set_conn_config=_string(authorization, "def set_conn_config(conn, authorization_context)"),
    )


async def connect_as_server(stack_env: dict[str, str]) -> asyncpg.Connection:
    """The Realtime server's connection: the platform's superuser, over the stack's socket."""
    connection: asyncpg.Connection = await asyncpg.connect(
        host=f"{stack_env['STACK_DIR']}/run",
        port=int(stack_env["STACK_PORT"]) + 1,
        user="supabase_admin",
        database="postgres",
        server_settings={"application_name": "realtime_rls"},
    )
    return connection


@dataclass(frozen=True)
class Change:
    type: str
    table: str
    columns: list[str]
    record: dict[str, Any]
    old_record: dict[str, Any]
    subscription_ids: frozenset[uuid.UUID]
    errors: list[str]


class ChangesPoller:
    """One temporary wal2json slot and the subscribers registered on it."""

    def __init__(self, connection: asyncpg.Connection, slot: str) -> None:
        self.connection = connection
        self.slot = slot
        self.subscriptions: list[uuid.UUID] = []

    async def subscribe(
        self, claims: dict[str, Any], table: str, *, eq: tuple[str, str] | None = None
    ) -> uuid.UUID:
        """As a browser's `postgres_changes` on public.<table> with event '*'.

        `eq=(column, value)` is the browser's `filter: 'column=eq.value'`.
        """
        subscription_id = uuid.uuid4()
        columns, values = ([eq[0]], [eq[1]]) if eq else ([], [])
        rows = await self.connection.fetch(
            server_sql().subscribe,
            PUBLICATION,
            "public",
            table,
            str(subscription_id),
            json.dumps(claims),
            columns,
            ["eq"] * len(columns),
            values,
            [False] * len(columns),
            "*",
            None,
        )
        assert rows, "Unable to subscribe to changes with given parameters"
        self.subscriptions.append(subscription_id)
        return subscription_id

    async def poll(self) -> tuple[list[Change], int]:
        """One poll: the changes that reached at least one subscriber, and the slot's count."""
        rows = await self.connection.fetch(
            server_sql().list_changes, PUBLICATION, self.slot, MAX_CHANGES, MAX_RECORD_BYTES
        )
        changes: list[Change] = []
        slot_count = 0
        for row in rows:
            slot_count = row["slot_changes_count"]
            if row["type"] is None:
                continue
            changes.append(
                Change(
                    type=row["type"],
                    table=row["table"],
                    columns=[c["name"] for c in json.loads(row["columns"])],
                    record=json.loads(row["record"]),
                    old_record=json.loads(row["old_record"]),
                    subscription_ids=frozenset(row["subscription_ids"]),
                    errors=list(row["errors"]),
                )
            )
        return changes, slot_count


@asynccontextmanager
async def changes_poller(stack_env: dict[str, str]) -> AsyncIterator[ChangesPoller]:
    connection = await connect_as_server(stack_env)
    poller = ChangesPoller(connection, f"realtime_test_{uuid.uuid4().hex[:12]}")
    try:
        await connection.execute(server_sql().create_slot, poller.slot)
        yield poller
    finally:
        if poller.subscriptions:
            await connection.execute(server_sql().unsubscribe, poller.subscriptions)
        # The slot is temporary: it goes with the session.
        await connection.close()


@dataclass(frozen=True)
class Rights:
    broadcast_read: bool
    presence_read: bool
    broadcast_write: bool
    presence_write: bool


async def join_rights(connection: asyncpg.Connection, topic: str, claims: dict[str, Any]) -> Rights:
    """Realtime's join-time check of a private channel (authorization.ex), replayed.

    Read: probe rows are inserted as the server's own user, then, with the
    caller's role and claims set, read back under RLS; all rolled back.
    Write: with the caller's role and claims set, an insert per extension
    under a savepoint; insufficient_privilege means denied.
    """
    role = claims.get("role", "anon")
    params = [role, topic, json.dumps(claims), claims.get("sub"), role, json.dumps({})]
    probes = {"broadcast": uuid.uuid4(), "presence": uuid.uuid4()}
    probe_insert = (
        "insert into realtime.messages (id, topic, extension, inserted_at, updated_at) "
        "values ($1, $2, $3, now() at time zone 'utc', now() at time zone 'utc')"
    )

    read = connection.transaction()
    await read.start()
    try:
        for extension, probe in probes.items():
            await connection.execute(probe_insert, probe, topic, extension)
        await connection.fetch(server_sql().set_conn_config, *params)
        seen = {
            r["id"]
            for r in await connection.fetch(
                "select m0.id from realtime.messages as m0 where m0.id = any($1)",
                list(probes.values()),
            )
        }
    finally:
        await read.rollback()

    writable: dict[str, bool] = {}
    write = connection.transaction()
    await write.start()
    try:
        await connection.fetch(server_sql().set_conn_config, *params)
        for extension in probes:
            try:
                async with connection.transaction():  # a savepoint, as mode: :savepoint
                    await connection.execute(probe_insert, uuid.uuid4(), topic, extension)
                writable[extension] = True
            except asyncpg.InsufficientPrivilegeError:
                writable[extension] = False
    finally:
        await write.rollback()
    return Rights(
        broadcast_read=probes["broadcast"] in seen,
        presence_read=probes["presence"] in seen,
        broadcast_write=writable["broadcast"],
        presence_write=writable["presence"],
    )
