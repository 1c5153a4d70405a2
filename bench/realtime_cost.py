"""Realtime benchmark: the database's cost per change, postgres_changes against broadcast.

Runs on a private stack (its own folder and ports) and removes it.

    uv run python bench/realtime_cost.py [--quick]

One workspace with 50 agents. A "change" is one row change a browser learns
about: each inbound message is two (the message INSERT and its
conversation's statistics UPDATE), written one transaction per message, the
way the worker's batches of one write them.

- postgres_changes: the Realtime server's own queries (tests/support/realtime.py
  reads them from ../shared/vendor/supabase-realtime): a temporary wal2json
  slot, one realtime.subscription row per agent and table, and
  realtime.list_changes polled until the slot is drained. Cost per change =
  time spent in list_changes / changes. The broadcast triggers are disabled.
- broadcast: the migration's triggers call realtime.send for every change.
  Cost per change = (write time with the triggers - write time without them)
  / changes, timed inside Postgres, alternating chunks so drift hits both
  equally (medians of the chunks); once with one message per statement (an
  agent's reply: one realtime.send per change) and once with 100 per
  statement (a worker batch: one realtime.send per workspace and statement). Who joined the
  topic does not enter the database's work per change; the N agents are
  members all the same.

Also measured: WAL bytes per message status update under the default replica
identity and under FULL (migration 009), for a short and a 4,000-character
body. The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import string
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.processes import IsolatedStack
from tests.support.realtime import ChangesPoller, changes_poller, connect_as_server

AGENT_COUNTS = (1, 10, 50)
WORKSPACE = uuid.UUID("c0000000-0000-4000-8000-000000000001")
CONVERSATION = uuid.UUID("c1000000-0000-4000-8000-000000000001")
BROADCAST_TRIGGERS = (
    ("public.messages", "messages_broadcast_insert"),
    ("public.messages", "messages_broadcast_update"),
    ("public.conversations", "conversations_broadcast_insert"),
    ("public.conversations", "conversations_broadcast_update"),
)
INSERT_MESSAGE = (
    "insert into public.messages (conversation_id, wamid, direction, type, content, status) "
    "values ($1, $2, 'inbound', 'text', $3::jsonb, 'delivered')"
)


def agent_id(n: int) -> uuid.UUID:
    return uuid.UUID(f"c2000000-0000-4000-8000-{n:012x}")


async def seed(db: asyncpg.Connection) -> None:
    users = [agent_id(n) for n in range(max(AGENT_COUNTS))]
    await db.execute("insert into public.workspaces (id, name) values ($1, 'Bench RT')", WORKSPACE)
    await db.executemany(
        "insert into auth.users (instance_id, id, aud, role, email) values "
        "('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated', $2)",
        [(u, f"rt-{u}@example.test") for u in users],
    )
    await db.executemany(
        "insert into public.workspace_members (workspace_id, user_id) values ($1, $2)",
        [(WORKSPACE, u) for u in users],
    )
    await db.execute(
        "insert into public.whatsapp_channels (workspace_id, phone_number_id, api_key) "
        "values ($1, '990000000000001', 'bench-rt-key')",
        WORKSPACE,
    )
    await db.execute(
        "insert into public.conversations (id, workspace_id, phone, phone_number_id) "
        "values ($1, $2, '+573009990001', '990000000000001')",
        CONVERSATION,
        WORKSPACE,
    )


async def set_broadcast(db: asyncpg.Connection, enabled: bool) -> None:
    verb = "enable" if enabled else "disable"
    for table, trigger in BROADCAST_TRIGGERS:
        await db.execute(f"alter table {table} {verb} trigger {trigger}")


async def write_messages(db: asyncpg.Connection, count: int) -> float:
    """Seconds to write `count` inbound messages, one transaction each."""
    body = json.dumps({"body": "Hola, ¿tienen disponible la talla M?"})
    started = time.perf_counter()
    for _ in range(count):
        await db.execute(INSERT_MESSAGE, CONVERSATION, f"wamid.RT.{uuid.uuid4().hex}", body)
    return time.perf_counter() - started


def claims(user: uuid.UUID) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": str(user), "role": "authenticated", "aud": "authenticated", "exp": now + 3600}


async def postgres_changes_cost(
    env: dict[str, str], db: asyncpg.Connection, agents: int, messages: int
) -> dict[str, float]:
    async with changes_poller(env) as poller:
        for n in range(agents):
            for table in ("conversations", "messages"):
                await poller.subscribe(claims(agent_id(n)), table)
        await write_messages(db, messages)
        return await drain(poller, expected=2 * messages)


async def drain(poller: ChangesPoller, expected: int) -> dict[str, float]:
    polled = 0
    spent = 0.0
    delivered = 0
    errors = 0
    deadline = time.monotonic() + 300
    while polled < expected and time.monotonic() < deadline:
        started = time.perf_counter()
        changes, count = await poller.poll()
        spent += time.perf_counter() - started
        polled += count
        delivered += sum(len(c.subscription_ids) for c in changes)
        errors += sum(1 for c in changes if c.errors)
    if polled < expected:
        raise RuntimeError(f"the slot gave {polled} of {expected} changes")
    return {
        "ms_per_change": 1000 * spent / polled,
        "deliveries_per_change": delivered / polled,
        "errors": errors,
    }


# The loop runs inside Postgres and times itself, so the client's round trips
# (noisy on a shared machine) stay out of a difference of a few hundredths
# of a millisecond.
TIMED_WRITES = """
do $$
declare
    started timestamptz := clock_timestamp();
begin
    for i in 1..%(count)s loop
        insert into public.messages (conversation_id, wamid, direction, type, content, status)
        select '%(conversation)s', 'wamid.RT.' || gen_random_uuid(), 'inbound', 'text',
               '{"body": "Hola, ¿tienen disponible la talla M?"}', 'delivered'
        from generate_series(1, %(batch)s);
    end loop;
    perform set_config('bench.elapsed_ms',
                       (extract(epoch from clock_timestamp() - started) * 1000)::text, false);
end
$$
"""


async def timed_writes(db: asyncpg.Connection, statements: int, batch: int) -> float:
    """Milliseconds per message inside Postgres: `statements` inserts of `batch` messages."""
    sql = TIMED_WRITES % {"count": statements, "batch": batch, "conversation": CONVERSATION}
    await db.execute(sql)
    elapsed = await db.fetchval("select current_setting('bench.elapsed_ms')::float8")
    return float(elapsed) / (statements * batch)


async def broadcast_cost(db: asyncpg.Connection, messages: int, batch: int) -> dict[str, float]:
    """One message per statement (an agent's reply) or `batch` (a worker batch)."""
    statements = max(1, 25 // batch)
    on: list[float] = []
    off: list[float] = []
    for _ in range(max(4, messages // (statements * batch))):
        await set_broadcast(db, True)
        on.append(await timed_writes(db, statements, batch))
        await set_broadcast(db, False)
        off.append(await timed_writes(db, statements, batch))
    with_ms, without_ms = statistics.median(on), statistics.median(off)
    # Changes per message: the message, and its conversation once per statement.
    changes = 1 + 1 / batch
    return {
        "ms_per_change": (with_ms - without_ms) / changes,
        "write_ms_per_message_with": with_ms,
        "write_ms_per_message_without": without_ms,
    }


async def wal_per_status_update(db: asyncpg.Connection, body_length: int, count: int) -> float:
    rng = random.Random(body_length)
    ids = []
    for _ in range(count):
        body = "".join(rng.choices(string.ascii_letters + string.digits, k=body_length))
        ids.append(
            await db.fetchval(
                "insert into public.messages (conversation_id, direction, type, content, status) "
                "values ($1, 'outbound', 'text', $2::jsonb, 'sent') returning id",
                CONVERSATION,
                json.dumps({"body": body}),
            )
        )
    # asyncpg decodes pg_lsn as the WAL position in bytes.
    start: int = await db.fetchval("select pg_current_wal_insert_lsn()")
    for message_id in ids:
        await db.execute(
            "update public.messages set status = 'delivered', status_timestamp = now() "
            "where id = $1",
            message_id,
        )
    end: int = await db.fetchval("select pg_current_wal_insert_lsn()")
    return (end - start) / count


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages per measurement")
    args = parser.parse_args()
    messages = 100 if args.quick else 400

    stack = IsolatedStack("bench-realtime")
    stack.up()
    figures: dict[str, Any] = {}
    try:
        env = stack.env
        db = await connect_as_server(env)
        try:
            await seed(db)
            await write_messages(db, 50)  # warm plans and caches
            for agents in AGENT_COUNTS:
                await set_broadcast(db, False)
                changes = await postgres_changes_cost(env, db, agents, messages)
                broadcast = await broadcast_cost(db, messages, batch=1)
                figures[f"postgres_changes_{agents}"] = changes
                figures[f"broadcast_{agents}"] = broadcast
                figures[f"broadcast_batch100_{agents}"] = await broadcast_cost(
                    db, 10 * messages, batch=100
                )
                for path in ("postgres_changes", "broadcast", "broadcast_batch100"):
                    measured = figures[f"{path}_{agents}"]
                    print(
                        f"realtime_cost_ms_per_change path={path} agents={agents}: "
                        f"{measured['ms_per_change']:.3f}"
                    )
            await set_broadcast(db, False)
            wal: dict[str, float] = {}
            for identity in ("default", "full"):
                await db.execute(f"alter table public.messages replica identity {identity}")
                for label, length in (("short", 40), ("long", 4000)):
                    wal[f"{identity}_{label}"] = await wal_per_status_update(db, length, 200)
            await db.execute("alter table public.messages replica identity full")
            figures["wal_bytes_per_status_update"] = wal
            for key, value in wal.items():
                print(f"wal_bytes_per_status_update replica_identity={key}: {value:.0f}")
        finally:
            await db.close()
    finally:
        stack.destroy()
    figures["realtime_cost_ms_per_change"] = {
        f"{path}_{agents}": round(figures[f"{path}_{agents}"]["ms_per_change"], 4)
        for path in ("postgres_changes", "broadcast", "broadcast_batch100")
        for agents in AGENT_COUNTS
    }
    figures["messages_per_measurement"] = messages
    print(json.dumps(figures, default=lambda v: round(v, 4)))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
