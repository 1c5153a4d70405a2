"""Templates as 360dialog lists them: what each needs, its text filled in, the listing's pages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from service.whatsapp.d360 import D360Client
from service.whatsapp.templates import (
    PAGE_SIZE,
    TemplateComponent,
    fill,
    listed_templates,
    needs,
    placeholders,
)

BASE = "https://waba-v2.360dialog.io"


def test_placeholders_are_distinct_and_in_order() -> None:
    assert placeholders("Hola {{1}}, {{2}} y {{ 1 }} otra vez") == ["1", "2"]
    assert placeholders("Hi {{first_name}}") == ["first_name"]
    assert placeholders("no placeholders {1} {{}}") == []
    assert placeholders(None) == []


def test_fill_replaces_each_placeholder_with_its_parameter() -> None:
    assert (
        fill("Hola {{1}}, tu pedido {{2}}; {{1}}", ["Ana", "#9"]) == "Hola Ana, tu pedido #9; Ana"
    )
    assert fill(None, ["x"]) is None
    # A parameter a template has no place for changes nothing; a missing one leaves the marker.
    assert fill("Hola {{1}} {{2}}", ["Ana"]) == "Hola Ana {{2}}"


def test_needs_counts_header_and_body_parameters() -> None:
    found = needs(
        [
            TemplateComponent(type="HEADER", format="TEXT", text="Pedido {{1}}"),
            TemplateComponent(type="BODY", text="{{1}} {{2}} {{3}}"),
            TemplateComponent(type="FOOTER", text="Gracias"),
            TemplateComponent(type="BUTTONS", buttons=[{"type": "QUICK_REPLY", "text": "Ok"}]),
        ]
    )
    assert (found.parameters.header, found.parameters.body) == (1, 3)
    assert (found.header, found.footer, found.unsupported) == ("Pedido {{1}}", "Gracias", None)


@pytest.mark.parametrize(
    ("components", "why"),
    [
        ([TemplateComponent(type="HEADER", format="IMAGE")], "its header is image"),
        ([TemplateComponent(type="BODY", text="Hi {{first_name}}")], "it uses named parameters"),
        (
            [
                TemplateComponent(
                    type="BUTTONS",
                    buttons=[{"type": "URL", "text": "Ver", "url": "https://e.co/{{1}}"}],
                )
            ],
            "one of its buttons needs a parameter",
        ),
    ],
)
def test_needs_says_why_a_template_cannot_be_sent(
    components: list[TemplateComponent], why: str
) -> None:
    assert needs(components).unsupported == why


def test_listed_templates_keep_what_the_database_can_hold() -> None:
    kept = listed_templates(
        [
            {"name": "ok", "language": "es", "status": "APPROVED", "category": "UTILITY"},
            {"name": "Bad Name", "language": "es", "status": "APPROVED"},
            {"name": "no_status", "language": "es"},
            {"name": "ok", "language": "es", "status": "PAUSED"},  # the later entry wins
            {"name": "ok", "language": "pt_BR", "status": "approved", "components": "x"},
        ]
    )
    assert [(t.name, t.language, t.status, t.category) for t in kept] == [
        ("ok", "es", "paused", None)
    ]


async def test_list_templates_reads_every_page(httpx_mock: HTTPXMock) -> None:
    def page(offset: int, count: int) -> dict[str, Any]:
        return {
            "total": PAGE_SIZE + 1,
            "waba_templates": [
                {"name": f"t{offset + i}", "language": "es", "status": "approved"}
                for i in range(count)
            ],
        }

    httpx_mock.add_response(
        url=f"{BASE}/v1/configs/templates?limit={PAGE_SIZE}&offset=0", json=page(0, PAGE_SIZE)
    )
    httpx_mock.add_response(
        url=f"{BASE}/v1/configs/templates?limit={PAGE_SIZE}&offset={PAGE_SIZE}",
        json=page(PAGE_SIZE, 1),
    )
    async with httpx.AsyncClient() as http:
        listed = await D360Client(http).list_templates("key")

    assert len(listed) == PAGE_SIZE + 1
    assert all(r.headers["D360-API-KEY"] == "key" for r in httpx_mock.get_requests())
