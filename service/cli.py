"""Operator commands: channels, inbox events, local dev tokens."""

from __future__ import annotations

import argparse
import subprocess
import sys
import uuid
from typing import TextIO

from service.clients import open_clients
from service.ingest.channels import secret_matches
from service.repositories import channels as channels_repo
from service.repositories import inbox
from service.settings import Settings
from service.tokens import mint_access_token
from service.whatsapp.d360 import D360Client


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    register = channel_sub.add_parser(
        "register-webhook", help="point 360dialog's webhook for a number at this service"
    )
    register.add_argument("--phone-number-id", required=True)
    register.add_argument("--url", required=True, help="public https URL of /api/webhooks/whatsapp")
    register.add_argument(
        "--webhook-secret", required=True, help="the secret given to `channel add`"
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


async def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    if args.command == "dev-token":
        return dev_token(args, settings, out)
    async with open_clients(settings) as clients:
        db = clients.service_db
        if args.command == "channel" and args.channel_command == "add":
            created = await channels_repo.add(
                db,
                workspace_id=args.workspace_id,
                phone_number_id=args.phone_number_id,
                display_phone_number=args.display_phone_number,
                api_key=args.api_key,
                webhook_secret=args.webhook_secret,
                app_secret=args.app_secret,
                verify_token=args.verify_token,
            )
            print(f"added channel {created.id} for {created.phone_number_id}", file=out)
        elif args.command == "channel" and args.channel_command == "list":
            for ch in await channels_repo.list_all(db):
                state = "active" if ch.is_active else "inactive"
                print(
                    f"{ch.id}  {ch.phone_number_id}  {ch.display_phone_number}  "
                    f"workspace={ch.workspace_id}  {state}",
                    file=out,
                )
        elif args.command == "channel" and args.channel_command == "register-webhook":
            key = await channels_repo.fetch_key(db, args.phone_number_id)
            if key is None:
                print(f"error: no channel with phone_number_id {args.phone_number_id}", file=out)
                return 1
            (auth,) = await channels_repo.fetch_auth(db, [args.phone_number_id])
            if not secret_matches(auth, args.webhook_secret):
                # Registering a secret the webhook would refuse loses every delivery.
                print("error: --webhook-secret is not this channel's secret", file=out)
                return 1
            d360 = D360Client(clients.d360_http, base_url=settings.d360_base_url)
            await d360.set_webhook(
                key.api_key, args.url, {settings.webhook_secret_header: args.webhook_secret}
            )
            print(f"360dialog now delivers {args.phone_number_id} to {args.url}", file=out)
        elif args.command == "events" and args.events_command == "list":
            status = "dead" if args.failed else None
            for ev in await inbox.list_events(db, status=status, limit=args.limit):
                error = f"  {ev.last_error}" if ev.last_error else ""
                print(
                    f"{ev.id}  {ev.status}  attempts={ev.attempts}  "
                    f"{ev.received_at.isoformat()}{error}",
                    file=out,
                )
        elif args.command == "events" and args.events_command == "replay":
            count = await inbox.replay(db, event_id=None if args.all_failed else args.event_id)
            print(f"replayed {count} event(s)", file=out)
    return 0


def dev_token(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Local stack only: Supabase Auth is not running there to issue tokens."""
    if not settings.database_url or not settings.supabase_jwt_secret:
        print("error: dev-token needs DATABASE_URL and SUPABASE_JWT_SECRET (local stack)", file=out)
        return 2
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
        print(f"error: could not look the user up: {reason}", file=out)
        return 1
    user_id = result.stdout.strip()
    if not user_id:
        print(f"error: no user with email {args.email}", file=out)
        return 1
    print(
        mint_access_token(
            settings.supabase_jwt_secret, user_id, email=args.email, ttl_seconds=args.ttl
        ),
        file=out,
    )
    return 0
