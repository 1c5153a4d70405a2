"""The OpenAPI document a team generates clients from: names, descriptions, real responses."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from service.app import create_app
from service.settings import Settings

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(Settings(supabase_url="http://schema.invalid"))
    built: dict[str, Any] = msgspec.to_builtins(app.openapi_schema.to_schema())
    return built


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def test_every_operation_has_a_readable_operation_id(document: dict[str, Any]) -> None:
    ids = {name: op.get("operationId", "") for name, op in operations(document).items()}
    # lowerCamelCase verbs and nouns, not Litestar's path-derived names.
    readable = re.compile(r"[a-z]+(?:[A-Z][a-z]+)*")
    unreadable = {name: i for name, i in ids.items() if not readable.fullmatch(i)}
    assert unreadable == {}
    assert len(set(ids.values())) == len(ids)
    assert ids["GET /api/conversations"] == "listConversations"
    assert ids["POST /api/conversations/{conversation_id}/messages"] == "sendMessage"
    assert ids["POST /api/conversations/{conversation_id}/attachments"] == "sendAttachment"


def test_the_upload_documents_its_streamed_form(document: dict[str, Any]) -> None:
    upload = operations(document)["POST /api/conversations/{conversation_id}/attachments"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"]
    assert form["properties"]["file"]["format"] == "binary"
    assert {"411", "413", "415"} <= set(upload["responses"])


def test_every_parameter_has_a_description(document: dict[str, Any]) -> None:
    missing = [
        f"{name}: {parameter['name']}"
        for name, op in operations(document).items()
        for parameter in op.get("parameters", [])
        if not parameter.get("description")
    ]
    assert missing == []


def test_every_field_of_every_schema_has_a_description(document: dict[str, Any]) -> None:
    missing = [
        f"{schema_name}.{field}"
        for schema_name, schema in document["components"]["schemas"].items()
        for field, definition in schema.get("properties", {}).items()
        if not definition.get("description")
    ]
    assert missing == []


def test_media_documents_the_file_and_no_redirect(document: dict[str, Any]) -> None:
    media = operations(document)["GET /api/messages/{message_id}/media"]
    ok = media["responses"]["200"]
    assert ok["content"] == {"*/*": {"schema": {"type": "string", "format": "binary"}}}
    assert {
        "Content-Disposition",
        "Cache-Control",
        "Content-Security-Policy",
        "X-Content-Type-Options",
    } <= ok["headers"].keys()
    # The endpoint never redirects to a URL a user supplied (docs/SECURITY.md).
    assert "307" not in media["responses"]


def test_send_documents_the_replay_header(document: dict[str, Any]) -> None:
    send = operations(document)["POST /api/conversations/{conversation_id}/messages"]
    header = send["responses"]["201"]["headers"]["Idempotent-Replayed"]
    assert header["schema"]["enum"] == ["true"]
    assert header["description"]


def test_error_codes_are_an_enum(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["ErrorBody"]["properties"]["error"]
    assert {"not_found", "invalid_input", "window_closed", "send_failed"} <= set(error["enum"])


def test_only_routes_with_a_body_document_400_and_413(document: dict[str, Any]) -> None:
    for name, op in operations(document).items():
        if not name.startswith(("GET /api/", "POST /api/", "PUT /api/")):
            continue
        takes_body = "requestBody" in op
        documented = {"400", "413"} & op["responses"].keys()
        assert documented == ({"400", "413"} if takes_body else set()), name
