"""Domain types: replies and their Cloud API body, stored content and the 24h window."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

import msgspec
import pytest

from service.whatsapp.domain import (
    Recipient,
    Reply,
    Send360Response,
    TextContent,
    WindowStatus,
    cloud_message,
    parse_reply,
    reply_content,
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


def test_text_reply_body() -> None:
    reply = parse_reply({"type": "text", "text": "Hola"})
    assert cloud_message(Recipient(to="+573001112233"), reply, context_message_id="wamid.IN") == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "573001112233",
        "type": "text",
        "context": {"message_id": "wamid.IN"},
        "text": {"body": "Hola"},
    }


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            {"type": "image", "media_id": "1000000000000201", "caption": "Catálogo"},
            {"image": {"id": "1000000000000201", "caption": "Catálogo"}},
        ),
        (
            {"type": "video", "media_url": "https://cdn.example.com/v.mp4"},
            {"video": {"link": "https://cdn.example.com/v.mp4"}},
        ),
        ({"type": "audio", "media_id": "1000000000000202"}, {"audio": {"id": "1000000000000202"}}),
        (
            {"type": "document", "media_id": "1000000000000203", "filename": "factura.pdf"},
            {"document": {"id": "1000000000000203", "filename": "factura.pdf"}},
        ),
        (
            {
                "type": "template",
                "name": "order_update",
                "language": "es",
                "parameters": {"header": ["Pedido"], "body": ["Ana", "#123"]},
            },
            {
                "template": {
                    "name": "order_update",
                    "language": {"code": "es"},
                    "components": [
                        {"type": "header", "parameters": [{"type": "text", "text": "Pedido"}]},
                        {
                            "type": "body",
                            "parameters": [
                                {"type": "text", "text": "Ana"},
                                {"type": "text", "text": "#123"},
                            ],
                        },
                    ],
                }
            },
        ),
        (
            {"type": "template", "name": "hello_world", "language": "en_US"},
            {"template": {"name": "hello_world", "language": {"code": "en_US"}}},
        ),
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "button",
                    "body": "¿Confirmas?",
                    "buttons": [{"id": "si", "title": "Sí"}, {"id": "no", "title": "No"}],
                },
            },
            {
                "interactive": {
                    "type": "button",
                    "body": {"text": "¿Confirmas?"},
                    "action": {
                        "buttons": [
                            {"type": "reply", "reply": {"id": "si", "title": "Sí"}},
                            {"type": "reply", "reply": {"id": "no", "title": "No"}},
                        ]
                    },
                }
            },
        ),
    ],
)
def test_each_kind_has_its_cloud_body(reply: dict[str, Any], expected: dict[str, Any]) -> None:
    body = cloud_message(Recipient(to="573001112233"), parse_reply(reply))
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "573001112233",
        "type": reply["type"],
        **expected,
    }


def _buttons(*titles: str, ids: tuple[str, ...] | None = None) -> dict[str, Any]:
    chosen = ids or tuple(f"b{n}" for n in range(len(titles)))
    return {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": "¿Cuál?",
            "buttons": [{"id": i, "title": t} for i, t in zip(chosen, titles, strict=True)],
        },
    }


def _list(*sections: tuple[str | None, int]) -> dict[str, Any]:
    built = []
    n = 0
    for title, rows in sections:
        section: dict[str, Any] = {"rows": []}
        if title is not None:
            section["title"] = title
        for _ in range(rows):
            section["rows"].append({"id": f"r{n}", "title": f"Fila {n}"})
            n += 1
        built.append(section)
    return {
        "type": "interactive",
        "interactive": {"type": "list", "body": "Elige", "button": "Ver", "sections": built},
    }


@pytest.mark.parametrize(
    "reply",
    [
        _buttons("Sí"),
        _buttons("Sí", "No", "x" * 20),
        _list((None, 10)),
        _list(("Pizzas", 4), ("Bebidas", 6)),
        _list(("x" * 24, 1)),
    ],
)
def test_interactive_replies_within_the_rules(reply: dict[str, Any]) -> None:
    parsed = parse_reply(reply)
    assert reply_content(parsed) == reply["interactive"]


@pytest.mark.parametrize(
    ("reply", "rule"),
    [
        (_buttons(), "length >= 1"),
        (_buttons("a", "b", "c", "d"), "length <= 3"),
        (_buttons("x" * 21), "length <= 20"),
        (_buttons("Sí", "No", ids=("a", "a")), "used twice"),
        (_buttons("Sí", " sí"), "same title"),
        (_list((None, 11)), "length <= 10"),
        (_list(("A", 5), ("B", 6)), "at most 10 rows"),
        (_list(("A", 2), (None, 2)), "needs a `title`"),
        (_list(("x" * 25, 1)), "length <= 24"),
        (_list(("A", 0)), "length >= 1"),
        (_list(*[(f"S{n}", 1) for n in range(11)]), "length <= 10"),
    ],
)
def test_interactive_rules_are_422s_naming_the_rule(reply: dict[str, Any], rule: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=re.escape(rule)):
        parse_reply(reply)


@pytest.mark.parametrize(
    ("reply", "field"),
    [
        ({"type": "text", "text": "hola", "media_id": "1"}, "media_id"),
        ({"type": "text", "text": "   "}, "text"),
        ({"type": "text", "text": "x" * 4097}, "text"),
        ({"type": "image", "media_id": "1", "text": "hola"}, "text"),
        ({"type": "image"}, "media_url"),
        ({"type": "image", "media_id": "1", "media_url": "https://x.example/a.jpg"}, "media_url"),
        ({"type": "image", "media_id": ""}, "media_id"),
        ({"type": "image", "media_url": "ftp://x.example/a.jpg"}, "media_url"),
        ({"type": "image", "media_id": "1", "caption": "x" * 1025}, "caption"),
        ({"type": "image", "media_id": "1", "filename": "a.jpg"}, "filename"),
        ({"type": "audio", "media_id": "1", "caption": "hi"}, "caption"),
        ({"type": "location", "media_id": "1"}, "type"),
        ({"type": "template", "name": "Hola Mundo", "language": "es"}, "name"),
        ({"type": "template", "name": "x", "language": "es", "parameters": {"body": [""]}}, "body"),
        (
            {"type": "template", "name": "x", "language": "es", "parameters": {"footer": []}},
            "footer",
        ),
        (
            {
                "type": "template",
                "name": "x",
                "language": "es",
                "parameters": {"header": ["a", "b"]},
            },
            "header",
        ),
    ],
)
def test_a_reply_that_breaks_a_rule_does_not_decode(reply: dict[str, Any], field: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=f"`{field}`|`\\$.*{field}"):
        parse_reply(reply)


def test_stored_content_of_text_and_media_is_what_the_ingest_stores() -> None:
    text = parse_reply({"type": "text", "text": "hola"})
    assert msgspec.convert(reply_content(text), TextContent) == TextContent(body="hola")
    doc = parse_reply({"type": "document", "media_url": "https://e.co/f.pdf", "filename": "f.pdf"})
    assert reply_content(doc) == {"link": "https://e.co/f.pdf", "filename": "f.pdf"}


def test_send_response_decodes() -> None:
    sent = msgspec.json.decode(
        b'{"messaging_product":"whatsapp","contacts":[{"input":"+57 300","wa_id":"57300"}],'
        b'"messages":[{"id":"wamid.OUT1","message_status":"held_for_quality_assessment"}]}',
        type=Send360Response,
    )
    assert sent.message_id == "wamid.OUT1"
    assert sent.contacts[0].wa_id == "57300"
    assert sent.messages[0].message_status == "held_for_quality_assessment"


def test_a_reply_to_a_user_id_uses_the_recipient_field() -> None:
    reply: Reply = parse_reply({"type": "text", "text": "Hola"})
    body = cloud_message(Recipient(user_id="CO.1502576394655843"), reply)
    assert body["recipient"] == "CO.1502576394655843"
    assert "to" not in body
    parent = cloud_message(Recipient(user_id="US.ENT.11815799212886844830"), reply)
    assert parent["recipient"] == "US.ENT.11815799212886844830"


@pytest.mark.parametrize(
    "keys",
    [
        {},
        {"to": "573001112233", "user_id": "CO.1502576394655843"},
        {"user_id": "573001112233"},
        {"user_id": "CO."},
        {"to": "CO.1502576394655843"},
    ],
)
def test_a_recipient_is_exactly_one_well_formed_id(keys: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"to|user_id"):
        Recipient(to=keys.get("to"), user_id=keys.get("user_id"))


def test_send_response_to_a_user_id_decodes() -> None:
    sent = msgspec.json.decode(
        b'{"messaging_product":"whatsapp","contacts":[{"input":"CO.15","user_id":"CO.15"}],'
        b'"messages":[{"id":"wamid.OUT2"}]}',
        type=Send360Response,
    )
    assert sent.message_id == "wamid.OUT2"
    assert sent.contacts[0].wa_id is None
