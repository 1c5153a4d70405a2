"""The Python enums and the database's CHECK constraints name the same values."""

from __future__ import annotations

import enum
import re

import pytest

from service.settings import Settings
from service.whatsapp.vocabulary import DeliveryStatus, Direction, MessageType
from tests.support.stack import psql


def allowed(settings: Settings, constraint: str) -> set[str]:
    """The values a `column in (...)` check on messages allows, read from pg_constraint."""
    definition = psql(
        settings.database_url,
        "select pg_get_constraintdef(oid) from pg_constraint "
        f"where conrelid = 'public.messages'::regclass and conname = '{constraint}'",
    )
    assert definition, f"no constraint {constraint}"
    return set(re.findall(r"'([a-z_]+)'::text", definition))


@pytest.mark.parametrize(
    ("constraint", "vocabulary", "unknown"),
    [
        ("messages_type_check", MessageType, None),
        ("messages_status_check", DeliveryStatus, DeliveryStatus.UNKNOWN),
        ("messages_direction_check", Direction, None),
    ],
)
def test_the_enum_and_the_check_agree(
    settings: Settings, constraint: str, vocabulary: type[enum.StrEnum], unknown: object
) -> None:
    # The unknown status is never stored: the database must not allow it either.
    expected = {member.value for member in vocabulary if member is not unknown}
    assert allowed(settings, constraint) == expected


def test_every_stored_status_has_its_rank(settings: Settings) -> None:
    statuses = [s for s in DeliveryStatus if s is not DeliveryStatus.UNKNOWN]
    ranks = psql(
        settings.database_url,
        "select string_agg(coalesce(private.message_status_rank(s)::text, 'null'), ',') "
        f"from unnest(array[{', '.join(repr(s.value) for s in statuses)}]) s",
    )
    assert "null" not in ranks.split(",")
    assert psql(settings.database_url, "select private.message_status_rank('unknown')") == ""


def test_unknown_values_decode_to_the_unknown_member() -> None:
    assert MessageType("request_welcome") is MessageType.UNSUPPORTED
    assert DeliveryStatus("played") is DeliveryStatus.UNKNOWN
