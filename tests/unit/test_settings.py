"""Settings: parsing, `.env`, and the one-line errors of each entry point's needs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from service.settings import Need, Settings, SettingsError, shell_exports

BASE = {"SUPABASE_URL": "https://ref.supabase.co", "SUPABASE_SERVICE_ROLE_KEY": "service-key"}


def test_defaults_and_a_custom_secret_header_and_body_limit() -> None:
    settings = Settings.from_env(
        {**BASE, "WEBHOOK_SECRET_HEADER": "X-My-Hook", "WEBHOOK_MAX_BODY_BYTES": "2048"}
    )
    assert settings.webhook_secret_header == "X-My-Hook"
    assert settings.webhook_max_body_bytes == 2048
    assert settings.port == 8000
    assert settings.log_format == "text"
    assert settings.cors_allowed_origins == ()


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("LOG_LEVEL", "verbose", "LOG_LEVEL='verbose' is not a level: use one of debug, info"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT='xml' is not a format: use text or json"),
        ("PORT", "eighty", "PORT='eighty' is not a whole number"),
        ("PORT", "70000", "PORT=70000 is out of range"),
        ("WEBHOOK_MAX_BODY_BYTES", "0", "WEBHOOK_MAX_BODY_BYTES=0 is out of range"),
        ("WORKER_BATCH_SIZE", "-5", "WORKER_BATCH_SIZE=-5 is out of range"),
        ("HTTP_TIMEOUT_SECONDS", "soon", "HTTP_TIMEOUT_SECONDS='soon' is not a number"),
        ("WEBHOOK_SECRET_HEADER", "X Secret", "is not an HTTP header name"),
        ("SUPABASE_URL", "ref.supabase.co", "SUPABASE_URL must be an http(s) URL"),
        ("CORS_ALLOWED_ORIGINS", "localhost:3000", "is not an origin"),
        # uvicorn reads 0 as "wait for ever" and takes whole seconds only.
        ("SHUTDOWN_TIMEOUT_SECONDS", "0", "SHUTDOWN_TIMEOUT_SECONDS=0 is out of range: use 1"),
        ("SHUTDOWN_TIMEOUT_SECONDS", "0.5", "SHUTDOWN_TIMEOUT_SECONDS='0.5' is not a whole number"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**BASE, variable: value})
    message = str(caught.value)
    assert says in message
    assert variable in message
    assert "\n" not in message


def test_cors_origins_are_a_comma_separated_list() -> None:
    settings = Settings.from_env(
        {**BASE, "CORS_ALLOWED_ORIGINS": "http://localhost:3000, https://app.example.com/"}
    )
    assert settings.cors_allowed_origins == ("http://localhost:3000", "https://app.example.com")


@pytest.mark.parametrize(
    ("env", "needs", "names"),
    [
        ({}, (Need.DATABASE,), "SUPABASE_URL is not set"),
        ({"SUPABASE_URL": "http://x"}, (Need.DATABASE,), "SUPABASE_SERVICE_ROLE_KEY is not set"),
        (BASE, (Need.AGENT_AUTH,), "SUPABASE_ANON_KEY is not set"),
        (
            {**BASE, "SUPABASE_ANON_KEY": "anon"},
            (Need.AGENT_AUTH,),
            "neither SUPABASE_JWT_SECRET nor SUPABASE_JWKS_URL is set",
        ),
        (BASE, (Need.LOCAL_DATABASE,), "DATABASE_URL is not set"),
    ],
)
def test_each_need_names_the_missing_variable(
    env: dict[str, str], needs: tuple[Need, ...], names: str
) -> None:
    with pytest.raises(SettingsError, match=names):
        Settings.from_env(env).require(*needs)


def test_the_api_needs_one_way_to_verify_tokens() -> None:
    api = {**BASE, "SUPABASE_ANON_KEY": "anon"}
    Settings.from_env({**api, "SUPABASE_JWT_SECRET": "s" * 32}).require(Need.AGENT_AUTH)
    Settings.from_env({**api, "SUPABASE_JWKS_URL": "https://ref.supabase.co/jwks"}).require(
        Need.AGENT_AUTH
    )


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# a comment\n"
        "export SUPABASE_URL=https://from-dotenv.supabase.co\n"
        "SUPABASE_SERVICE_ROLE_KEY='quoted key'\n"
        "PORT=9000\n"
        "LOG_LEVEL=verbose\n"
    )
    settings = Settings.load({"PORT": "8100", "LOG_LEVEL": "debug", "HOST": ""}, dotenv)
    assert settings.supabase_url == "https://from-dotenv.supabase.co"
    assert settings.supabase_service_role_key == "quoted key"
    assert settings.port == 8100
    assert settings.log_level == "DEBUG"
    assert settings.host == "127.0.0.1"


def test_a_malformed_dotenv_line_is_named(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("SUPABASE_URL=https://x\nthis is not a setting\n")
    with pytest.raises(SettingsError, match=r"\.env:2: expected KEY=VALUE"):
        Settings.load({}, dotenv)


def test_no_dotenv_is_fine(tmp_path: Path) -> None:
    assert Settings.load(BASE, tmp_path / ".env").supabase_url == BASE["SUPABASE_URL"]


def test_repr_shows_no_secret() -> None:
    settings = Settings.from_env({**BASE, "SUPABASE_JWT_SECRET": "jwt-secret-value"})
    assert "service-key" not in repr(settings)
    assert "jwt-secret-value" not in repr(settings)


def test_make_run_reads_dotenv_like_the_service_and_the_caller_wins(tmp_path: Path) -> None:
    """scripts/run.sh evaluates these lines in bash: what it sees is what Settings.load sees."""
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# a developer's overrides\n"
        "export LOG_FORMAT=json\n"
        "PORT=9100\n"
        '  LOG_LEVEL = "warning"\n'
        "D360_BASE_URL=https://waba-v2.360dialog.io\n"
        "NOTE=it's $HOME; `date`\n"
    )
    caller = {"LOG_FORMAT": "text", "PORT": "8100", "LOG_LEVEL": ""}
    script = shell_exports(caller, dotenv) + 'printf "%s|" "$LOG_FORMAT" "$PORT" "$LOG_LEVEL" '
    script += '"$D360_BASE_URL" "$NOTE"'
    shown = subprocess.run(
        ["bash", "-c", script],
        env={"PATH": "/usr/bin:/bin", **{k: v for k, v in caller.items() if v}},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stderr == ""
    assert shown.stdout.split("|")[:-1] == [
        "text",  # the caller's value wins, as for `python -m service`
        "8100",
        "warning",  # an empty value counts as unset
        "https://waba-v2.360dialog.io",
        "it's $HOME; `date`",  # taken literally, not run by the shell
    ]
    merged = Settings.load({k: v for k, v in caller.items() if v}, dotenv)
    assert (merged.log_format, merged.port, merged.log_level) == ("text", 8100, "WARNING")


def test_make_run_names_a_malformed_dotenv_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORT=8100\nnot a setting\n")
    with pytest.raises(SettingsError, match=r"\.env:2: expected KEY=VALUE"):
        shell_exports({}, tmp_path / ".env")


def test_the_reply_timeout_must_outlast_a_live_send() -> None:
    settings = Settings.from_env(BASE)
    assert settings.reply_pending_timeout_seconds > settings.send_budget_seconds
    assert settings.reply_sweep_interval_seconds == 60.0
    for env in (
        {"REPLY_PENDING_TIMEOUT_SECONDS": "120"},
        # A longer HTTP timeout makes a live send longer than the default allows.
        {"HTTP_TIMEOUT_SECONDS": "30"},
    ):
        with pytest.raises(SettingsError) as caught:
            Settings.from_env({**BASE, **env})
        assert "REPLY_PENDING_TIMEOUT_SECONDS=" in str(caught.value)
        assert "not longer than a send can take" in str(caught.value)
    longer = Settings.from_env(
        {**BASE, "HTTP_TIMEOUT_SECONDS": "30", "REPLY_PENDING_TIMEOUT_SECONDS": "900"}
    )
    assert longer.reply_pending_timeout_seconds == 900
