"""Command line: `python -m service api|worker|...`."""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("api", help="serve the HTTP API (uvicorn)")
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


if __name__ == "__main__":
    sys.exit(main())
