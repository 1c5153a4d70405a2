"""The operator CLI against the real stack (360dialog faked)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator

import jwt
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pytest_httpx import HTTPXMock

from scripts.fake360 import fake_360dialog
from service import cli
from service.clients import Clients
from service.settings import Settings
from tests.support.inbox import AGENT_A, WORKSPACE_B, deliver
from tests.support.payloads import new_phone, text_payload
from tests.support.processes import free_port_block
from tests.support.rows import rows
from tests.support.stack import psql


async def run(argv: list[str], settings: Settings) -> tuple[int, str]:
    """Exit code and what the command printed (stdout, then stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = await cli.run(cli.build_parser().parse_args(argv), settings, out, err)
    return code, out.getvalue() + err.getvalue()


def new_phone_number_id() -> str:
    return str(400000000000000 + uuid.uuid4().int % 10**12)


async def test_channel_add_stores_only_the_secret_hash_and_list_hides_keys(
    settings: Settings, clients: Clients
) -> None:
    pid = new_phone_number_id()
    code, out = await run(
        [
            "channel", "add", "--workspace-id", WORKSPACE_B, "--phone-number-id", pid,
            "--display-phone-number", "+57 601 555 0100", "--api-key", "key-xyz",
            "--webhook-secret", "s3cret-value",
        ],
        settings,
    )  # fmt: skip
    assert code == 0
    assert pid in out

    stored = rows(
        await clients.service_db.table("whatsapp_channels")
        .select("api_key,webhook_secret_hash,workspace_id")
        .eq("phone_number_id", pid)
        .execute()
    )
    assert stored[0]["api_key"] == "key-xyz"
    assert stored[0]["webhook_secret_hash"] != "s3cret-value"
    assert len(stored[0]["webhook_secret_hash"]) == 64

    code, listing = await run(["channel", "list"], settings)
    assert code == 0
    assert pid in listing
    assert "key-xyz" not in listing
    assert "s3cret" not in listing


async def test_register_webhook_sends_the_secret_header_to_360dialog(
    settings: Settings, httpx_mock: HTTPXMock
) -> None:
    pid = new_phone_number_id()
    await run(
        [
            "channel", "add", "--workspace-id", WORKSPACE_B, "--phone-number-id", pid,
            "--display-phone-number", "+57 601 555 0101", "--api-key", "key-reg",
            "--webhook-secret", "reg-secret",
        ],
        settings,
    )  # fmt: skip
    httpx_mock.add_response(
        method="POST", url=f"{settings.d360_base_url}/v1/configs/webhook", json={"url": "ok"}
    )

    code, out = await run(
        [
            "channel", "register-webhook", "--phone-number-id", pid,
            "--url", "https://inbox.example.com/api/webhooks/whatsapp",
            "--webhook-secret", "reg-secret",
        ],
        settings,
    )  # fmt: skip

    assert code == 0, out
    (request,) = httpx_mock.get_requests()
    assert request.headers["D360-API-KEY"] == "key-reg"
    assert json.loads(request.content) == {
        "url": "https://inbox.example.com/api/webhooks/whatsapp",
        "headers": {"X-Webhook-Secret": "reg-secret"},
    }


async def test_register_webhook_refuses_a_secret_the_webhook_would_reject(
    settings: Settings, httpx_mock: HTTPXMock
) -> None:
    pid = new_phone_number_id()
    await run(
        [
            "channel", "add", "--workspace-id", WORKSPACE_B, "--phone-number-id", pid,
            "--display-phone-number", "+57 601 555 0102", "--api-key", "k",
            "--webhook-secret", "right",
        ],
        settings,
    )  # fmt: skip

    code, out = await run(
        [
            "channel", "register-webhook", "--phone-number-id", pid,
            "--url", "https://inbox.example.com/api/webhooks/whatsapp", "--webhook-secret", "wrong",
        ],
        settings,
    )  # fmt: skip

    assert code == 1
    assert "not this channel's secret" in out
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize("email", ["agent-a@example.com", "agent-b@example.com"])
async def test_dev_token_mints_a_verifiable_token_for_a_seeded_user(
    settings: Settings, email: str
) -> None:
    code, out = await run(["dev-token", "--email", email], settings)

    assert code == 0
    claims = jwt.decode(
        out.strip(), settings.supabase_jwt_secret, algorithms=["HS256"], audience="authenticated"
    )
    assert claims["email"] == email
    assert claims["role"] == "authenticated"
    uuid.UUID(claims["sub"])


async def test_dev_token_without_a_database_never_prints_the_password(settings: Settings) -> None:
    broken = msgspec.structs.replace(
        settings, database_url="postgresql://postgres:s3cretpw@127.0.0.1:1/postgres"
    )
    code, out = await run(["dev-token", "--email", "agent-a@example.com"], broken)

    assert code == 1
    assert "could not look the user up" in out
    assert "s3cretpw" not in out


async def test_dev_token_for_an_unknown_email_fails(
    settings: Settings,
) -> None:
    code, out = await run(["dev-token", "--email", "nobody@example.com"], settings)

    assert code == 1
    assert "no user" in out


@pytest.fixture
def local_fake_360dialog() -> Iterator[str]:
    # A sync fixture: the fake runs its own loop in a thread, set up outside the test's loop.
    with fake_360dialog(free_port_block(1, 59100)) as d360_url:
        yield d360_url


async def test_register_webhook_against_the_local_fake_360dialog(
    settings: Settings, local_fake_360dialog: str
) -> None:
    """The README's step, run against what `make run` serves on PORT+1."""
    pid = new_phone_number_id()
    local = msgspec.structs.replace(settings, d360_base_url=local_fake_360dialog)
    code, out = await run(
        [
            "channel", "add", "--workspace-id", WORKSPACE_B, "--phone-number-id", pid,
            "--display-phone-number", "+57 601 555 0103", "--api-key", "key-local",
            "--webhook-secret", "local-secret",
        ],
        local,
    )  # fmt: skip
    assert code == 0, out

    code, out = await run(
        [
            "channel", "register-webhook", "--phone-number-id", pid,
            "--url", "https://inbox.example.com/api/webhooks/whatsapp",
            "--webhook-secret", "local-secret",
        ],
        local,
    )  # fmt: skip

    assert code == 0, out
    assert "https://inbox.example.com/api/webhooks/whatsapp" in out


# --- errors: one line, non-zero exit, nothing written ----------------------------------------


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


async def channel_count(clients: Clients, pid: str) -> int:
    return len(
        rows(
            await clients.service_db.table("whatsapp_channels")
            .select("id")
            .eq("phone_number_id", pid)
            .execute()
        )
    )


async def test_channel_add_to_an_unknown_workspace_is_one_line(
    settings: Settings, clients: Clients
) -> None:
    pid = new_phone_number_id()
    missing = str(uuid.uuid4())
    code, out = await run(
        [
            "channel", "add", "--workspace-id", missing, "--phone-number-id", pid,
            "--display-phone-number", "+57 601 555 0103", "--api-key", "k", "--webhook-secret", "s",
        ],
        settings,
    )  # fmt: skip
    assert code == 1
    assert one_line(out) == f"error: no workspace with id {missing} (see `workspace list`)"
    assert await channel_count(clients, pid) == 0


async def test_a_duplicate_phone_number_id_is_one_line(settings: Settings) -> None:
    argv = [
        "channel", "add", "--workspace-id", WORKSPACE_B, "--phone-number-id", new_phone_number_id(),
        "--display-phone-number", "+57 601 555 0104", "--api-key", "k", "--webhook-secret", "s",
    ]  # fmt: skip
    assert (await run(argv, settings))[0] == 0
    code, out = await run(argv, settings)
    assert code == 1
    assert "already exists" in one_line(out)


async def test_register_webhook_refuses_a_plain_http_url(
    settings: Settings, httpx_mock: HTTPXMock
) -> None:
    code, out = await run(
        [
            "channel", "register-webhook", "--phone-number-id", "100000000000001",
            "--url", "http://inbox.example.com/api/webhooks/whatsapp", "--webhook-secret", "x",
        ],
        settings,
    )  # fmt: skip
    assert code == 1
    assert "--url must be an https:// URL" in one_line(out)
    assert httpx_mock.get_requests() == []


async def test_replaying_an_unknown_event_is_an_error(settings: Settings) -> None:
    code, out = await run(["events", "replay", "999999999"], settings)
    assert code == 1
    assert one_line(out) == "error: no event 999999999 (see `events list`)"


async def test_replay_all_failed_requeues_exactly_the_dead_events(
    settings: Settings, clients: Clients
) -> None:
    database_url = settings.database_url
    ids = psql(
        database_url,
        "insert into public.webhook_events (workspace_id, body, status, attempts, last_error) "
        f"select '{WORKSPACE_B}', 'cli-replay-' || gen_random_uuid(), s, 8, 'boom' "
        "from unnest(array['dead', 'dead', 'done']) s returning id",
    ).split()
    dead_before = int(
        psql(database_url, "select count(*) from webhook_events where status = 'dead'")
    )
    assert dead_before >= 2

    code, out = await run(["events", "replay", "--all-failed"], settings)

    assert code == 0
    assert out.strip() == f"replayed {dead_before} event(s)"
    after = psql(
        database_url,
        "select string_agg(status || ':' || attempts, ',' order by id) from webhook_events "
        f"where id in ({','.join(ids)})",
    )
    assert after == "pending:0,pending:0,done:8"
    # Set aside, so that a worker in another test does not try them.
    psql(database_url, f"delete from webhook_events where id in ({','.join(ids)})")


async def test_channel_add_in_meta_direct_mode_stores_the_app_secret_and_verify_token(
    settings: Settings, clients: Clients, api: AsyncTestClient[Litestar]
) -> None:
    pid = new_phone_number_id()
    code, _ = await run(
        [
            "channel", "add", "--workspace-id", WORKSPACE_B, "--phone-number-id", pid,
            "--display-phone-number", "+57 601 555 0105", "--api-key", "k", "--webhook-secret", "s",
            "--app-secret", "meta-app-secret", "--verify-token", f"verify-{pid}",
        ],
        settings,
    )  # fmt: skip
    assert code == 0
    stored = rows(
        await clients.service_db.table("whatsapp_channels")
        .select("app_secret,verify_token")
        .eq("phone_number_id", pid)
        .execute()
    )
    assert stored == [{"app_secret": "meta-app-secret", "verify_token": f"verify-{pid}"}]
    handshake = await api.get(
        "/api/webhooks/whatsapp",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": f"verify-{pid}",
            "hub.challenge": "42",
        },
    )
    assert (handshake.status_code, handshake.text) == (200, "42")


# --- workspaces and members ---------------------------------------------------------------


async def test_workspace_and_member_lifecycle_without_sql(settings: Settings) -> None:
    name = f"Tienda {uuid.uuid4().hex[:8]}"
    code, out = await run(
        ["workspace", "add", "--name", name, "--timezone", "Europe/Madrid"], settings
    )
    assert code == 0
    workspace_id = out.split()[2]
    uuid.UUID(workspace_id)
    code, listing = await run(["workspace", "list"], settings)
    assert code == 0
    assert f"{workspace_id}  {name}  Europe/Madrid" in listing

    code, out = await run(
        ["member", "add", "--workspace-id", workspace_id, "--email", "Agent-B@example.com"],
        settings,
    )
    assert code == 0, out
    code, out = await run(
        ["member", "add", "--workspace-id", workspace_id, "--user-id", AGENT_A, "--role", "admin"],
        settings,
    )
    assert code == 0, out
    code, listing = await run(["member", "list", "--workspace-id", workspace_id], settings)
    assert code == 0
    lines = sorted(line.split("  ")[:3] for line in listing.strip().splitlines())
    assert lines == [
        [AGENT_A, "agent-a@example.com", "admin"],
        ["b0000000-0000-4000-8000-0000000000b1", "agent-b@example.com", "agent"],
    ]

    # Adding again changes the role.
    code, _ = await run(
        ["member", "add", "--workspace-id", workspace_id, "--user-id", AGENT_A, "--role", "owner"],
        settings,
    )
    assert code == 0
    _, listing = await run(["member", "list", "--workspace-id", workspace_id], settings)
    assert f"{AGENT_A}  agent-a@example.com  owner" in listing

    code, _ = await run(
        ["member", "remove", "--workspace-id", workspace_id, "--email", "agent-b@example.com"],
        settings,
    )
    assert code == 0
    code, out = await run(
        ["member", "remove", "--workspace-id", workspace_id, "--email", "agent-b@example.com"],
        settings,
    )
    assert code == 1
    assert "is not a member" in one_line(out)
    _, listing = await run(["member", "list", "--workspace-id", workspace_id], settings)
    assert "agent-b@example.com" not in listing


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["member", "add", "--workspace-id", WORKSPACE_B, "--email", "nobody@example.com"],
         "error: no Supabase Auth user nobody@example.com"),
        (["member", "add", "--workspace-id", WORKSPACE_B, "--user-id", str(uuid.UUID(int=7))],
         f"error: no Supabase Auth user {uuid.UUID(int=7)}"),
        (["member", "add", "--workspace-id", str(uuid.UUID(int=9)), "--user-id", AGENT_A],
         f"error: no workspace with id {uuid.UUID(int=9)}"),
        (["member", "list", "--workspace-id", str(uuid.UUID(int=9))],
         f"error: no workspace with id {uuid.UUID(int=9)}"),
        (["member", "remove", "--workspace-id", str(uuid.UUID(int=9)), "--user-id", AGENT_A],
         f"error: no workspace with id {uuid.UUID(int=9)}"),
        (["workspace", "add", "--name", "x", "--timezone", "Mars/Olympus"],
         "error: the name must be 1-200 characters and the time zone an IANA name"),
        (["channel", "remove", "--phone-number-id", "999999999999999"],
         "error: no channel with phone_number_id 999999999999999"),
        (["channel", "rotate-secret", "--phone-number-id", "999999999999999", "--api-key", "k"],
         "error: no channel with phone_number_id 999999999999999"),
        (["channel", "rotate-secret", "--phone-number-id", "100000000000001"],
         "error: give --webhook-secret, --api-key or both"),
    ],
)  # fmt: skip
async def test_operator_mistakes_are_one_line(
    settings: Settings, argv: list[str], says: str
) -> None:
    code, out = await run(argv, settings)
    assert code == 1
    assert one_line(out).startswith(says)


async def test_rotate_secret_and_remove_a_channel(
    settings: Settings, clients: Clients, api: AsyncTestClient[Litestar]
) -> None:
    pid = new_phone_number_id()
    await run(
        [
            "channel", "add", "--workspace-id", WORKSPACE_B, "--phone-number-id", pid,
            "--display-phone-number", "+57 601 555 0106", "--api-key", "old-key",
            "--webhook-secret", "old-secret",
        ],
        settings,
    )  # fmt: skip
    code, out = await run(
        [
            "channel", "rotate-secret", "--phone-number-id", pid,
            "--webhook-secret", "new-secret", "--api-key", "new-key",
        ],
        settings,
    )  # fmt: skip
    assert code == 0, out
    assert "new-secret" not in out
    assert "new-key" not in out
    # A fresh API (fresh channel cache) accepts only the new secret.
    body = text_payload(pid, new_phone(), "tras rotar")
    assert await deliver(api, body, secret="old-secret") == 401
    assert await deliver(api, body, secret="new-secret") == 200
    (stored,) = rows(
        await clients.service_db.table("whatsapp_channels")
        .select("api_key")
        .eq("phone_number_id", pid)
        .execute()
    )
    assert stored["api_key"] == "new-key"

    code, out = await run(["channel", "remove", "--phone-number-id", pid], settings)
    assert code == 0
    assert await channel_count(clients, pid) == 0
    _, listing = await run(["channel", "list"], settings)
    assert pid not in listing


@pytest.mark.parametrize("key", ["sb_secret_not-this-one", "not-a-key"])
async def test_a_wrong_service_key_is_named(settings: Settings, key: str) -> None:
    wrong = msgspec.structs.replace(settings, supabase_service_role_key=key)
    code, out = await run(["workspace", "list"], wrong)
    assert code == 1
    assert one_line(out) == (
        f"error: {settings.supabase_url} refused SUPABASE_SERVICE_ROLE_KEY (PGRST301): set the "
        "project's service_role (secret) key (Project Settings > API)"
    )
