"""Builders for webhook bodies with unique ids, so tests never collide."""

from __future__ import annotations

import itertools
import random
import time
import uuid
from typing import Any

_numbers = itertools.count(1)


def new_phone() -> str:
    """A wa_id (digits, no +) no other test uses."""
    return f"57{random.randint(300, 399)}{next(_numbers):03d}{random.randint(1000, 9999)}"


def new_wamid(prefix: str = "wamid.T") -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def unix(offset_seconds: int = 0) -> str:
    return str(int(time.time()) + offset_seconds)


def envelope(phone_number_id: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "200000000000001",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550000001",
                                "phone_number_id": phone_number_id,
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def text_message(
    sender: str, body: str, *, wamid: str | None = None, timestamp: str | None = None
) -> dict[str, Any]:
    return {
        "from": sender,
        "id": wamid or new_wamid(),
        "timestamp": timestamp or unix(),
        "type": "text",
        "text": {"body": body},
    }


def messages_payload(
    phone_number_id: str, sender: str, messages: list[dict[str, Any]], name: str = "Cliente"
) -> dict[str, Any]:
    return envelope(
        phone_number_id,
        {
            "contacts": [{"profile": {"name": name}, "wa_id": sender}],
            "messages": messages,
        },
    )


def text_payload(phone_number_id: str, sender: str, body: str, **kwargs: Any) -> dict[str, Any]:
    return messages_payload(phone_number_id, sender, [text_message(sender, body, **kwargs)])


def status(
    wamid: str,
    value: str,
    recipient: str,
    *,
    timestamp: str | None = None,
    error_code: int | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": wamid,
        "status": value,
        "timestamp": timestamp or unix(),
        "recipient_id": recipient,
    }
    if error_code is not None:
        item["errors"] = [
            {
                "code": error_code,
                "title": "Re-engagement message",
                "message": "Re-engagement message",
                "error_data": {"details": "Message failed to send because more than 24 hours"},
            }
        ]
    return item


def statuses_payload(phone_number_id: str, statuses: list[dict[str, Any]]) -> dict[str, Any]:
    return envelope(phone_number_id, {"statuses": statuses})


def reaction_message(
    sender: str, target_wamid: str, emoji: str | None, *, timestamp: str | None = None
) -> dict[str, Any]:
    reaction: dict[str, Any] = {"message_id": target_wamid}
    if emoji is not None:
        reaction["emoji"] = emoji
    return {
        "from": sender,
        "id": new_wamid(),
        "timestamp": timestamp or unix(),
        "type": "reaction",
        "reaction": reaction,
    }


def many_channels_body(size: int) -> bytes:
    """A body of about `size` bytes whose every entry names another phone_number_id.

    The unauthenticated attack of issue 10: each distinct id used to cost a
    scan of all the ids before it, before any credential was checked.
    """
    entries: list[bytes] = []
    total = 0
    for n in itertools.count():
        entry = (
            b'{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"%d"}}}]}'
            % (10**14 + n)
        )
        if total + len(entry) + 64 > size:
            break
        entries.append(entry)
        total += len(entry) + 1
    return b'{"object":"whatsapp_business_account","entry":[' + b",".join(entries) + b"]}"
