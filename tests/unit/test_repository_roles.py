"""Every repository call names the role it runs as: AgentDb (RLS decides) or ServiceDb."""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import get_type_hints

import pytest

from service.repositories import channels, conversations, inbox, messages, templates, workspaces
from service.repositories.roles import AgentDb, ServiceClient, ServiceDb


def calls(module: ModuleType) -> list[str]:
    return [
        name
        for name, value in vars(module).items()
        if inspect.iscoroutinefunction(value)
        and value.__module__ == module.__name__
        and not name.startswith("_")
    ]


@pytest.mark.parametrize(
    "module",
    [channels, conversations, inbox, messages, templates, workspaces],
    ids=lambda m: m.__name__,
)
def test_each_call_takes_an_agent_or_a_service_client(module: ModuleType) -> None:
    assert calls(module)
    for name in calls(module):
        hints = get_type_hints(getattr(module, name))
        assert hints.get("db") in (AgentDb, ServiceDb, ServiceClient), f"{module.__name__}.{name}"


def test_replies_are_written_as_the_service_and_read_as_the_agent() -> None:
    def role(function: object) -> object:
        return get_type_hints(function)["db"]

    for written in (messages.open_reply, messages.record_send, messages.sweep_pending_replies):
        assert role(written) is ServiceDb
    for read in (messages.page, messages.get, conversations.mark_read, conversations.link_contact):
        assert role(read) is AgentDb
