"""Column grants only seal a table when nothing broader was granted before them.

A project that still grants everything on new tables to anon and
authenticated by default (older hosted projects, or one whose owner set such
a default) keeps that table-wide grant next to any column grant. So the last
migration that grants anything on a table to anon or authenticated must first
revoke all on it from both: then the privileges after every migration are
exactly the ones written, whatever the project's default. The database tests
(290-data-api-seal) check the resulting catalog on the local stack.
"""

from __future__ import annotations

import re
from pathlib import Path

MIGRATIONS = sorted((Path(__file__).resolve().parents[2] / "supabase" / "migrations").glob("*.sql"))
_API_ROLES = {"anon", "authenticated"}
_DOLLAR_QUOTED = re.compile(r"\$(\w*)\$.*?\$\1\$", re.S)
_GRANT = re.compile(
    r"^grant (?P<privileges>.+?) on (?:table )?(?P<tables>[^()]+?) to (?P<roles>.+)$"
)
_REVOKE_ALL = re.compile(
    r"^revoke all(?: privileges)? on (?:table )?(?P<tables>.+?) from (?P<roles>.+)$"
)


def _statements(path: Path) -> list[str]:
    text = re.sub(r"--[^\n]*", "", path.read_text())
    text = _DOLLAR_QUOTED.sub("$$", text)
    return [" ".join(s.split()).lower() for s in text.split(";") if s.strip()]


def _names(listed: str) -> set[str]:
    return {name.strip() for name in listed.split(",")}


def _table_grants() -> list[tuple[str, int, str, bool]]:
    """(migration, statement index, table, is a column grant) of grants to anon/authenticated."""
    found: list[tuple[str, int, str, bool]] = []
    for path in MIGRATIONS:
        for index, statement in enumerate(_statements(path)):
            match = _GRANT.match(statement)
            if match is None or " function " in f" {match['tables']} ":
                continue
            if " schema " in f" {match['tables']} " or not _names(match["roles"]) & _API_ROLES:
                continue
            columns = "(" in match["privileges"]
            found.extend((path.name, index, table, columns) for table in _names(match["tables"]))
    return found


def _revoked_before(path_name: str, before: int, table: str) -> bool:
    path = next(p for p in MIGRATIONS if p.name == path_name)
    for statement in _statements(path)[:before]:
        match = _REVOKE_ALL.match(statement)
        if match and table in _names(match["tables"]) and _names(match["roles"]) >= _API_ROLES:
            return True
    return False


def test_every_table_with_column_grants_is_revoked_before_its_last_grants() -> None:
    grants = _table_grants()
    with_columns = {table for _, _, table, columns in grants if columns}
    # The parser finds what migrations 001 and 002 granted by column.
    assert {"public.whatsapp_channels", "public.conversations", "public.contacts"} <= with_columns
    unsealed = []
    for table in sorted(with_columns):
        last_file = max(name for name, _, t, _ in grants if t == table)
        first = min(index for name, index, t, _ in grants if t == table and name == last_file)
        if not _revoked_before(last_file, first, table):
            unsealed.append(f"{table} (last granted in {last_file})")
    assert unsealed == []
