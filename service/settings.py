"""The one place that reads the environment (and `.env`).

`Settings.load()` reads the process environment over a `.env` file in the
working directory: a variable set in the environment wins, an empty value
counts as unset. Parsing checks every value's form; what a process needs
(the API, the worker, a CLI command) is checked by `Settings.require`, so
each entry point fails at start-up with one line naming the variable.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

DEFAULT_D360_BASE_URL = "https://waba-v2.360dialog.io"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message is one line naming it and the fix."""


class Need(enum.Enum):
    """What an entry point uses, checked before it starts."""

    DATABASE = "database"  # PostgREST as the service role
    AGENT_AUTH = "agent_auth"  # the agent API: anon key and a way to verify tokens
    LOCAL_DATABASE = "local_database"  # dev-token: psql and the JWT secret


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    supabase_url: str = ""
    supabase_service_role_key: str = ""
    supabase_anon_key: str = ""
    supabase_jwt_secret: str = ""
    supabase_jwks_url: str = ""
    # Local stack only (dev-token looks users up in auth.users).
    database_url: str = ""
    d360_base_url: str = DEFAULT_D360_BASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: str = "text"
    # Browser origins allowed to call /api/* (comma-separated in the environment).
    cors_allowed_origins: tuple[str, ...] = ()
    webhook_secret_header: str = "X-Webhook-Secret"  # noqa: S105 (a header name)
    webhook_max_body_bytes: int = 1024 * 1024
    webhook_batch_window_ms: float = 2.0
    worker_batch_size: int = 300
    worker_idle_poll_seconds: float = 0.5
    worker_max_attempts: int = 8
    worker_lease_seconds: int = 60
    worker_prune_done_after_hours: int = 72
    # How often the worker re-reads every channel's templates from 360dialog
    # (Meta may approve, pause or disable one at any time; a template error on
    # send also refreshes that channel at once).
    template_refresh_seconds: int = 3600
    http_timeout_seconds: float = 10.0
    # How long a stopping API waits for accepted requests (then it closes them).
    shutdown_timeout_seconds: float = 30.0

    def __repr__(self) -> str:
        # Secrets never reach logs through a repr.
        return f"Settings(supabase_url={self.supabase_url!r}, port={self.port})"

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, dotenv: Path | None = None) -> Settings:
        """The environment over `.env` (in the working directory unless given)."""
        env = os.environ if env is None else env
        path = Path(".env") if dotenv is None else dotenv
        merged = read_dotenv(path)
        merged.update({k: v for k, v in env.items() if v != ""})
        return cls.from_env(merged)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Exactly these variables (no `.env`), each checked for its form."""
        fields: dict[str, Any] = {}
        for name in cls.__struct_fields__:
            raw = env.get(name.upper())
            if raw is None or raw == "":
                continue
            fields[name] = _parse(name, raw.strip())
        return msgspec.convert(fields, cls)

    def require(self, *needs: Need) -> Settings:
        """Raises SettingsError for the first missing setting these needs call for."""
        _require_url("SUPABASE_URL", self.supabase_url)
        for need in needs:
            if need is Need.DATABASE or need is Need.AGENT_AUTH:
                _require("SUPABASE_SERVICE_ROLE_KEY", self.supabase_service_role_key, _SERVICE_FIX)
            if need is Need.AGENT_AUTH:
                _require("SUPABASE_ANON_KEY", self.supabase_anon_key, _ANON_FIX)
                if not self.supabase_jwt_secret and not self.supabase_jwks_url:
                    raise SettingsError(
                        "neither SUPABASE_JWT_SECRET nor SUPABASE_JWKS_URL is set: agents' tokens "
                        "could not be verified; set one (Project Settings > API) in .env or the "
                        "environment"
                    )
            if need is Need.LOCAL_DATABASE:
                _require("DATABASE_URL", self.database_url, "the local stack's stack.env has it")
                _require(
                    "SUPABASE_JWT_SECRET",
                    self.supabase_jwt_secret,
                    "the local stack's stack.env has it",
                )
        return self

    def require_service_role(self) -> str:
        self.require(Need.DATABASE)
        return self.supabase_service_role_key

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a log line."""
        values = (
            self.supabase_service_role_key,
            self.supabase_anon_key,
            self.supabase_jwt_secret,
        )
        return tuple(v for v in values if len(v) >= 8)


_SERVICE_FIX = "put the project's service_role (secret) key in .env or the environment"
_ANON_FIX = "put the project's anon (publishable) key in .env or the environment"


def _require(variable: str, value: str, fix: str) -> None:
    if not value:
        raise SettingsError(f"{variable} is not set: {fix} (see .env.example)")


def _require_url(variable: str, value: str) -> None:
    _require(variable, value, "set it to the project URL, e.g. https://<ref>.supabase.co")


_INTS = {
    "port": (0, 65535),
    "webhook_max_body_bytes": (1, 64 * 1024 * 1024),
    "worker_batch_size": (1, 10_000),
    "worker_max_attempts": (0, 1000),
    "worker_lease_seconds": (1, 86_400),
    "worker_prune_done_after_hours": (1, 24 * 365),
    "template_refresh_seconds": (1, 7 * 86_400),
}
_FLOATS = {
    "webhook_batch_window_ms": (0.0, 1000.0),
    "worker_idle_poll_seconds": (0.001, 3600.0),
    "http_timeout_seconds": (0.1, 600.0),
    "shutdown_timeout_seconds": (0.0, 3600.0),
}
_URLS = ("supabase_url", "supabase_jwks_url", "d360_base_url")


def _parse(name: str, raw: str) -> Any:
    variable = name.upper()
    if name in _INTS:
        low, high = _INTS[name]
        try:
            number = int(raw)
        except ValueError:
            raise SettingsError(f"{variable}={raw!r} is not a whole number") from None
        if not low <= number <= high:
            raise SettingsError(f"{variable}={number} is out of range: use {low}..{high}")
        return number
    if name in _FLOATS:
        lowf, highf = _FLOATS[name]
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{variable}={raw!r} is not a number") from None
        if not lowf <= value <= highf:
            raise SettingsError(f"{variable}={raw} is out of range: use {lowf:g}..{highf:g}")
        return value
    if name in _URLS and not raw.startswith(("http://", "https://")):
        raise SettingsError(f"{variable} must be an http(s) URL, e.g. https://<host>")
    if name == "log_level":
        if raw.upper() not in LOG_LEVELS:
            choices = ", ".join(level.lower() for level in LOG_LEVELS)
            raise SettingsError(f"LOG_LEVEL={raw!r} is not a level: use one of {choices}")
        return raw.upper()
    if name == "log_format":
        if raw.lower() not in LOG_FORMATS:
            raise SettingsError(f"LOG_FORMAT={raw!r} is not a format: use text or json")
        return raw.lower()
    if name == "cors_allowed_origins":
        origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
        for origin in origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise SettingsError(
                    f"CORS_ALLOWED_ORIGINS: {origin!r} is not an origin like https://app.example.com"
                )
        return origins
    if name == "webhook_secret_header" and not _is_token(raw):
        raise SettingsError(f"WEBHOOK_SECRET_HEADER={raw!r} is not an HTTP header name")
    return raw


def _is_token(value: str) -> bool:
    allowed = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return bool(value) and set(value) <= allowed


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; `#` comments, `export ` and matching quotes are allowed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key.isidentifier():
            raise SettingsError(f"{path}:{number}: expected KEY=VALUE")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values
