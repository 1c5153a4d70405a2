"""Pruning deletes data: exactly the done events past the retention and the old parked updates."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import msgspec
import pytest

from service.clients import Clients
from service.ingest.worker import PRUNE_EVERY_SECONDS, Worker
from service.repositories import inbox
from service.settings import Settings
from tests.support.inbox import WORKSPACE_A
from tests.support.stack import psql

RETENTION_HOURS = 72

# (label, status, processed this long ago); every event is received 30 days ago.
EVENTS = [
    ("done-old", "done", "73 hours"),
    ("done-young", "done", "71 hours"),
    ("pending-old", "pending", None),
    ("dead-old", "dead", None),
]
# (label, received this long ago); parked updates are kept 7 days.
PARKED = [("parked-old", "8 days"), ("parked-young", "6 days")]


@pytest.fixture
def planted(stack_env: dict[str, str]) -> Iterator[str]:
    """Rows of every kind on both sides of the line, tagged with this run's id."""
    run = uuid.uuid4().hex
    values = ", ".join(
        f'(\'{WORKSPACE_A}\', \'{{"prune": "{run}", "label": "{label}"}}\', \'{status}\', '
        "now() - interval '30 days', "
        # Pending ones are set a day ahead so no worker claims them meanwhile.
        f"now() + interval '1 day', " + (f"now() - interval '{ago}'" if ago else "null") + ")"
        for label, status, ago in EVENTS
    )
    parked = ", ".join(
        f"('{WORKSPACE_A}', 'wamid.PRUNE.{run}.{label}', 'status', '{{}}', "
        f"now() - interval '{ago}')"
        for label, ago in PARKED
    )
    database_url = stack_env["DATABASE_URL"]
    psql(
        database_url,
        "insert into webhook_events (workspace_id, body, status, received_at, next_attempt_at, "
        f"processed_at) values {values}; "
        "insert into pending_message_updates (workspace_id, wamid, kind, payload, received_at) "
        f"values {parked}",
    )
    yield run
    psql(
        database_url,
        f"delete from webhook_events where body like '%{run}%'; "
        f"delete from pending_message_updates where wamid like 'wamid.PRUNE.{run}.%'",
    )


def left(database_url: str, run: str) -> set[str]:
    events = psql(
        database_url,
        "select string_agg(body::json->>'label', ',') from webhook_events "
        f"where body like '%{run}%'",
    )
    parked = psql(
        database_url,
        "select string_agg(split_part(wamid, '.', 4), ',') from pending_message_updates "
        f"where wamid like 'wamid.PRUNE.{run}.%'",
    )
    return {label for label in f"{events},{parked}".split(",") if label}


KEPT = {"done-young", "pending-old", "dead-old", "parked-young"}


async def test_prune_deletes_exactly_what_is_past_the_retention(
    clients: Clients, stack_env: dict[str, str], planted: str
) -> None:
    database_url = stack_env["DATABASE_URL"]
    assert left(database_url, planted) == KEPT | {"done-old", "parked-old"}

    deleted = await inbox.prune(clients.service_db, older_than_hours=RETENTION_HOURS)

    assert left(database_url, planted) == KEPT
    assert deleted >= 1  # done events of other tests are never 72 hours old
    # A second prune finds nothing more of ours.
    await inbox.prune(clients.service_db, older_than_hours=RETENTION_HOURS)
    assert left(database_url, planted) == KEPT


async def test_the_running_worker_prunes_with_its_retention_setting(
    clients: Clients, settings: Settings, stack_env: dict[str, str], planted: str
) -> None:
    database_url = stack_env["DATABASE_URL"]
    configured = msgspec.structs.replace(
        settings, worker_prune_done_after_hours=RETENTION_HOURS, worker_idle_poll_seconds=0.05
    )
    worker = Worker(clients.service_db, configured)
    # Due now: the first prune otherwise waits until the host's monotonic clock
    # (its uptime) passes PRUNE_EVERY_SECONDS, which a fresh CI machine may not.
    worker._last_prune = time.monotonic() - PRUNE_EVERY_SECONDS
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run_forever(stop))
    try:
        deadline = time.monotonic() + 20
        while "done-old" in left(database_url, planted):
            assert not running.done(), "the worker stopped"
            assert time.monotonic() < deadline, "the worker never pruned"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=10)

    assert left(database_url, planted) == KEPT
