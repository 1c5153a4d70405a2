"""Who wrote a message: phone, business-scoped user id, or both (never neither)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from service.ingest.normalize import normalize_event
from service.repositories.inbox import ClaimedEvent

PHONE_NUMBER_ID = "100000000000001"


def event(contacts: list[dict[str, Any]], message: dict[str, Any]) -> ClaimedEvent:
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"phone_number_id": PHONE_NUMBER_ID},
                            "contacts": contacts,
                            "messages": [
                                {"id": "wamid.X", "timestamp": "1795000000", "type": "text",
                                 "text": {"body": "hola"}} | message
                            ],
                        },
                    }
                ],
            }
        ],
    }  # fmt: skip
    return ClaimedEvent(
        id=1,
        channel_id=uuid.uuid4(),
        workspace_id=uuid.uuid4(),
        phone_number_id=PHONE_NUMBER_ID,
        body=json.dumps(body),
        attempts=1,
    )


def test_username_only_sender_is_filed_by_user_id_with_its_names() -> None:
    batch = normalize_event(
        event(
            [{"profile": {"name": " Valentina ", "username": "vale.cafe"}, "user_id": "CO.15"}],
            {"from_user_id": "CO.15"},
        )
    )
    [row] = batch.messages
    assert (row.phone, row.user_id) == (None, "CO.15")
    assert (row.profile_name, row.username) == ("Valentina", "vale.cafe")
    assert batch.problems == []


def test_both_keys_are_kept_and_the_contact_is_matched_by_either() -> None:
    batch = normalize_event(
        event(
            [
                {"profile": {"name": "Otro"}, "wa_id": "573009999999"},
                {"profile": {"name": "Ana"}, "wa_id": "573001112233", "user_id": "CO.16"},
            ],
            {"from": "573001112233"},
        )
    )
    [row] = batch.messages
    assert (row.phone, row.user_id, row.profile_name) == ("+573001112233", "CO.16", "Ana")


def test_a_malformed_key_is_dropped_when_the_other_names_the_customer() -> None:
    batch = normalize_event(event([{"user_id": "CO.17"}], {"from": "abc", "from_user_id": "CO.17"}))
    [row] = batch.messages
    assert (row.phone, row.user_id) == (None, "CO.17")
    bad_id = normalize_event(event([], {"from": "573001112233", "from_user_id": "not an id"}))
    assert (bad_id.messages[0].phone, bad_id.messages[0].user_id) == ("+573001112233", None)


@pytest.mark.parametrize(
    "message", [{}, {"from_user_id": ""}, {"from_user_id": "not an id"}, {"from": ""}]
)
def test_a_message_naming_nobody_is_a_problem_not_a_row(message: dict[str, Any]) -> None:
    batch = normalize_event(event([], message))
    assert batch.messages == []
    assert len(batch.problems) == 1


def test_long_names_are_clipped_to_what_the_database_keeps() -> None:
    batch = normalize_event(
        event(
            [
                {
                    "profile": {
                        "name": "n" * 300,
                        "username": "u" * 300,
                    },
                    "user_id": "CO.18",
                }
            ],
            {"from_user_id": "CO.18"},
        )
    )
    [row] = batch.messages
    assert len(row.profile_name or "") == 200
    assert len(row.username or "") == 100
