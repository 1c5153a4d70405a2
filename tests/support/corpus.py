"""What each single-message fixture must become: stored type, content, preview.

Shared by the unit tests (content) and the ingestion tests (the preview the
database computes).
"""

from __future__ import annotations

# (fixture, stored type, expected content keys, conversation preview)
CASES: list[tuple[str, str, dict[str, object], str]] = [
    (
        "text",
        "text",
        {"body": "Hola, ¿tienen envíos a Medellín?"},
        "Hola, ¿tienen envíos a Medellín?",
    ),
    (
        "image",
        "image",
        {
            "media_id": "1000000000000101",
            "mime_type": "image/jpeg",
            "caption": "Este es el producto",
        },
        "Este es el producto",
    ),
    ("video", "video", {"media_id": "1000000000000102", "mime_type": "video/mp4"}, "Video"),
    ("audio", "audio", {"media_id": "1000000000000103", "voice": False}, "Audio"),
    (
        "voice",
        "audio",
        {"media_id": "1000000000000104", "mime_type": "audio/ogg; codecs=opus", "voice": True},
        "Voice message",
    ),
    (
        "document",
        "document",
        {
            "media_id": "1000000000000105",
            "mime_type": "application/pdf",
            "filename": "factura-2026-10.pdf",
            "caption": "Factura de octubre",
        },
        "Factura de octubre",
    ),
    (
        "sticker",
        "sticker",
        {"media_id": "1000000000000106", "mime_type": "image/webp", "animated": True},
        "Sticker",
    ),
    (
        "location",
        "location",
        {
            "latitude": 4.6533326,
            "longitude": -74.083652,
            "name": "Parque Simón Bolívar",
            "address": "Cl. 63 #59A-06, Bogotá",
            "url": "https://maps.example.com/parque",
        },
        "Location: Parque Simón Bolívar",
    ),
    (
        "interactive_button_reply",
        "interactive",
        {"kind": "button_reply", "id": "confirm_order", "title": "Confirmar"},
        "Confirmar",
    ),
    (
        "interactive_list_reply",
        "interactive",
        {
            "kind": "list_reply",
            "id": "slot_0900",
            "title": "9:00 AM",
            "description": "Mañana, sede norte",
        },
        "9:00 AM",
    ),
    (
        "button",
        "button",
        {"payload": "STOP_PROMOS", "text": "No más promociones"},
        "No más promociones",
    ),
    ("reaction", "reaction", {"emoji": "\u2764\ufe0f"}, "Reacted \u2764\ufe0f"),
    ("reaction_removed", "reaction", {"emoji": None}, "Removed a reaction"),
    ("reaction_removed_empty", "reaction", {"emoji": None}, "Removed a reaction"),
    (
        "order",
        "order",
        {
            "catalog_id": "300000000000001",
            "text": "Quiero estos dos",
            "product_items": [
                {
                    "product_retailer_id": "SKU-CAFE-500",
                    "quantity": 2,
                    "item_price": 32000.0,
                    "currency": "COP",
                },
                {
                    "product_retailer_id": "SKU-TAZA-01",
                    "quantity": 1,
                    "item_price": 18500.5,
                    "currency": "COP",
                },
            ],
        },
        "Quiero estos dos",
    ),
    (
        "system",
        "system",
        {
            "body": "Camila changed their phone number to a new number",
            "kind": "user_changed_number",
            "new_wa_id": "573009998877",
        },
        "Camila changed their phone number to a new number",
    ),
]
