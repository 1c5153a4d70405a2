"""Command line: `python -m service api|worker|workspace|member|channel|events|dev-token`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from service.logs import configure_logging
from service.settings import Need, Settings, SettingsError

log = logging.getLogger("service")


def run_api(settings: Settings) -> None:
    import uvicorn

    from service.app import create_app

    # On SIGTERM uvicorn stops accepting, finishes the requests it accepted
    # (up to SHUTDOWN_TIMEOUT_SECONDS), then runs the lifespan's shutdown,
    # which writes what the webhook ingress still holds.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        loop="uvloop",
        http="httptools",
    )


async def run_worker(settings: Settings) -> None:
    from service.root import open_root

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_root(settings) as root:
        log.info("worker started")
        # After `stop` the worker finishes the batch it holds (and one claimed
        # ahead) before returning; nothing stays leased.
        await root.worker().run_forever(stop)
    log.info("worker stopped")


def needs(args: argparse.Namespace) -> tuple[Need, ...]:
    if args.command == "api":
        return (Need.AGENT_AUTH,)
    if args.command == "dev-token":
        return (Need.LOCAL_DATABASE,)
    return (Need.DATABASE,)


def main(argv: list[str] | None = None) -> int:
    from service import cli

    args = cli.build_parser().parse_args(argv)
    try:
        settings = Settings.load().require(*needs(args))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, secrets=settings.secrets)
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
