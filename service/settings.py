"""The one place that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

DEFAULT_D360_BASE_URL = "https://waba-v2.360dialog.io"


class SettingsError(ValueError):
    """A required setting is missing or malformed."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    supabase_url: str
    supabase_service_role_key: str = msgspec.field(default="")
    supabase_anon_key: str = msgspec.field(default="")
    supabase_jwt_secret: str = ""
    supabase_jwks_url: str = ""
    # Local stack only (dev-token looks users up in auth.users).
    database_url: str = ""
    d360_base_url: str = DEFAULT_D360_BASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    webhook_secret_header: str = "X-Webhook-Secret"  # noqa: S105 (a header name)
    webhook_max_body_bytes: int = 1024 * 1024
    webhook_batch_window_ms: float = 2.0
    worker_batch_size: int = 300
    worker_idle_poll_seconds: float = 0.5
    worker_max_attempts: int = 8
    worker_lease_seconds: int = 60
    worker_prune_done_after_hours: int = 72
    http_timeout_seconds: float = 10.0

    def __repr__(self) -> str:
        # Secrets never reach logs through a repr.
        return f"Settings(supabase_url={self.supabase_url!r}, port={self.port})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        fields: dict[str, str] = {}
        for name in cls.__struct_fields__:
            value = env.get(name.upper())
            if value is not None and value != "":
                fields[name] = value
        if "supabase_url" not in fields:
            raise SettingsError("SUPABASE_URL is required (see .env.example)")
        try:
            return msgspec.convert(fields, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(f"invalid setting: {exc}") from exc

    def require_service_role(self) -> str:
        if not self.supabase_service_role_key:
            raise SettingsError("SUPABASE_SERVICE_ROLE_KEY is required")
        return self.supabase_service_role_key
