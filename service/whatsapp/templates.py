"""Message templates: what 360dialog lists, what a template needs, and its text filled in.

A template's components (Meta's HEADER, BODY, FOOTER, BUTTONS) carry
placeholders `{{1}}`, `{{2}}`, … that a template message fills with one text
parameter each, in order. The service sends templates whose header is text
(or absent) and whose buttons need no parameter; others (a media header, a
URL button with a placeholder) are kept but listed as not sendable.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
from msgspec import Meta

log = logging.getLogger(__name__)

APPROVED = "approved"
# {{1}} (positional) or {{name}} (named); the same placeholder twice is one parameter.
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]{1,64})\s*\}\}")
_NAME = re.compile(r"[a-z0-9_]{1,512}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(_[A-Za-z0-9]{2,8})?")
_WORD = re.compile(r"[a-z_]{1,40}")
# One listing page, and the most pages read: a WABA holds at most 250 names,
# each in a few languages.
PAGE_SIZE = 1000
MAX_PAGES = 10


class TemplateComponent(msgspec.Struct, frozen=True, omit_defaults=True):
    """One component as Meta describes it (only what the service reads is kept)."""

    type: str
    format: str | None = None
    text: str | None = None
    buttons: list[dict[str, Any]] | None = None


class ListedTemplate(msgspec.Struct, frozen=True, kw_only=True):
    """One template of 360dialog's `GET /v1/configs/templates`, as the database keeps it."""

    name: str
    language: str
    status: str
    category: str | None = None
    components: list[TemplateComponent] = msgspec.field(default_factory=list)


class TemplateListing(msgspec.Struct, frozen=True):
    """A page of `GET /v1/configs/templates`."""

    waba_templates: list[dict[str, Any]] = msgspec.field(default_factory=list)
    total: int | None = None


def listed_templates(raw: Sequence[dict[str, Any]]) -> list[ListedTemplate]:
    """The entries the database can hold; one it cannot is logged and left out.

    Status and category are kept in lower case (360dialog and Meta differ in case).
    """
    kept: dict[tuple[str, str], ListedTemplate] = {}
    for entry in raw:
        try:
            template = msgspec.convert(entry, ListedTemplate, strict=False)
        except msgspec.ValidationError as exc:
            log.warning("template left out: %s", exc)
            continue
        status = template.status.lower()
        category = template.category.lower() if template.category else None
        if not (
            _NAME.fullmatch(template.name)
            and _LANGUAGE.fullmatch(template.language)
            and _WORD.fullmatch(status)
            and (category is None or _WORD.fullmatch(category))
        ):
            log.warning("template %r left out: not a name, language or status", template.name)
            continue
        kept[(template.name, template.language)] = msgspec.structs.replace(
            template, status=status, category=category
        )
    return list(kept.values())


class TemplateParameterCounts(msgspec.Struct, frozen=True):
    header: Annotated[int, Meta(description="Parameters of the header (0 or 1)")]
    body: Annotated[int, Meta(description="Parameters of the body, in order")]


class TemplateNeeds(msgspec.Struct, frozen=True):
    """What a template message must carry, and whether the service can send it at all."""

    parameters: TemplateParameterCounts
    header: str | None
    body: str | None
    footer: str | None
    # Why it cannot be sent from here (a media header, a button with a placeholder).
    unsupported: str | None = None


def placeholders(text: str | None) -> list[str]:
    """The distinct placeholders of a text, in order of first appearance."""
    seen: list[str] = []
    for match in _PLACEHOLDER.finditer(text or ""):
        if match.group(1) not in seen:
            seen.append(match.group(1))
    return seen


def needs(components: Sequence[TemplateComponent]) -> TemplateNeeds:
    by_type = {c.type.upper(): c for c in components}
    header, body, footer = by_type.get("HEADER"), by_type.get("BODY"), by_type.get("FOOTER")
    unsupported = None
    if header is not None and (header.format or "TEXT").upper() != "TEXT":
        unsupported = f"its header is {header.format.lower() if header.format else 'media'}"
    buttons = by_type.get("BUTTONS")
    for button in buttons.buttons or [] if buttons else []:
        if any(placeholders(v) for v in button.values() if isinstance(v, str)):
            unsupported = "one of its buttons needs a parameter"
    texts = [c.text for c in (header, body) if c is not None]
    if any(not name.isdigit() for text in texts for name in placeholders(text)):
        # Named parameters ({{first_name}}) are sent with their names; replies send positions.
        unsupported = "it uses named parameters"
    header_text = header.text if header is not None and unsupported is None else None
    return TemplateNeeds(
        parameters=TemplateParameterCounts(
            header=len(placeholders(header_text)),
            body=len(placeholders(body.text if body else None)),
        ),
        header=header_text,
        body=body.text if body else None,
        footer=footer.text if footer else None,
        unsupported=unsupported,
    )


def fill(text: str | None, values: Sequence[str]) -> str | None:
    """The text with each placeholder replaced by its parameter (the preview the agent sees)."""
    if text is None:
        return None
    order = {name: i for i, name in enumerate(placeholders(text))}

    def one(match: re.Match[str]) -> str:
        index = order[match.group(1)]
        return values[index] if index < len(values) else match.group(0)

    return _PLACEHOLDER.sub(one, text)
