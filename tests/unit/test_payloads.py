"""Webhook decoding and stored content, over the fixture corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from service.whatsapp.payloads import (
    IncomingMessage,
    InvalidPayload,
    StatusUpdate,
    WebhookPayload,
    WebhookValue,
    decode_webhook,
    message_content,
    normalize_phone,
    stored_message_type,
)
from service.whatsapp.vocabulary import MessageType
from tests.support.corpus import CASES

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
VALID = sorted(FIXTURES.glob("*.json"))
INVALID = sorted((FIXTURES / "invalid").iterdir())
CHANNEL_A = "100000000000001"
CHANNEL_B = "100000000000002"
COLOMBIA = "573001112233"


def load(name: str) -> WebhookPayload:
    return decode_webhook((FIXTURES / f"{name}.json").read_bytes())


def values(payload: WebhookPayload) -> list[WebhookValue]:
    return [c.value for e in payload.entry for c in e.changes if c.value is not None]


def messages(name: str) -> list[IncomingMessage]:
    return [m for v in values(load(name)) for m in v.messages or []]


def statuses(name: str) -> list[StatusUpdate]:
    return [s for v in values(load(name)) for s in v.statuses or []]


def only_message(name: str) -> IncomingMessage:
    found = messages(name)
    assert len(found) == 1
    return found[0]


def stored(msg: IncomingMessage) -> tuple[str, dict[str, object]]:
    return stored_message_type(msg.type), message_content(msg)


# --- the corpus as a whole ----------------------------------------------------------------


def test_corpus_is_there() -> None:
    assert len(VALID) >= 40
    assert len(INVALID) >= 7


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_every_fixture_decodes_and_stores(path: Path) -> None:
    payload = decode_webhook(path.read_bytes())

    assert payload.object == "whatsapp_business_account"
    for value in values(payload):
        if value.metadata is not None:
            assert value.metadata.phone_number_id in (CHANNEL_A, CHANNEL_B)
        for msg in value.messages or []:
            assert msg.id.startswith("wamid.")
            kind, content = stored(msg)
            assert isinstance(kind, MessageType)
            json.loads(msgspec.json.encode(content))  # content must be storable as JSON
        for status in value.statuses or []:
            assert status.id.startswith("wamid.OUT")


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_fixtures_are_refused(path: Path) -> None:
    with pytest.raises(InvalidPayload, match="not a WhatsApp webhook"):
        decode_webhook(path.read_bytes())


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b" ",
        b"\xff\xfe",
        b"{}",
        b'"whatsapp_business_account"',
        b'{"object": "whatsapp_business_account", "entry": null}',
        b'{"object": "whatsapp_business_account", "entry": [1, 2]}',
        b'{"object": "instagram", "entry": []}',
        b'{"object": "whatsapp_business_account", "entry": [] ',
    ],
)
def test_bad_bodies_raise_invalid_payload(body: bytes) -> None:
    with pytest.raises(InvalidPayload):
        decode_webhook(body)


def test_invalid_payload_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a WhatsApp webhook"):
        decode_webhook(b"[]")


def test_decodes_str_bodies_too() -> None:
    text = (FIXTURES / "text.json").read_text(encoding="utf-8")
    assert decode_webhook(text) == load("text")


# --- per message type ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "kind", "expected", "preview"), CASES, ids=[c[0] for c in CASES]
)
def test_content_per_type(
    fixture: str, kind: str, expected: dict[str, object], preview: str
) -> None:
    msg = only_message(fixture)
    got_kind, content = stored(msg)

    assert got_kind == kind
    assert {k: content.get(k) for k in expected} == expected


def test_media_content_is_exactly_the_media_fields() -> None:
    _, content = stored(only_message("sticker"))
    assert set(content) == {"media_id", "mime_type", "sha256", "animated"}
    image = only_message("image")
    assert image.media() is image.image


def test_contacts_cards() -> None:
    _, content = stored(only_message("contacts"))

    cards: Any = content["contacts"]
    assert len(cards) == 1
    card = cards[0]
    assert card["name"] == {
        "formatted_name": "Priya Shah",
        "first_name": "Priya",
        "last_name": "Shah",
    }
    assert card["phones"] == [{"phone": "+44 7700 900456", "wa_id": "447700900456", "type": "CELL"}]
    assert card["emails"] == [{"email": "priya@example.com", "type": "WORK"}]
    assert card["org"]["company"] == "Example Ltd"
    assert card["addresses"][0]["zip"] == "EC1A 1BB"
    assert card["urls"] == [{"url": "https://example.com", "type": "WORK"}]
    assert card["birthday"] == "1990-04-12"


def test_nfm_reply_keeps_the_response_json_string() -> None:
    _, content = stored(only_message("interactive_nfm_reply"))

    assert content["kind"] == "nfm_reply"
    assert content["name"] == "flow"
    assert content["body"] == "Sent"
    assert isinstance(content["response_json"], str)
    assert json.loads(content["response_json"])["flow_token"] == "tok-123"


def test_reaction_removal_both_forms() -> None:
    added = only_message("reaction")
    omitted = only_message("reaction_removed")
    empty = only_message("reaction_removed_empty")

    assert added.reaction is not None
    assert not added.reaction.removed
    assert omitted.reaction is not None
    assert omitted.reaction.emoji is None
    assert empty.reaction is not None
    assert empty.reaction.emoji == ""
    assert omitted.reaction.removed
    assert empty.reaction.removed
    # All three target the same outbound message.
    assert added.reaction.message_id == omitted.reaction.message_id == empty.reaction.message_id
    assert message_content(omitted) == message_content(empty)
    assert message_content(empty)["message_id"] == added.reaction.message_id


def test_unsupported_keeps_its_errors() -> None:
    kind, content = stored(only_message("unsupported"))

    assert kind == "unsupported"
    assert content == {
        "errors": [
            {
                "code": 131051,
                "title": "Message type unknown",
                "message": "Message type unknown",
                "details": "Message type is currently not supported.",
            }
        ]
    }


def test_unknown_future_type_still_decodes() -> None:
    msg = only_message("unknown_type")
    kind, content = stored(msg)

    assert msg.type == "hologram"
    assert kind == "unsupported"
    assert content["original_type"] == "hologram"
    assert content["errors"] == [{"code": 131051, "title": "Message type unknown"}]


def test_known_type_without_its_object_is_not_a_crash() -> None:
    msg = IncomingMessage(id="wamid.X", type="image")
    assert message_content(msg) == {"original_type": "image"}


# --- context and referral -----------------------------------------------------------------


def test_reply_context() -> None:
    msg = only_message("reply_context")
    content = message_content(msg)

    assert msg.context is not None
    assert msg.context.from_ == "15550000001"
    assert content["context"] == {"from": "15550000001", "id": msg.context.id}
    assert str(msg.context.id).startswith("wamid.OUT")


def test_forward_flags() -> None:
    plain, frequent = messages("forwarded")

    assert message_content(plain)["context"] == {"forwarded": True}
    assert message_content(frequent)["context"] == {"frequently_forwarded": True}


def test_product_enquiry_context() -> None:
    context: Any = message_content(only_message("product_enquiry"))["context"]
    assert context["referred_product"] == {
        "catalog_id": "300000000000001",
        "product_retailer_id": "SKU-CAMISA-M",
    }


def test_referral() -> None:
    content = message_content(only_message("referral"))

    assert content["body"] == "Hola, vi su anuncio"
    referral: Any = content["referral"]
    assert referral["source_type"] == "ad"
    assert referral["ctwa_clid"] == "ARAkLmNoPqRsTuVwXyZ"
    assert referral["media_type"] == "image"
    assert "video_url" not in referral


def test_template_button_reply_has_context() -> None:
    content = message_content(only_message("button"))
    assert str(content["context"]).count("wamid.OUT") == 1


# --- batches ------------------------------------------------------------------------------


def test_multi_entry_routes_by_phone_number_id() -> None:
    payload = load("batch_multi_entry")

    assert [e.id for e in payload.entry] == ["200000000000001", "200000000000002"]
    ids = [v.metadata.phone_number_id for v in values(payload) if v.metadata]
    assert ids == [CHANNEL_A, CHANNEL_B]
    assert len(messages("batch_multi_entry")) == 2


def test_multi_change() -> None:
    payload = load("batch_multi_change")
    assert len(payload.entry) == 1
    assert len(payload.entry[0].changes) == 2
    assert [m.text.body for m in messages("batch_multi_change") if m.text] == ["Primero", "Segundo"]


def test_multi_message() -> None:
    batch = messages("batch_multi_message")
    (value,) = values(load("batch_multi_message"))

    assert [m.type for m in batch] == ["text", "image", "image", "text"]
    assert len({m.id for m in batch}) == 4
    assert [c.wa_id for c in value.contacts or []] == [COLOMBIA, "971501234567"]


def test_messages_and_statuses_together() -> None:
    (value,) = values(load("messages_and_statuses"))
    assert len(value.messages or []) == 1
    assert [s.status for s in value.statuses or []] == ["delivered", "read"]


def test_empty_entry_list_is_valid() -> None:
    assert load("empty_entry_list").entry == []


def test_other_fields_decode_to_an_empty_value() -> None:
    payload = load("other_field_template_status")
    change = payload.entry[0].changes[0]

    assert change.field == "message_template_status_update"
    assert change.value is not None
    assert change.value.messages is None
    assert change.value.metadata is None


def test_malformed_parts_are_salvaged() -> None:
    payload = load("malformed_parts")
    (value,) = values(payload)

    assert value.metadata is not None
    assert value.metadata.phone_number_id == CHANNEL_A
    good, broken = value.messages or []
    assert good.text is not None
    assert good.text.body == "Este llega bien"
    # The message with a wrong-typed field keeps its id (dedupe) and says why.
    assert broken.type == "unsupported"
    assert broken.from_ == COLOMBIA
    assert broken.timestamp == "1795000001"
    assert broken.errors is not None
    assert "text" in (broken.errors[0].message or "")
    # The message without an id is dropped, as is the status of the wrong shape.
    assert [s.status for s in value.statuses or []] == ["delivered"]


# --- statuses -----------------------------------------------------------------------------


def test_status_sent() -> None:
    (status,) = statuses("status_sent")

    assert status.status == "sent"
    assert status.timestamp == "1795000000"
    assert status.recipient_id == COLOMBIA
    assert status.biz_opaque_callback_data == "ticket-4711"
    assert status.conversation is not None
    assert status.conversation.origin is not None
    assert status.conversation.origin.type == "service"
    assert status.conversation.expiration_timestamp == "1795086400"
    assert status.pricing is not None
    assert (status.pricing.pricing_model, status.pricing.type) == ("PMP", "free_customer_service")
    assert status.pricing.billable is False
    assert status.errors is None


def test_status_delivered_and_read() -> None:
    (delivered,) = statuses("status_delivered")
    (read,) = statuses("status_read")

    assert delivered.status == "delivered"
    assert delivered.id == read.id
    assert delivered.conversation is not None
    assert delivered.conversation.expiration_timestamp is None
    assert read.status == "read"
    assert read.pricing is None
    assert read.conversation is None


def test_status_failed_carries_errors() -> None:
    (failed,) = statuses("status_failed")
    (value,) = values(load("status_failed"))

    assert failed.status == "failed"
    assert value.contacts is None
    assert failed.errors is not None
    error = failed.errors[0]
    assert error.code == 131047
    assert error.title == "Re-engagement message"
    assert error.details is not None
    assert "24 hours" in error.details
    assert error.href is not None


def test_status_failed_undeliverable_on_channel_b() -> None:
    (value,) = values(load("status_failed_undeliverable"))
    assert value.metadata is not None
    assert value.metadata.phone_number_id == CHANNEL_B
    (failed,) = value.statuses or []
    assert failed.errors is not None
    assert failed.errors[0].code == 131026


def test_out_of_band_value_errors() -> None:
    (value,) = values(load("value_errors"))

    assert value.messages is None
    assert value.statuses is None
    assert value.errors is not None
    assert value.errors[0].code == 130429
    assert value.errors[0].details == "Cloud API message throughput has been reached."


# --- identity -----------------------------------------------------------------------------


def test_bsuid_contact_without_wa_id() -> None:
    (value,) = values(load("bsuid_contact"))
    (contact,) = value.contacts or []
    msg = only_message("bsuid_contact")

    assert contact.wa_id is None
    assert contact.user_id == "CO.1502576394655843"
    assert contact.profile is not None
    assert (contact.profile.name, contact.profile.username) == ("Valentina", "vale.cafe")
    assert msg.from_ is None
    assert msg.from_user_id == "CO.1502576394655843"
    assert message_content(msg) == {"body": "Hola desde mi usuario"}


def test_bsuid_status() -> None:
    (status,) = statuses("bsuid_status")
    (value,) = values(load("bsuid_status"))
    assert status.recipient_user_id == "CO.1502576394655843"
    assert value.contacts is not None
    assert value.contacts[0].wa_id == COLOMBIA


# --- unicode ------------------------------------------------------------------------------


def test_escaped_emoji_zwj_sequences() -> None:
    msg = only_message("unicode_emoji_zwj")
    (value,) = values(load("unicode_emoji_zwj"))

    assert msg.text is not None
    family = "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
    assert family in msg.text.body
    assert "\U0001f3f3\ufe0f\u200d\U0001f308" in msg.text.body
    assert value.contacts is not None
    assert value.contacts[0].profile is not None
    assert value.contacts[0].profile.name == "Oliver \U0001f9d4\U0001f3fb\u200d\u2642\ufe0f"


def test_rtl_text() -> None:
    arabic, hebrew = messages("unicode_rtl")
    (value,) = values(load("unicode_rtl"))

    assert message_content(arabic) == {"body": "مرحبا، أريد أن أطلب ٣ قطع من فضلك"}
    assert str(message_content(hebrew)["body"]).startswith("שלום!")
    assert [c.profile.name for c in value.contacts or [] if c.profile] == [
        "فاطمة المنصوري",
        "נועה כהן",
    ]


def test_maximum_length_text() -> None:
    msg = only_message("text_4096")
    content = message_content(msg)

    assert content["body"] == msg.text.body if msg.text else False
    assert len(str(content["body"])) == 4096


# --- phone numbers and types --------------------------------------------------------------


@pytest.mark.parametrize(
    ("wa_id", "e164"),
    [
        (COLOMBIA, "+573001112233"),
        ("551187654321", "+551187654321"),  # Brazil without the 9th digit: kept as received
        ("5215512345678", "+5215512345678"),  # Mexico 521 form: kept as received
        ("+447700900123", "+447700900123"),
    ],
)
def test_normalize_phone(wa_id: str, e164: str) -> None:
    assert normalize_phone(wa_id) == e164


@pytest.mark.parametrize(
    "wa_id", ["", "+", "CO.1502576394655843", "57 300 111 2233", "57-300", "++57300", "٣٠٠١٢٣"]
)
def test_normalize_phone_refuses_non_digits(wa_id: str) -> None:
    with pytest.raises(ValueError, match="phone number"):
        normalize_phone(wa_id)


def test_stored_message_types() -> None:
    for kind in MessageType:
        expected = "unsupported" if kind == "template" else kind.value
        assert stored_message_type(kind.value) is MessageType(expected)
    assert stored_message_type("unknown") is MessageType.UNSUPPORTED
    assert stored_message_type("request_welcome") is MessageType.UNSUPPORTED
    assert stored_message_type("") is MessageType.UNSUPPORTED
    assert len(MessageType) == 15


def test_shape_error_before_a_syntax_error_is_still_invalid() -> None:
    # Found by tests/reliability/test_fuzz.py: a 500 on the webhook before.
    with pytest.raises(InvalidPayload):
        decode_webhook(b"0\x00")
