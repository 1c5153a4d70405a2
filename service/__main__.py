"""Command line: `python -m service api|worker|channel|events|dev-token`."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from service.logs import configure_logging
from service.settings import Settings, SettingsError


def run_api(settings: Settings) -> None:
    import uvicorn

    from service.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


async def run_worker(settings: Settings) -> None:
    from service.clients import open_clients
    from service.ingest.worker import Worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_clients(settings) as clients:
        await Worker(clients.service_db, settings).run_forever(stop)


def main(argv: list[str] | None = None) -> int:
    from service import cli

    parser = argparse.ArgumentParser(prog="python -m service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("api", help="serve the HTTP API (uvicorn)")
    sub.add_parser("worker", help="turn stored webhook deliveries into conversations and messages")
    cli.add_commands(sub)
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    if args.command == "api":
        run_api(settings)
        return 0
    import uvloop

    if args.command == "worker":
        uvloop.run(run_worker(settings))
        return 0
    return uvloop.run(cli.run(args, settings))


if __name__ == "__main__":
    sys.exit(main())
