"""The caps of service/ingest/limits.py and the worker's ingest calls (docs/SECURITY.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from service.ingest.limits import (
    MAX_CHANNELS_PER_DELIVERY,
    MAX_ROWS_PER_INGEST,
    delivery_items,
    phone_number_ids,
)
from service.ingest.worker import Normalized, ingest_parts
from service.repositories.inbox import ClaimedEvent, IngestBatch, StatusRow
from service.whatsapp.payloads import (
    InvalidPayload,
    Metadata,
    WebhookChange,
    WebhookEntry,
    WebhookPayload,
    WebhookValue,
    decode_webhook,
    normalize_phone,
)
from service.whatsapp.vocabulary import DeliveryStatus
from tests.support.payloads import many_channels_body


def entry(phone_number_id: str) -> WebhookEntry:
    value = WebhookValue(metadata=Metadata(phone_number_id=phone_number_id))
    return WebhookEntry(changes=[WebhookChange(field="messages", value=value)])


class Unreachable:
    """An entry the scan must never reach."""

    @property
    def changes(self) -> list[Any]:
        raise AssertionError("the scan went past the first id over the cap")


def test_the_channel_scan_stops_at_the_first_id_over_the_cap() -> None:
    first = [entry(str(n)) for n in range(MAX_CHANNELS_PER_DELIVERY + 1)]
    payload = WebhookPayload(
        object="whatsapp_business_account",
        entry=[*first, *cast(list[WebhookEntry], [Unreachable()] * 10_000)],
    )

    ids = phone_number_ids(payload)

    assert ids == [str(n) for n in range(MAX_CHANNELS_PER_DELIVERY + 1)]


def test_repeated_ids_are_counted_once_in_order() -> None:
    payload = WebhookPayload(
        object="whatsapp_business_account",
        entry=[entry(str(n % 3)) for n in range(30_000)],
    )
    assert phone_number_ids(payload) == ["0", "1", "2"]


def test_a_megabyte_of_channels_decodes_and_is_cut_at_the_cap() -> None:
    payload = decode_webhook(many_channels_body(1024 * 1024))
    assert len(payload.entry) > 10_000
    assert len(phone_number_ids(payload)) == MAX_CHANNELS_PER_DELIVERY + 1


def test_items_are_messages_and_statuses_of_every_entry() -> None:
    body = (
        b'{"object":"whatsapp_business_account","entry":['
        b'{"changes":[{"field":"messages","value":{"messages":[{"id":"a"},{"id":"b"}],'
        b'"statuses":[{"id":"c","status":"read"}]}}]},'
        b'{"changes":[{"field":"messages","value":{"statuses":[{"id":"d","status":"sent"}]}},'
        b'{"field":"account_update"}]}]}'
    )
    assert delivery_items(decode_webhook(body)) == 4


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("field", ["messages", "statuses", "unknown", "entry"])
def test_a_body_nested_deeper_than_any_webhook_is_invalid(depth: int, field: str) -> None:
    nested = b"[" * depth + b"]" * depth
    if field == "entry":
        body = b'{"object":"whatsapp_business_account","entry":' + nested + b"}"
    else:
        body = (
            b'{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages",'
            b'"value":{"metadata":{"phone_number_id":"1"},"'
            + field.encode()
            + b'":'
            + nested
            + b"}}]}]}"
        )
    with pytest.raises(InvalidPayload):
        decode_webhook(body)


def test_the_one_phone_rule_is_the_databases_e164_check() -> None:
    assert normalize_phone("573001112233") == "+573001112233"
    assert normalize_phone("+5215512345678") == "+5215512345678"
    assert normalize_phone("1234567") == "+1234567"
    bad = [
        "0123456",
        "+0123456",
        "123456",
        "1234567890123456",
        "57 300111",
        "\uff15\uff17\uff13\uff10\uff10\uff11\uff11",
        "",
    ]
    for wa_id in bad:
        with pytest.raises(ValueError, match=r"E\.164"):
            normalize_phone(wa_id)


def claimed(n: int, rows: int, *, attempts: int = 1) -> Normalized:
    event = ClaimedEvent(
        id=n,
        channel_id=None,
        workspace_id=uuid.uuid4(),
        phone_number_id="1",
        body="{}",
        attempts=attempts,
    )
    now = datetime.now(tz=UTC)
    statuses = [
        StatusRow(
            workspace_id=event.workspace_id,
            wamid=f"w{n}.{i}",
            status=DeliveryStatus.READ,
            timestamp=now,
        )
        for i in range(rows)
    ]
    return event, IngestBatch(event_ids=[n], statuses=statuses)


def test_ingest_calls_stay_under_the_row_cap_and_keep_claim_order() -> None:
    ready = [claimed(n, 1000) for n in range(34)] + [claimed(99, 0)]

    parts = ingest_parts(ready)

    assert all(sum(b.rows for _, b in part) <= MAX_ROWS_PER_INGEST for part in parts)
    assert [e.id for part in parts for e, _ in part] == [*range(34), 99]
    assert len(parts) == 12


def test_an_event_that_failed_before_is_ingested_alone() -> None:
    ready = [claimed(1, 1), claimed(2, 1, attempts=3), claimed(3, 1)]

    parts = ingest_parts(ready)

    assert [[e.id for e, _ in part] for part in parts] == [[1], [2], [3]]
