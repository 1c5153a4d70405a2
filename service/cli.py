"""Operator commands: workspaces, members, channels, templates, inbox events, dev tokens.

Every failure is one line on stderr and a non-zero exit (1; 2 for usage and
settings); `python -m service --debug ...` adds the traceback.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import traceback
import uuid
from typing import NoReturn, TextIO

import httpx
from postgrest import APIError

from service.ingest.channels import secret_matches
from service.repositories import channels as channels_repo
from service.repositories import inbox
from service.repositories import workspaces as workspaces_repo
from service.repositories.channels import DuplicateChannel, UnknownChannel
from service.repositories.workspaces import InvalidWorkspace, UnknownUser, UnknownWorkspace
from service.root import Root, open_root
from service.settings import Settings
from service.tokens import mint_access_token
from service.whatsapp.errors import D360Exception


class CliError(Exception):
    """A failure the operator can act on; its message is the one line printed."""


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (argparse prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> OneLineParser:
    """The whole command line, servers included (`python -m service ...`)."""
    parser = OneLineParser(prog="python -m service")
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback when a command fails"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("api", help="serve the HTTP API (uvicorn)")
    sub.add_parser("worker", help="turn stored webhook deliveries into conversations and messages")
    add_commands(sub)
    return parser


def add_commands(sub: argparse._SubParsersAction[OneLineParser]) -> None:
    workspace = sub.add_parser("workspace", help="create and list workspaces")
    workspace_sub = workspace.add_subparsers(dest="workspace_command", required=True)
    add = workspace_sub.add_parser("add", help="create a workspace; prints its id")
    add.add_argument("--name", required=True)
    add.add_argument("--timezone", help="IANA name for display, e.g. Europe/Madrid")
    workspace_sub.add_parser("list", help="list workspaces")

    member = sub.add_parser("member", help="manage who works a workspace's inbox")
    member_sub = member.add_subparsers(dest="member_command", required=True)
    for name, text in (("add", "add a Supabase Auth user (or change their role)"),
                       ("remove", "remove a user from the workspace")):  # fmt: skip
        command = member_sub.add_parser(name, help=text)
        command.add_argument("--workspace-id", required=True, type=uuid.UUID)
        who = command.add_mutually_exclusive_group(required=True)
        who.add_argument("--email", help="the email of an existing Supabase Auth user")
        who.add_argument("--user-id", type=uuid.UUID, help="the user's Supabase Auth id")
        if name == "add":
            command.add_argument("--role", choices=workspaces_repo.ROLES, default="agent")
    listing = member_sub.add_parser("list", help="list a workspace's members")
    listing.add_argument("--workspace-id", required=True, type=uuid.UUID)

    channel = sub.add_parser("channel", help="manage WhatsApp channels")
    channel_sub = channel.add_subparsers(dest="channel_command", required=True)
    add = channel_sub.add_parser("add", help="add a 360dialog channel to a workspace")
    add.add_argument("--workspace-id", required=True, type=uuid.UUID)
    add.add_argument("--phone-number-id", required=True)
    add.add_argument("--display-phone-number", required=True)
    add.add_argument("--api-key", required=True, help="the number's 360dialog D360-API-KEY")
    add.add_argument("--webhook-secret", required=True, help="stored only as its sha256")
    add.add_argument("--app-secret", help="Meta-direct mode: verify X-Hub-Signature-256")
    add.add_argument("--verify-token", help="Meta-direct mode: hub.verify_token")
    channel_sub.add_parser("list", help="list channels (never prints keys)")
    remove = channel_sub.add_parser(
        "remove", help="delete a channel (its conversations and messages stay)"
    )
    remove.add_argument("--phone-number-id", required=True)
    rotate = channel_sub.add_parser(
        "rotate-secret", help="replace a channel's webhook secret and/or 360dialog API key"
    )
    rotate.add_argument("--phone-number-id", required=True)
    rotate.add_argument("--webhook-secret", help="the new secret (register it with 360dialog)")
    rotate.add_argument("--api-key", help="the new D360-API-KEY")
    register = channel_sub.add_parser(
        "register-webhook", help="point 360dialog's webhook for a number at this service"
    )
    register.add_argument("--phone-number-id", required=True)
    register.add_argument("--url", required=True, help="public https URL of /api/webhooks/whatsapp")
    register.add_argument(
        "--webhook-secret", required=True, help="the secret given to `channel add`"
    )

    template = sub.add_parser("template", help="channels' WhatsApp message templates")
    template_sub = template.add_subparsers(dest="template_command", required=True)
    refresh = template_sub.add_parser(
        "refresh", help="re-read templates from 360dialog (the worker also does, periodically)"
    )
    refresh.add_argument(
        "--phone-number-id", help="only this channel (default: every active channel)"
    )

    events = sub.add_parser("events", help="inspect and replay webhook inbox events")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    listing = events_sub.add_parser("list", help="list recent events")
    listing.add_argument("--failed", action="store_true", help="only dead-lettered events")
    listing.add_argument("--limit", type=int, default=50)
    replay = events_sub.add_parser("replay", help="put events back in the queue")
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("event_id", nargs="?", type=int)
    target.add_argument("--all-failed", action="store_true")

    token = sub.add_parser("dev-token", help="mint an access token for a local-stack user")
    token.add_argument("--email", required=True)
    token.add_argument("--ttl", type=int, default=3600, help="seconds")


async def run(
    args: argparse.Namespace,
    settings: Settings,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    try:
        if args.command == "dev-token":
            dev_token(args, settings, out)
        else:
            async with open_root(settings) as root:
                await COMMANDS[(args.command, _subcommand(args))](args, root, out)
    except Exception as exc:  # every failure: one line, and the traceback only on request
        print(f"error: {describe(exc, settings)}", file=err)
        if getattr(args, "debug", False):
            traceback.print_exc(file=err)
        return 1
    return 0


def _subcommand(args: argparse.Namespace) -> str:
    return str(getattr(args, f"{args.command}_command"))


def describe(exc: BaseException, settings: Settings) -> str:
    """One line an operator can act on."""
    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, UnknownWorkspace):
        return f"no workspace with id {exc} (see `workspace list`)"
    if isinstance(exc, UnknownUser):
        return f"no Supabase Auth user {exc} (invite or create the user first)"
    if isinstance(exc, InvalidWorkspace):
        return "the name must be 1-200 characters and the time zone an IANA name"
    if isinstance(exc, DuplicateChannel):
        return f"a channel with phone_number_id {exc} already exists (see `channel list`)"
    if isinstance(exc, UnknownChannel):
        return f"no channel with phone_number_id {exc} (see `channel list`)"
    if isinstance(exc, D360Exception):
        return f"360dialog refused: {exc}"
    if isinstance(exc, httpx.TransportError):
        return f"cannot reach {settings.supabase_url} or 360dialog ({type(exc).__name__})"
    if isinstance(exc, APIError):
        return f"the database refused the request ({exc.code}): {exc.message}"
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


# --- commands ------------------------------------------------------------------------------


async def workspace_add(args: argparse.Namespace, root: Root, out: TextIO) -> None:
    created = await workspaces_repo.add(
        root.clients.service_db, name=args.name, timezone=args.timezone
    )
    print(f"added workspace {created.id} ({created.name}, {created.timezone})", file=out)


async def workspace_list(_: argparse.Namespace, root: Root, out: TextIO) -> None:
    for ws in await workspaces_repo.list_all(root.clients.service_db):
        print(f"{ws.id}  {ws.name}  {ws.timezone}  created={ws.created_at.isoformat()}", file=out)


async def _user_id(args: argparse.Namespace, root: Root) -> uuid.UUID:
    if args.user_id is not None:
        user_id: uuid.UUID = args.user_id
        return user_id
    return await workspaces_repo.user_id_for_email(root.clients.service_db, args.email)


async def member_add(args: argparse.Namespace, root: Root, out: TextIO) -> None:
    user_id = await _user_id(args, root)
    await workspaces_repo.add_member(root.clients.service_db, args.workspace_id, user_id, args.role)
    print(f"{args.email or user_id} is now {args.role} of workspace {args.workspace_id}", file=out)


async def member_remove(args: argparse.Namespace, root: Root, out: TextIO) -> None:
    db = root.clients.service_db
    user_id = await _user_id(args, root)
    if not await workspaces_repo.remove_member(db, args.workspace_id, user_id):
        if not await workspaces_repo.exists(db, args.workspace_id):
            raise UnknownWorkspace(args.workspace_id)
        raise CliError(f"{args.email or user_id} is not a member of workspace {args.workspace_id}")
    print(f"removed {args.email or user_id} from workspace {args.workspace_id}", file=out)


async def member_list(args: argparse.Namespace, root: Root, out: TextIO) -> None:
    db = root.clients.service_db
    if not await workspaces_repo.exists(db, args.workspace_id):
        raise UnknownWorkspace(args.workspace_id)
    for m in await workspaces_repo.members(db, args.workspace_id):
        print(
            f"{m.user_id}  {m.email or '-'}  {m.role}  since={m.created_at.isoformat()}", file=out
        )


async def channel_add(args: argparse.Namespace, root: Root, out: TextIO) -> None:
    created = await channels_repo.add(
        root.clients.service_db,
        workspace_id=args.workspace_id,
        phone_number_id=args.phone_number_id,
        display_phone_number=args.display_phone_number,
        api_key=args.api_key,
        webhook_secret=args.webhook_secret,
        app_secret=args.app_secret,
        verify_token=args.verify_token,
    )
    print(f"added channel {created.id} for {created.phone_number_id}", file=out)


async def channel_list(_: argparse.Namespace, root: Root, out: TextIO) -> None:
    for ch in await channels_repo.list_all(root.clients.service_db):
        state = "active" if ch.is_active else "inactive"
        print(
            f"{ch.id}  {ch.phone_number_id}  {ch.display_phone_number}  "
            f"workspace={ch.workspace_id}  {state}",
            file=out,
        )


async def channel_remove(args: argparse.Namespace, root: Root, out: TextIO) -> None:
    removed = await channels_repo.remove(root.clients.service_db, args.phone_number_id)
    print(
        f"removed channel {removed.id} ({removed.phone_number_id}); its conversations stay",
        file=out,
    )


async def channel_rotate(args: argparse.Namespace, root: Root, out: TextIO) -> None:
    if args.webhook_secret is None and args.api_key is None:
        raise CliError("give --webhook-secret, --api-key or both")
    await channels_repo.rotate(
        root.clients.service_db,
        args.phone_number_id,
        webhook_secret=args.webhook_secret,
        api_key=args.api_key,
    )
    what = " and ".join(
        w
        for w, given in (("webhook secret", args.webhook_secret), ("API key", args.api_key))
        if given
    )
    print(f"rotated the {what} of {args.phone_number_id} (the API uses it within 30 s)", file=out)


async def channel_register_webhook(args: argparse.Namespace, root: Root, out: TextIO) -> None:
    if not args.url.startswith("https://") or len(args.url) <= len("https://"):
        raise CliError("--url must be an https:// URL: 360dialog delivers only over https")
    found = await channels_repo.fetch_auth(root.clients.service_db, [args.phone_number_id])
    if not found:
        raise UnknownChannel(args.phone_number_id)
    channel = found[0]
    if not secret_matches(channel, args.webhook_secret):
        # Registering a secret the webhook would refuse loses every delivery.
        raise CliError("--webhook-secret is not this channel's secret")
    header = root.settings.webhook_secret_header
    await root.d360.set_webhook(channel.api_key, args.url, {header: args.webhook_secret})
    print(f"360dialog now delivers {args.phone_number_id} to {args.url}", file=out)


async def template_refresh(args: argparse.Namespace, root: Root, out: TextIO) -> None:
    if args.phone_number_id is not None:
        stored = await root.templates.refresh(args.phone_number_id)
        print(f"{args.phone_number_id}: {stored} template(s)", file=out)
        return
    report = await root.templates.refresh_all()
    for phone_number_id, stored in report.stored.items():
        print(f"{phone_number_id}: {stored} template(s)", file=out)
    if report.failed:
        failed = "; ".join(f"{pid}: {why}" for pid, why in report.failed.items())
        raise CliError(f"{len(report.failed)} channel(s) not refreshed: {failed}")


async def events_list(args: argparse.Namespace, root: Root, out: TextIO) -> None:
    status = "dead" if args.failed else None
    for ev in await inbox.list_events(root.clients.service_db, status=status, limit=args.limit):
        error = f"  {ev.last_error}" if ev.last_error else ""
        print(
            f"{ev.id}  {ev.status}  attempts={ev.attempts}  {ev.received_at.isoformat()}{error}",
            file=out,
        )


async def events_replay(args: argparse.Namespace, root: Root, out: TextIO) -> None:
    db = root.clients.service_db
    event_id = None if args.all_failed else args.event_id
    count = await inbox.replay(db, event_id=event_id)
    if event_id is not None and count == 0:
        event = await inbox.find_event(db, event_id)
        if event is None:
            raise CliError(f"no event {event_id} (see `events list`)")
        raise CliError(f"event {event_id} is being processed now; replay it once it is done")
    print(f"replayed {count} event(s)", file=out)


COMMANDS = {
    ("workspace", "add"): workspace_add,
    ("workspace", "list"): workspace_list,
    ("member", "add"): member_add,
    ("member", "remove"): member_remove,
    ("member", "list"): member_list,
    ("channel", "add"): channel_add,
    ("channel", "list"): channel_list,
    ("channel", "remove"): channel_remove,
    ("channel", "rotate-secret"): channel_rotate,
    ("channel", "register-webhook"): channel_register_webhook,
    ("template", "refresh"): template_refresh,
    ("events", "list"): events_list,
    ("events", "replay"): events_replay,
}


def dev_token(args: argparse.Namespace, settings: Settings, out: TextIO) -> None:
    """Local stack only: Supabase Auth is not running there to issue tokens."""
    result = subprocess.run(  # noqa: S603
        ["psql", settings.database_url, "-X", "-At", "-v", f"email={args.email}", "-f", "-"],  # noqa: S607
        input="select id from auth.users where email = :'email';",
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        # Never the command line: it holds the database password.
        reason = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise CliError(f"could not look the user up: {reason}")
    user_id = result.stdout.strip()
    if not user_id:
        raise CliError(f"no user with email {args.email}")
    print(
        mint_access_token(
            settings.supabase_jwt_secret, user_id, email=args.email, ttl_seconds=args.ttl
        ),
        file=out,
    )
