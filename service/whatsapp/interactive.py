"""Interactive replies: reply buttons and list messages, with WhatsApp's rules.

The shapes are what the agent API takes (`kind` tells them apart); `check`
enforces the rules that span fields (counts, unique ids, section titles) and
names the broken rule; `to_interactive` is the Cloud API's `interactive` object.
Single-field lengths are also declared on the fields, so the OpenAPI document
shows them. Limits: Meta's interactive message reference (reply buttons: 1 to
3, titles up to 20 characters; lists: up to 10 sections and 10 rows in all,
row titles up to 24, section titles required when there is more than one).
"""

from __future__ import annotations

from typing import Annotated, TypeAlias

import msgspec
from msgspec import Meta

MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_BUTTON_ID = 256
MAX_BODY_BUTTONS = 1024
MAX_BODY_LIST = 4096
MAX_HEADER = 60
MAX_FOOTER = 60
MAX_LIST_BUTTON = 20
MAX_SECTIONS = 10
MAX_ROWS = 10
MAX_SECTION_TITLE = 24
MAX_ROW_TITLE = 24
MAX_ROW_ID = 200
MAX_ROW_DESCRIPTION = 72


def _text(max_length: int, description: str) -> Meta:
    return Meta(min_length=1, max_length=max_length, description=description)


class InteractiveRuleError(ValueError):
    """A rule of WhatsApp's interactive messages is broken; `key` is the field's path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


class ReplyButton(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Annotated[str, _text(MAX_BUTTON_ID, "What comes back when the customer taps it")]
    title: Annotated[str, _text(MAX_BUTTON_TITLE, "The button's label")]


class ListRow(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    id: Annotated[str, _text(MAX_ROW_ID, "What comes back when the customer picks it")]
    title: Annotated[str, _text(MAX_ROW_TITLE, "The row's label")]
    description: Annotated[
        Annotated[str, _text(MAX_ROW_DESCRIPTION, "")] | None,
        Meta(description=f"A second line (up to {MAX_ROW_DESCRIPTION} characters)"),
    ] = None


class ListSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    rows: Annotated[list[ListRow], Meta(min_length=1, max_length=MAX_ROWS)]
    title: Annotated[
        Annotated[str, _text(MAX_SECTION_TITLE, "")] | None,
        Meta(description="Required when the list has more than one section"),
    ] = None


class ButtonsReply(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    tag="buttons",
    tag_field="kind",
):
    """Up to three reply buttons under a text."""

    body: Annotated[str, _text(MAX_BODY_BUTTONS, "The message text")]
    buttons: Annotated[
        list[ReplyButton],
        Meta(min_length=1, max_length=MAX_BUTTONS, description="1 to 3, unique ids and titles"),
    ]
    header: Annotated[Annotated[str, _text(MAX_HEADER, "")] | None, Meta(description="A title")] = (
        None
    )
    footer: Annotated[
        Annotated[str, _text(MAX_FOOTER, "")] | None, Meta(description="A small last line")
    ] = None


class ListReply(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    tag="list",
    tag_field="kind",
):
    """A menu: a button that opens up to ten rows in sections."""

    body: Annotated[str, _text(MAX_BODY_LIST, "The message text")]
    button: Annotated[str, _text(MAX_LIST_BUTTON, "The label of the button that opens the list")]
    sections: Annotated[
        list[ListSection],
        Meta(
            min_length=1,
            max_length=MAX_SECTIONS,
            description=f"Up to {MAX_ROWS} rows in all, unique row ids",
        ),
    ]
    header: Annotated[Annotated[str, _text(MAX_HEADER, "")] | None, Meta(description="A title")] = (
        None
    )
    footer: Annotated[
        Annotated[str, _text(MAX_FOOTER, "")] | None, Meta(description="A small last line")
    ] = None


InteractiveReply: TypeAlias = ButtonsReply | ListReply


def check(reply: InteractiveReply, key: str = "interactive") -> None:
    """Raise InteractiveRuleError naming the first broken rule; lengths are checked too."""
    _length(reply.header, MAX_HEADER, f"{key}.header")
    _length(reply.footer, MAX_FOOTER, f"{key}.footer")
    if isinstance(reply, ButtonsReply):
        _check_buttons(reply, key)
    else:
        _check_list(reply, key)


def _check_buttons(reply: ButtonsReply, key: str) -> None:
    _required(reply.body, MAX_BODY_BUTTONS, f"{key}.body")
    if not 1 <= len(reply.buttons) <= MAX_BUTTONS:
        raise InteractiveRuleError(f"{key}.buttons", f"give 1 to {MAX_BUTTONS} buttons")
    ids: set[str] = set()
    titles: set[str] = set()
    for n, button in enumerate(reply.buttons):
        where = f"{key}.buttons[{n}]"
        _required(button.id, MAX_BUTTON_ID, f"{where}.id")
        _required(button.title, MAX_BUTTON_TITLE, f"{where}.title")
        if button.id in ids:
            raise InteractiveRuleError(f"{where}.id", "button ids must be unique")
        if button.title.strip().casefold() in titles:
            raise InteractiveRuleError(f"{where}.title", "button titles must be unique")
        ids.add(button.id)
        titles.add(button.title.strip().casefold())


def _check_list(reply: ListReply, key: str) -> None:
    _required(reply.body, MAX_BODY_LIST, f"{key}.body")
    _required(reply.button, MAX_LIST_BUTTON, f"{key}.button")
    if not 1 <= len(reply.sections) <= MAX_SECTIONS:
        raise InteractiveRuleError(f"{key}.sections", f"give 1 to {MAX_SECTIONS} sections")
    rows = sum(len(section.rows) for section in reply.sections)
    if rows > MAX_ROWS:
        raise InteractiveRuleError(
            f"{key}.sections", f"a list has at most {MAX_ROWS} rows in all ({rows} given)"
        )
    several = len(reply.sections) > 1
    ids: set[str] = set()
    for s, section in enumerate(reply.sections):
        where = f"{key}.sections[{s}]"
        if several and section.title is None:
            raise InteractiveRuleError(
                f"{where}.title", "every section needs a title when there are several"
            )
        _length(section.title, MAX_SECTION_TITLE, f"{where}.title")
        if not section.rows:
            raise InteractiveRuleError(f"{where}.rows", "a section needs at least one row")
        for r, row in enumerate(section.rows):
            at = f"{where}.rows[{r}]"
            _required(row.id, MAX_ROW_ID, f"{at}.id")
            _required(row.title, MAX_ROW_TITLE, f"{at}.title")
            _length(row.description, MAX_ROW_DESCRIPTION, f"{at}.description")
            if row.id in ids:
                raise InteractiveRuleError(f"{at}.id", "row ids must be unique in the list")
            ids.add(row.id)


def _required(value: str, limit: int, key: str) -> None:
    if not value.strip():
        raise InteractiveRuleError(key, "must not be empty")
    _length(value, limit, key)


def _length(value: str | None, limit: int, key: str) -> None:
    if value is not None and len(value) > limit:
        raise InteractiveRuleError(key, f"at most {limit} characters ({len(value)} given)")


def to_interactive(reply: InteractiveReply) -> dict[str, object]:
    """The Cloud API `interactive` object of a checked reply."""
    action: dict[str, object]
    if isinstance(reply, ButtonsReply):
        kind = "button"
        action = {
            "buttons": [
                {"type": "reply", "reply": {"id": b.id, "title": b.title}} for b in reply.buttons
            ]
        }
    else:
        kind = "list"
        action = {"button": reply.button, "sections": msgspec.to_builtins(reply.sections)}
    message: dict[str, object] = {"type": kind}
    if reply.header is not None:
        message["header"] = {"type": "text", "text": reply.header}
    message["body"] = {"text": reply.body}
    if reply.footer is not None:
        message["footer"] = {"text": reply.footer}
    message["action"] = action
    return message
