"""Hostile bodies and hostile tenants against the real stack (issue 10, docs/SECURITY.md).

Work before authentication is bounded, no delivery exhausts what Postgres
shares between tenants, and one tenant's poison never slows another's ingest.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from postgrest.types import CountMethod

from service.cache import (
    UNKNOWN_SECRET_LOOKUPS_PER_SECOND,
    VERIFY_LOOKUPS_PER_SECOND,
    ChannelCache,
    LookupsExhausted,
)
from service.clients import Clients
from service.ingest import normalize
from service.ingest.limits import MAX_ITEMS_PER_DELIVERY, MAX_ROWS_PER_INGEST
from service.ingest.worker import Worker
from service.repositories import inbox
from service.repositories.inbox import NewEvent
from service.settings import Settings
from tests.support.agent import Tenant, drop_tenant, make_tenant
from tests.support.inbox import (
    CHANNEL_A,
    CHANNEL_B,
    SECRET_A,
    WORKSPACE_A,
    WORKSPACE_B,
    body_sha256,
    deliver,
    drain,
)
from tests.support.payloads import (
    envelope,
    many_channels_body,
    new_phone,
    new_wamid,
    status,
    statuses_payload,
    text_message,
    text_payload,
)
from tests.support.rows import rows

Api = AsyncTestClient[Litestar]
LOCK_TABLE_FULL = ("53200", "out of shared memory")


def raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def first_item(body: bytes, kind: str) -> str:
    """The wamid of the first message or status of a one-entry body."""
    wamid: str = json.loads(body)["entry"][0]["changes"][0]["value"][kind][0]["id"]
    return wamid


async def stored(clients: Clients, body: bytes) -> int:
    result = (
        await clients.service_db.table("webhook_events")
        .select("id", count=CountMethod.exact)
        .eq("body_sha256", body_sha256(body))
        .execute()
    )
    return result.count or 0


async def events(clients: Clients, bodies: list[bytes]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    digests = [body_sha256(b) for b in bodies]
    for start in range(0, len(digests), 50):
        found += rows(
            await clients.service_db.table("webhook_events")
            .select("id,status,attempts,last_error")
            .in_("body_sha256", digests[start : start + 50])
            .execute()
        )
    return found


async def channel_uuid(clients: Clients, phone_number_id: str) -> uuid.UUID:
    found = rows(
        await clients.service_db.table("whatsapp_channels")
        .select("id")
        .eq("phone_number_id", phone_number_id)
        .execute()
    )
    return uuid.UUID(str(found[0]["id"]))


@pytest.fixture
def bystander(stack_env: dict[str, str], jwt_secret: str) -> Iterator[Tenant]:
    """An agent of a workspace that has nothing to do with the hostile delivery."""
    made = make_tenant(stack_env["DATABASE_URL"], jwt_secret, "bystander")
    made.add_conversation()
    yield made
    drop_tenant(made)


# --- 1. Work before authentication ---------------------------------------------------------


def nested_body(depth: int) -> bytes:
    """A WhatsApp envelope whose `messages` is an array nested `depth` deep."""
    payload = envelope(CHANNEL_A, {"messages": "HOLE"})
    return raw(payload).replace(b'"HOLE"', b"[" * depth + b"]" * depth)


@pytest.mark.parametrize(
    ("secret", "answer"),
    [(SECRET_A, 400), (None, 401), ("a secret no channel holds", 401)],
)
@pytest.mark.parametrize("where", ["messages", "unknown_field"])
async def test_a_body_nested_100000_deep_is_refused_not_a_traceback(
    api: Api,
    clients: Clients,
    caplog: pytest.LogCaptureFixture,
    secret: str | None,
    answer: int,
    where: str,
) -> None:
    """With a channel's secret it is decoded and found invalid (400); without a
    credential any channel holds, the body is never decoded (401)."""
    body = nested_body(100_000)
    if where == "unknown_field":
        body = body.replace(b'"messages"', b'"unknown_field"')

    credential = {"X-Webhook-Secret": secret} if secret else {}
    with caplog.at_level(logging.ERROR):
        response = await api.post(
            "/api/webhooks/whatsapp",
            content=body,
            headers={"content-type": "application/json", **credential},
        )

    assert response.status_code == answer
    assert response.json()["error"] == {400: "invalid_payload", 401: "unauthorized"}[answer]
    assert not [r for r in caplog.records if r.exc_info], "no traceback is logged"
    assert await stored(clients, body) == 0


@pytest.mark.parametrize(
    ("secret", "answer"),
    [(SECRET_A, 400), (None, 401), ("a secret no channel holds", 401)],
)
async def test_a_megabyte_naming_thousands_of_channels_is_refused_unstored(
    api: Api, clients: Clients, secret: str | None, answer: int
) -> None:
    body = many_channels_body(1024 * 1024)
    assert len(body) > 1_000_000

    assert await deliver(api, body, secret=secret) == answer
    assert await stored(clients, body) == 0


class StoppedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_made_up_secrets_cost_at_most_the_lookup_budget_per_second(
    clients: Clients,
) -> None:
    """A made-up secret is never cached as held, so each one used to cost a
    database lookup: a flood of them ran PostgREST for every tenant."""
    budget = UNKNOWN_SECRET_LOOKUPS_PER_SECOND
    clock = StoppedClock()
    directory = ChannelCache(clients.service_db, clock=clock)
    assert await directory.secret_is_held(SECRET_A) is True

    answers: list[bool | None] = []
    for _ in range(3 * budget):
        try:
            answers.append(await directory.secret_is_held(f"made-up-{uuid.uuid4()}"))
        except LookupsExhausted:
            answers.append(None)

    assert answers == [False] * (budget - 1) + [None] * (2 * budget + 1)
    # A real sender's secret is answered from the cache while the budget is spent,
    assert await directory.secret_is_held(SECRET_A) is True
    # and looked up again when its entry expires, budget or not.
    clock.now += 3600.0
    for _ in range(budget):  # the flood spends the refilled budget again
        assert await directory.secret_is_held(f"made-up-{uuid.uuid4()}") is False
    with pytest.raises(LookupsExhausted):
        await directory.secret_is_held(f"made-up-{uuid.uuid4()}")
    assert await directory.secret_is_held(SECRET_A) is True
    # The budget comes back with time.
    clock.now += 1.0
    assert await directory.secret_is_held(f"made-up-{uuid.uuid4()}") is False


async def test_a_flood_of_made_up_secrets_is_refused_without_a_lookup_or_a_log_line_each(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    flood = 10 * UNKNOWN_SECRET_LOOKUPS_PER_SECOND
    caplog.set_level(logging.WARNING)

    answers = await asyncio.gather(
        *(deliver(api, b"{}", secret=f"made-up-{uuid.uuid4()}") for _ in range(flood))
    )

    assert set(answers) <= {401, 503}
    # All of them arrive within a fraction of a second: only the budget is looked up.
    assert answers.count(401) <= 2 * UNKNOWN_SECRET_LOOKUPS_PER_SECOND
    refusals = [r for r in caplog.records if "secret no channel holds" in r.getMessage()]
    assert len(refusals) == answers.count(401)
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_flood_of_made_up_verify_tokens_costs_at_most_the_lookup_budget(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """Meta's handshake is unauthenticated: each made-up token used to cost a query."""
    flood = 20 * VERIFY_LOOKUPS_PER_SECOND
    caplog.set_level(logging.WARNING)

    async def handshake(token: str) -> int:
        params = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1"}
        return (await api.get("/api/webhooks/whatsapp", params=params)).status_code

    answers = await asyncio.gather(*(handshake(f"made-up-{uuid.uuid4()}") for _ in range(flood)))

    assert set(answers) <= {403, 503}
    assert answers.count(403) <= 2 * VERIFY_LOOKUPS_PER_SECOND
    assert await handshake("x" * 5_000) == 403  # refused before any query
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_request_with_no_credential_is_refused_unread_and_its_connection_closed(
    api: Api,
) -> None:
    """Not even valid JSON: the body is never read, and the sender cannot keep sending."""
    response = await api.post(
        "/api/webhooks/whatsapp",
        content=b"\x00 not json " * 50_000,
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 401
    assert response.json() == {
        "error": "unauthorized",
        "detail": "missing or invalid webhook credential",
    }
    assert response.headers["connection"] == "close"


# --- 2. No delivery exhausts shared resources -------------------------------------------------


def statuses_body(count: int, phone_number_id: str = CHANNEL_A) -> bytes:
    recipient = new_phone()
    return raw(
        statuses_payload(
            phone_number_id, [status(new_wamid("wamid.S"), "read", recipient) for _ in range(count)]
        )
    )


async def test_a_delivery_over_the_item_cap_is_refused_whole_with_413(
    api: Api, clients: Clients
) -> None:
    at_cap = statuses_body(MAX_ITEMS_PER_DELIVERY)
    over = statuses_body(MAX_ITEMS_PER_DELIVERY + 1)

    response = await api.post(
        "/api/webhooks/whatsapp",
        content=over,
        headers={"content-type": "application/json", "X-Webhook-Secret": SECRET_A},
    )
    assert response.status_code == 413
    assert response.json()["error"] == "too_many_items"
    assert await stored(clients, over) == 0
    # Unauthenticated, the same body learns nothing about the cap.
    assert await deliver(api, over, secret=None) == 401

    assert await deliver(api, at_cap) == 200
    assert await stored(clients, at_cap) == 1


async def test_a_stored_delivery_over_the_cap_is_dead_lettered_not_half_ingested(
    clients: Clients, settings: Settings
) -> None:
    """Stored before the webhook refused such deliveries: the worker refuses it too."""
    await drain(clients, settings)
    wamids = [new_wamid("wamid.S") for _ in range(34_000)]
    body = raw(statuses_payload(CHANNEL_A, [{"id": w, "status": "read"} for w in wamids]))
    channel = await channel_uuid(clients, CHANNEL_A)
    await inbox.enqueue(
        clients.service_db,
        [NewEvent(channel_id=channel, workspace_id=uuid.UUID(WORKSPACE_A), body=body.decode())],
    )

    await drain(clients, settings)

    (event,) = await events(clients, [body])
    assert event["status"] == "dead"
    assert event["attempts"] == 1
    assert "34000 messages and statuses, over the cap of 1000" in event["last_error"]
    parked = (
        await clients.service_db.table("pending_message_updates")
        .select("id", count=CountMethod.exact)
        .in_("wamid", wamids[:20])
        .execute()
    )
    assert parked.count == 0, "nothing of it was ingested"


async def test_34000_statuses_exhaust_nothing_and_other_tenants_never_see_a_5xx(
    api: Api,
    clients: Clients,
    settings: Settings,
    stack_env: dict[str, str],
    bystander: Tenant,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """34 deliveries at the item cap, claimed together: 34,000 statuses in one round.

    With a lock per wamid the merged batch filled Postgres's shared lock table
    (53200), and every other session needing a lock failed meanwhile.
    """
    await drain(clients, settings)
    bodies = [statuses_body(MAX_ITEMS_PER_DELIVERY) for _ in range(34)]
    for body in bodies:
        assert await deliver(api, body) == 200
    answers: list[int] = []
    done = asyncio.Event()
    rest = httpx.AsyncClient(
        base_url=f"{settings.supabase_url}/rest/v1",
        headers={"apikey": settings.supabase_anon_key, **bystander.headers},
        timeout=30,
    )

    async def agent_lists_conversations() -> None:
        while not done.is_set():
            service = await api.get("/api/conversations", headers=bystander.headers)
            direct = await rest.get("/conversations", params={"select": "id,phone", "limit": "50"})
            answers.extend((service.status_code, direct.status_code))
            if service.status_code == direct.status_code == 200:
                assert len(service.json()["items"]) == len(direct.json()) == 1

    async def work() -> None:
        try:
            await Worker(clients.service_db, settings).drain()
        finally:
            done.set()

    with caplog.at_level(logging.INFO):
        async with rest:
            await asyncio.gather(work(), agent_lists_conversations())

    found = await events(clients, bodies)
    assert [e["status"] for e in found] == ["done"] * 34
    assert all(e["last_error"] is None for e in found)
    assert not [r for r in caplog.records if any(s in r.getMessage() for s in LOCK_TABLE_FULL)]
    assert answers, "the agent listed conversations while the worker ran"
    assert not [a for a in answers if a >= 500]
    parked = (
        await clients.service_db.table("pending_message_updates")
        .select("id", count=CountMethod.exact)
        .eq("workspace_id", WORKSPACE_A)
        .in_("wamid", [first_item(b, "statuses") for b in bodies])
        .execute()
    )
    assert parked.count == 34, "every delivery's statuses were applied or parked"
    assert MAX_ROWS_PER_INGEST < 34 * MAX_ITEMS_PER_DELIVERY


# --- 3. One tenant's poison never slows another --------------------------------------------


def poison_body() -> bytes:
    """A message whose sender is no E.164 number: the database's check refuses it."""
    return raw(envelope(CHANNEL_A, {"messages": [text_message("0123456", "poison")]}))


async def enqueue(clients: Clients, bodies: list[tuple[str, str, bytes]]) -> None:
    channels = {pid: await channel_uuid(clients, pid) for pid in {p for p, _, _ in bodies}}
    for start in range(0, len(bodies), 500):
        await inbox.enqueue(
            clients.service_db,
            [
                NewEvent(channel_id=channels[pid], workspace_id=uuid.UUID(ws), body=body.decode())
                for pid, ws, body in bodies[start : start + 500]
            ],
        )


async def test_poison_of_one_tenant_is_dead_lettered_and_never_fails_another_tenants_batch(
    clients: Clients,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """30 poison events of workspace A among 1,500 valid deliveries of workspace B.

    B's events are ingested in their first batches, with no split and no
    retry, and the poison costs each batch one call beside its ingest, not a
    round trip per event (the timing comparison is `make bench`'s business,
    docs/PERFORMANCE.md).
    """
    await drain(clients, settings)
    batched_fails: list[int] = []
    fail_many = inbox.fail_many

    async def counted_fail_many(db: Any, failures: list[inbox.Failure]) -> dict[int, str]:
        batched_fails.append(len(failures))
        return await fail_many(db, failures)

    monkeypatch.setattr(inbox, "fail_many", counted_fail_many)
    valid = [raw(text_payload(CHANNEL_B, new_phone(), f"hola {n}")) for n in range(1500)]
    poison = [poison_body() for _ in range(30)]
    mixed: list[tuple[str, str, bytes]] = [(CHANNEL_B, WORKSPACE_B, b) for b in valid]
    for n, body in enumerate(poison):
        mixed.insert(n * 50 + 7, (CHANNEL_A, WORKSPACE_A, body))
    await enqueue(clients, mixed)

    with caplog.at_level(logging.WARNING, logger="service.ingest.worker"):
        await drain(clients, settings)

    good = await events(clients, valid)
    assert len(good) == 1500
    assert {(e["status"], e["attempts"]) for e in good} == {("done", 1)}
    bad = await events(clients, poison)
    assert {(e["status"], e["attempts"]) for e in bad} == {("dead", 1)}
    assert all("not a WhatsApp phone number (E.164): '0123456'" in e["last_error"] for e in bad)
    assert not [r for r in caplog.records if "batch of" in r.getMessage()], "no batch failed"
    # Every failure goes through the batched call (the worker has no other).
    assert sum(batched_fails) == 30
    # At most one call per claimed batch that held poison.
    assert len(batched_fails) <= -(-1530 // settings.worker_batch_size)
    stored_messages = (
        await clients.service_db.table("messages")
        .select("id", count=CountMethod.exact)
        .in_("wamid", [first_item(b, "messages") for b in valid[:50]])
        .execute()
    )
    assert stored_messages.count == 50


async def test_a_constraint_the_worker_missed_fails_only_its_own_event(
    clients: Clients, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the database refuses that normalize let through (here: the phone
    rule switched off) fails its own event, dead-lettered with the reason, and
    the other events of its batch are ingested on their first attempt."""
    monkeypatch.setattr(normalize, "normalize_phone", lambda wa_id: f"+{wa_id}")
    await drain(clients, settings)
    valid = [raw(text_payload(CHANNEL_B, new_phone(), f"hola {n}")) for n in range(40)]
    poison = poison_body()
    mixed: list[tuple[str, str, bytes]] = [(CHANNEL_B, WORKSPACE_B, b) for b in valid]
    mixed.insert(17, (CHANNEL_A, WORKSPACE_A, poison))
    await enqueue(clients, mixed)

    report = await Worker(clients.service_db, settings).drain()

    assert (report.ingested, report.failed) == (40, 1)
    assert {(e["status"], e["attempts"]) for e in await events(clients, valid)} == {("done", 1)}
    (bad,) = await events(clients, [poison])
    assert (bad["status"], bad["attempts"]) == ("dead", 1)
    assert "23514" in bad["last_error"] or "check constraint" in bad["last_error"]
