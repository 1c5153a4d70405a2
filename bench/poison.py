"""One tenant's poison against another tenant's ingest (issue 10, docs/SECURITY.md).

Runs on a private stack it removes. The worker drains 1,500 deliveries of
workspace B stored at once, clean, then with 30 events of workspace A whose
sender is no E.164 number mixed in, then the same with the worker's phone
rule switched off so the database's check refuses them (the fallback path).
Each case runs three times on fresh rows; the best of each is kept.

    uv run python bench/poison.py

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.clients import Clients, open_clients
from service.ingest import normalize
from service.ingest.worker import Worker
from service.repositories import inbox
from service.repositories.inbox import NewEvent
from service.settings import Settings
from service.whatsapp.payloads import normalize_phone
from tests.support.inbox import CHANNEL_A, CHANNEL_B, WORKSPACE_A, WORKSPACE_B
from tests.support.payloads import envelope, new_phone, text_message, text_payload
from tests.support.processes import IsolatedStack
from tests.support.rows import rows

VALID = 1500
POISON = 30
ROUNDS = 3


def _body(payload: dict[str, object]) -> str:
    return json.dumps(payload)


async def _channel(clients: Clients, phone_number_id: str) -> uuid.UUID:
    found = (
        await clients.service_db.table("whatsapp_channels")
        .select("id")
        .eq("phone_number_id", phone_number_id)
        .execute()
    )
    return uuid.UUID(str(rows(found)[0]["id"]))


async def drain_seconds(clients: Clients, settings: Settings, poison: int) -> float:
    """Stores the deliveries, then times one worker draining them."""
    a, b = await _channel(clients, CHANNEL_A), await _channel(clients, CHANNEL_B)
    events = [
        NewEvent(
            channel_id=b,
            workspace_id=uuid.UUID(WORKSPACE_B),
            body=_body(text_payload(CHANNEL_B, new_phone(), f"hola {n}")),
        )
        for n in range(VALID)
    ]
    for n in range(poison):
        bad = envelope(CHANNEL_A, {"messages": [text_message("0123456", "poison")]})
        events.insert(
            n * (VALID // poison) + 7,
            NewEvent(channel_id=a, workspace_id=uuid.UUID(WORKSPACE_A), body=_body(bad)),
        )
    for start in range(0, len(events), 500):
        await inbox.enqueue(clients.service_db, events[start : start + 500])
    started = time.perf_counter()
    await Worker(clients.service_db, settings).drain()
    return time.perf_counter() - started


async def main() -> int:
    stack = IsolatedStack("bench-poison")
    stack.up()
    try:
        settings = Settings.from_env({**stack.env, "D360_BASE_URL": "https://waba-v2.360dialog.io"})
        # Each poison event is logged as it is dead-lettered: not the figures.
        logging.basicConfig(level=logging.ERROR)
        best: dict[str, float] = {}
        async with open_clients(settings) as clients:
            await drain_seconds(clients, settings, 0)  # warm-up
            for _ in range(ROUNDS):
                for case, poison, rule in (
                    ("clean", 0, normalize_phone),
                    ("poison", POISON, normalize_phone),
                    ("poison_rule_off", POISON, lambda wa_id: f"+{wa_id}"),
                ):
                    normalize.normalize_phone = rule  # type: ignore[attr-defined]
                    seconds = await drain_seconds(clients, settings, poison)
                    best[case] = min(seconds, best.get(case, float("inf")))
            normalize.normalize_phone = normalize_phone  # type: ignore[attr-defined]
    finally:
        stack.destroy()

    print(f"{VALID} deliveries of one workspace, drained by one worker (best of {ROUNDS}):")
    print(f"  clean                                        {best['clean']:.2f}s")
    print(
        f"  with {POISON} poison events of another           {best['poison']:.2f}s "
        f"({best['poison'] / best['clean']:.2f}x)"
    )
    print(
        f"  the same, refused by the database instead    {best['poison_rule_off']:.2f}s "
        f"({best['poison_rule_off'] / best['clean']:.2f}x)"
    )
    figures = {
        "poison_clean_s": round(best["clean"], 3),
        "poison_s": round(best["poison"], 3),
        "poison_slowdown": round(best["poison"] / best["clean"], 2),
        "poison_db_refused_s": round(best["poison_rule_off"], 3),
        "poison_db_refused_slowdown": round(best["poison_rule_off"] / best["clean"], 2),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
