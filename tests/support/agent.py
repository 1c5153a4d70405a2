"""Tenants (workspace + agent + channel) and rows for the agent API tests, made with psql.

Each test gets its own workspaces, so lists and searches are exact and no test
depends on another's rows; dropping the workspace removes everything in it.
"""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from service.tokens import mint_access_token
from tests.support.stack import psql


def lit(value: str | None) -> str:
    """A SQL literal (test data only)."""
    if value is None:
        return "null"
    return "'" + value.replace("'", "''") + "'"


def interval(ago: timedelta) -> str:
    return f"now() - interval '{ago.total_seconds():.6f} seconds'"


def unique_phone() -> str:
    return "+57" + "3" + "".join(random.choices("0123456789", k=9))


@dataclass(frozen=True)
class Tenant:
    database_url: str
    workspace_id: uuid.UUID
    user_id: uuid.UUID
    email: str
    token: str
    channel_id: uuid.UUID
    phone_number_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def sql(self, statement: str) -> str:
        return psql(self.database_url, statement)

    def add_contact(
        self,
        name: str | None,
        phone: str | None = None,
        *,
        city: str | None = None,
        tags: tuple[str, ...] = (),
    ) -> uuid.UUID:
        contact_id = uuid.uuid4()
        statements = [
            f"insert into public.contacts (id, workspace_id, name, phone, city) values "
            f"('{contact_id}', '{self.workspace_id}', {lit(name)}, "
            f"{lit(phone or unique_phone())}, {lit(city)})"
        ]
        for tag in tags:
            statements.append(
                f"insert into public.tags (workspace_id, name) values ('{self.workspace_id}', "
                f"{lit(tag)}) on conflict (workspace_id, name) do nothing"
            )
            statements.append(
                f"insert into public.contact_tags (workspace_id, contact_id, tag_id) "
                f"select '{self.workspace_id}', '{contact_id}', t.id from public.tags t "
                f"where t.workspace_id = '{self.workspace_id}' and t.name = {lit(tag)}"
            )
        self.sql("; ".join(statements))
        return contact_id

    def add_conversation(
        self,
        phone: str | None = None,
        *,
        contact_id: uuid.UUID | None = None,
        status: str = "active",
        assigned_to: uuid.UUID | None = None,
    ) -> uuid.UUID:
        conversation_id = uuid.uuid4()
        assignee = f"'{assigned_to}'" if assigned_to else "null"
        contact = f"'{contact_id}'" if contact_id else "null"
        self.sql(
            "insert into public.conversations (id, workspace_id, contact_id, phone, "
            "phone_number_id, status, assigned_to) values "
            f"('{conversation_id}', '{self.workspace_id}', {contact}, "
            f"{lit(phone or unique_phone())}, {lit(self.phone_number_id)}, {lit(status)}, "
            f"{assignee})"
        )
        return conversation_id

    def add_inbound(
        self,
        conversation_id: uuid.UUID,
        *,
        ago: timedelta = timedelta(minutes=5),
        body: str = "Hola",
        message_type: str = "text",
        content: str | None = None,
        media_mime_type: str | None = None,
        media_filename: str | None = None,
    ) -> tuple[uuid.UUID, str]:
        """An inbound message WhatsApp timestamped `ago` before now; returns (id, wamid)."""
        message_id = uuid.uuid4()
        wamid = f"wamid.TEST.{secrets.token_hex(12)}"
        payload = content if content is not None else '{"body": ' + f'"{body}"' + "}"
        self.sql(
            "insert into public.messages (id, conversation_id, wamid, direction, type, content, "
            'status, "timestamp", media_mime_type, media_filename) values '
            f"('{message_id}', '{conversation_id}', {lit(wamid)}, 'inbound', "
            f"{lit(message_type)}, {lit(payload)}::jsonb, 'delivered', {interval(ago)}, "
            f"{lit(media_mime_type)}, {lit(media_filename)})"
        )
        return message_id, wamid

    def row(self, sql: str) -> list[str]:
        """One row of a query as its `|`-separated text fields."""
        out = self.sql(sql)
        return out.split("|") if out else []


def make_tenant(database_url: str, jwt_secret: str, label: str = "T") -> Tenant:
    workspace_id = uuid.uuid4()
    user_id = uuid.uuid4()
    channel_id = uuid.uuid4()
    email = f"agent-{user_id.hex[:12]}@example.test"
    phone_number_id = str(random.randint(10**14, 10**15 - 1))
    api_key = f"test-key-{secrets.token_hex(8)}"
    psql(
        database_url,
        "insert into auth.users (instance_id, id, aud, role, email) values "
        f"('00000000-0000-0000-0000-000000000000', '{user_id}', 'authenticated', "
        f"'authenticated', {lit(email)}); "
        f"insert into public.workspaces (id, name) values ('{workspace_id}', "
        f"{lit(f'Workspace {label} {workspace_id.hex[:6]}')}); "
        "insert into public.workspace_members (workspace_id, user_id, role) values "
        f"('{workspace_id}', '{user_id}', 'agent'); "
        "insert into public.whatsapp_channels (id, workspace_id, phone_number_id, "
        "display_phone_number, name, api_key) values "
        f"('{channel_id}', '{workspace_id}', {lit(phone_number_id)}, '+57 601 555 0000', "
        f"{lit(f'Channel {label}')}, {lit(api_key)})",
    )
    return Tenant(
        database_url=database_url,
        workspace_id=workspace_id,
        user_id=user_id,
        email=email,
        token=mint_access_token(jwt_secret, user_id, email=email),
        channel_id=channel_id,
        phone_number_id=phone_number_id,
        api_key=api_key,
    )


def drop_tenant(tenant: Tenant) -> None:
    tenant.sql(
        f"delete from public.workspaces where id = '{tenant.workspace_id}'; "
        f"delete from auth.users where id = '{tenant.user_id}'"
    )
