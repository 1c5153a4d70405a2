"""Domain types: send parameters, stored content and the 24h window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

import msgspec
import pytest

from service.whatsapp.domain import (
    Send360MessageParams,
    Send360Response,
    WindowStatus,
    window_status,
)

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ago", "state"),
    [
        (timedelta(0), "open"),
        (timedelta(hours=21, minutes=59), "open"),
        (timedelta(hours=22), "open"),  # exactly 2h left is not yet "closing"
        (timedelta(hours=22, seconds=1), "closing"),
        (timedelta(hours=23, minutes=59, seconds=59), "closing"),
        (timedelta(hours=24), "closed"),
        (timedelta(days=3), "closed"),
        (-timedelta(minutes=5), "open"),  # clock skew: a timestamp slightly in the future
    ],
)
def test_window_status(ago: timedelta, state: Literal["open", "closing", "closed"]) -> None:
    last = NOW - ago
    status = window_status(last, NOW)
    assert status == WindowStatus(state=state, closes_at=last + timedelta(hours=24))


def test_window_closed_without_inbound_message() -> None:
    assert window_status(None, NOW) == WindowStatus(state="closed", closes_at=None)


def test_window_status_across_timezones() -> None:
    bogota = timezone(timedelta(hours=-5))
    # 2026-11-17 09:00 in Bogotá is 14:00 UTC: 22h before NOW, so exactly 2h are left.
    last = datetime(2026, 11, 17, 9, 0, tzinfo=bogota)
    assert window_status(last, NOW) == WindowStatus(
        state="open", closes_at=datetime(2026, 11, 18, 14, 0, tzinfo=UTC)
    )
    assert window_status(last, NOW.astimezone(bogota)).state == "open"


def test_window_status_needs_aware_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone"):
        window_status(datetime(2026, 11, 18, 11, 0), NOW)
    with pytest.raises(ValueError, match="timezone"):
        window_status(None, datetime(2026, 11, 18, 12, 0))


def test_window_status_serializes() -> None:
    encoded = msgspec.json.encode(window_status(NOW - timedelta(hours=23), NOW))
    assert encoded == b'{"state":"closing","closes_at":"2026-11-18T13:00:00Z"}'


def test_send_params_body_for_text() -> None:
    params = Send360MessageParams(
        to="+573001112233", type="text", body="Hola", context_message_id="wamid.IN"
    )
    assert params.to_body() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "573001112233",
        "type": "text",
        "context": {"message_id": "wamid.IN"},
        "text": {"body": "Hola"},
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"type": "text", "body": "hola", "media_id": "1"},
        {"type": "text", "body": "hola", "caption": "x"},
        {"type": "image", "media_id": "1", "body": "hola"},
        {"type": "image", "media_id": "1", "preview_url": True},
        {"type": "document", "link": "https://x.example/a.pdf", "context_message_id": ""},
    ],
)
def test_send_params_reject_mixed_fields(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        Send360MessageParams(to="573001112233", **kwargs)


def test_send_params_decoding_validates_too() -> None:
    with pytest.raises(msgspec.ValidationError, match="exactly one"):
        msgspec.json.decode(b'{"to": "573001112233", "type": "image"}', type=Send360MessageParams)


def test_send_response_decodes() -> None:
    sent = msgspec.json.decode(
        b'{"messaging_product":"whatsapp","contacts":[{"input":"+57 300","wa_id":"57300"}],'
        b'"messages":[{"id":"wamid.OUT1","message_status":"held_for_quality_assessment"}]}',
        type=Send360Response,
    )
    assert sent.message_id == "wamid.OUT1"
    assert sent.contacts[0].wa_id == "57300"
    assert sent.messages[0].message_status == "held_for_quality_assessment"


def test_send_params_to_a_user_id_use_the_recipient_field() -> None:
    params = Send360MessageParams(recipient="CO.1502576394655843", type="text", body="Hola")
    body = params.to_body()
    assert body["recipient"] == "CO.1502576394655843"
    assert "to" not in body
    parent = Send360MessageParams(recipient="US.ENT.11815799212886844830", type="text", body="x")
    assert parent.to_body()["recipient"] == "US.ENT.11815799212886844830"


@pytest.mark.parametrize(
    "keys",
    [
        {},
        {"to": "573001112233", "recipient": "CO.1502576394655843"},
        {"recipient": "573001112233"},
        {"recipient": "CO."},
        {"to": "CO.1502576394655843"},
    ],
)
def test_send_params_need_exactly_one_well_formed_recipient(keys: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"to|recipient"):
        Send360MessageParams(
            type="text", body="hola", to=keys.get("to"), recipient=keys.get("recipient")
        )


def test_send_response_to_a_user_id_decodes() -> None:
    sent = msgspec.json.decode(
        b'{"messaging_product":"whatsapp","contacts":[{"input":"CO.15","user_id":"CO.15"}],'
        b'"messages":[{"id":"wamid.OUT2"}]}',
        type=Send360Response,
    )
    assert sent.message_id == "wamid.OUT2"
    assert sent.contacts[0].wa_id is None
