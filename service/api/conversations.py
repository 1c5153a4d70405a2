"""/api/conversations: the agents' inbox, always as the calling agent under RLS.

Anything the agent cannot see (another workspace's, or nothing at all) is a
404; an endpoint never says 403 and never tells the two apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Literal

from litestar import Controller, Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from service.api.agent import (
    AGENT_DEPENDENCIES,
    AGENT_ERRORS,
    AGENT_EXCEPTION_HANDLERS,
    BEARER_SECURITY,
    SEND_ERRORS,
    decode_cursor,
    encode_cursor,
    invalid,
    not_found,
    text_input,
)
from service.api.auth import AuthUser
from service.api.openapi import AgentOperation, ConversationId, IdempotencyKey, SendOperation
from service.api.replies import now_utc, read_receipt_task, send_reply
from service.api.schemas import (
    ConversationListItem,
    ConversationPage,
    ConversationWithDetails,
    LinkContactBody,
    Message,
    MessagePage,
    TemplateList,
    UsableTemplate,
)
from service.repositories import conversations as conversations_repo
from service.repositories import messages as messages_repo
from service.repositories import templates as templates_repo
from service.repositories.channel_keys import ChannelKeys
from service.repositories.conversations import (
    ConversationDetailsRow,
    ConversationFilters,
    WorkspaceRequired,
)
from service.repositories.roles import AgentDb
from service.repositories.send_ledger import SendLedger
from service.whatsapp.d360 import D360Client
from service.whatsapp.domain import Reply


class ConversationController(Controller):
    path = "/api/conversations"
    tags = ["conversations"]  # noqa: RUF012 (Litestar reads it per instance)
    dependencies = AGENT_DEPENDENCIES
    exception_handlers = AGENT_EXCEPTION_HANDLERS
    security = BEARER_SECURITY

    @get(
        "",
        responses=AGENT_ERRORS,
        operation_id="listConversations",
        operation_class=AgentOperation,
        summary="List conversations, newest activity first",
        description=(
            "Keyset pagination: pass `next_cursor` back as `cursor` for the next page "
            "(stable while new messages arrive: a conversation that gets a new message moves "
            "to the top and is not repeated). `search` folds accents and case and matches "
            "partial names (every word) and phone digits. Without `status`, both active and "
            "archived conversations are listed. `workspace_id` may be left out only by a member of "
            "a single workspace (422 on `workspace_id` otherwise); every item carries its "
            "`workspace_id`. `search` also matches the WhatsApp profile name and username."
        ),
    )
    async def list_conversations(
        self,
        user_db: NamedDependency[AgentDb],
        workspace_id: Annotated[
            uuid.UUID | None,
            QueryParameter(description="Only this workspace's (default: every workspace of yours)"),
        ] = None,
        search: Annotated[
            str | None,
            QueryParameter(
                max_length=200,
                description="Words of the contact's name or digits of the phone; accents and "
                "case do not matter",
            ),
        ] = None,
        status: Annotated[
            Literal["active", "archived"] | None,
            QueryParameter(description="Only active or only archived (default: both)"),
        ] = None,
        is_read: Annotated[
            bool | None, QueryParameter(description="Only read (true) or only unread (false)")
        ] = None,
        assigned_to: Annotated[
            uuid.UUID | None, QueryParameter(description="Only those assigned to this user id")
        ] = None,
        limit: Annotated[
            int, QueryParameter(ge=1, le=100, description="Conversations per page (1-100)")
        ] = 30,
        cursor: Annotated[
            str | None,
            QueryParameter(
                max_length=200, description="The previous page's `next_cursor`, for the next page"
            ),
        ] = None,
    ) -> ConversationPage:
        filters = ConversationFilters(
            workspace_id=workspace_id,
            search=text_input(search, "search", "query"),
            status=status,
            is_read=is_read,
            assigned_to=assigned_to,
        )
        after = decode_cursor(cursor, "cursor")
        # One row more than asked says whether there is a next page.
        try:
            rows = await conversations_repo.list_page(
                user_db, filters, limit=limit + 1, after=after
            )
        except WorkspaceRequired as exc:
            raise invalid(
                "workspace_id", "required: you are a member of several workspaces", "query"
            ) from exc
        now = now_utc()
        items = [ConversationListItem.build(row, now) for row in rows[:limit]]
        last = items[-1] if len(rows) > limit else None
        next_cursor = encode_cursor(last.last_message_at, last.id) if last else None
        return ConversationPage(items=items, next_cursor=next_cursor)

    @get(
        "/{conversation_id:uuid}",
        responses=AGENT_ERRORS,
        operation_id="getConversation",
        operation_class=AgentOperation,
        summary="One conversation with its contact, tags, recent orders and window",
    )
    async def get_conversation(
        self, user_db: NamedDependency[AgentDb], conversation_id: ConversationId
    ) -> ConversationWithDetails:
        return ConversationWithDetails.build(await _visible(user_db, conversation_id), now_utc())

    @get(
        "/{conversation_id:uuid}/messages",
        responses=AGENT_ERRORS,
        operation_id="listMessages",
        operation_class=AgentOperation,
        summary="Message history, newest first",
        description="Keyset pagination: pass `next_cursor` back as `before` for older messages.",
    )
    async def list_messages(
        self,
        user_db: NamedDependency[AgentDb],
        conversation_id: ConversationId,
        before: Annotated[
            str | None,
            QueryParameter(
                max_length=200, description="The previous page's `next_cursor`, for older messages"
            ),
        ] = None,
        limit: Annotated[
            int, QueryParameter(ge=1, le=100, description="Messages per page (1-100)")
        ] = 50,
    ) -> MessagePage:
        after = decode_cursor(before, "before")
        await _visible(user_db, conversation_id)
        rows = await messages_repo.page(user_db, conversation_id, limit=limit + 1, before=after)
        items = rows[:limit]
        last = items[-1] if len(rows) > limit else None
        next_cursor = encode_cursor(last.timestamp, last.id) if last else None
        return MessagePage(items=items, next_cursor=next_cursor)

    @post(
        "/{conversation_id:uuid}/read",
        responses=AGENT_ERRORS,
        operation_id="markConversationRead",
        operation_class=AgentOperation,
        status_code=200,
        summary="Mark read: is_read true, unread_count 0",
        description=(
            "When the channel has `send_read_receipts`, the customer's last message is also "
            "marked read on WhatsApp, after the response; a failed receipt never fails this "
            "request."
        ),
    )
    async def mark_read(
        self,
        user_db: NamedDependency[AgentDb],
        channel_keys: NamedDependency[ChannelKeys],
        d360: NamedDependency[D360Client],
        conversation_id: ConversationId,
    ) -> Response[ConversationWithDetails]:
        row = await _visible(user_db, conversation_id)
        had_unread = row.unread_count > 0 or not row.is_read
        if not await conversations_repo.mark_read(user_db, conversation_id):
            raise not_found()
        receipt = None
        if had_unread:
            receipt = await read_receipt_task(
                db=user_db, keys=channel_keys, d360=d360, conversation=row
            )
        updated = await _visible(user_db, conversation_id)
        return Response(ConversationWithDetails.build(updated, now_utc()), background=receipt)

    @post(
        "/{conversation_id:uuid}/archive",
        responses=AGENT_ERRORS,
        operation_id="archiveConversation",
        operation_class=AgentOperation,
        status_code=200,
        summary="Archive",
    )
    async def archive(
        self, user_db: NamedDependency[AgentDb], conversation_id: ConversationId
    ) -> ConversationWithDetails:
        if not await conversations_repo.set_status(user_db, conversation_id, "archived"):
            raise not_found()
        return await _details(user_db, conversation_id)

    @post(
        "/{conversation_id:uuid}/unarchive",
        responses=AGENT_ERRORS,
        operation_id="unarchiveConversation",
        operation_class=AgentOperation,
        status_code=200,
        summary="Unarchive (a new inbound message also does this)",
    )
    async def unarchive(
        self, user_db: NamedDependency[AgentDb], conversation_id: ConversationId
    ) -> ConversationWithDetails:
        if not await conversations_repo.set_status(user_db, conversation_id, "active"):
            raise not_found()
        return await _details(user_db, conversation_id)

    @put(
        "/{conversation_id:uuid}/contact",
        responses=AGENT_ERRORS,
        operation_id="linkContact",
        operation_class=AgentOperation,
        summary="Link a contact of the same workspace (null unlinks)",
        description="422 on `contact_id` when it is not a contact of this conversation's "
        "workspace; nothing changes then.",
    )
    async def link_contact(
        self,
        user_db: NamedDependency[AgentDb],
        conversation_id: ConversationId,
        data: JSONBody[LinkContactBody],
    ) -> ConversationWithDetails:
        row = await _visible(user_db, conversation_id)
        if data.contact_id is not None and not await conversations_repo.contact_in_workspace(
            user_db, data.contact_id, row.workspace_id
        ):
            raise invalid("contact_id", "no such contact in this conversation's workspace")
        if not await conversations_repo.link_contact(user_db, conversation_id, data.contact_id):
            raise not_found()
        return await _details(user_db, conversation_id)

    @get(
        "/{conversation_id:uuid}/templates",
        responses=AGENT_ERRORS,
        operation_id="listTemplates",
        operation_class=AgentOperation,
        summary="Templates this conversation can be sent (also outside the 24-hour window)",
        description=(
            "The approved templates of the conversation's channel, with the number of "
            "parameters each part needs; send one with a `template` reply. The list is "
            "360dialog's as last refreshed (`template refresh`, the worker every "
            "TEMPLATE_REFRESH_SECONDS, and after 360dialog refused a template). Templates "
            "with a media header, named parameters or a button that takes a parameter "
            "are not listed."
        ),
    )
    async def list_templates(
        self, user_db: NamedDependency[AgentDb], conversation_id: ConversationId
    ) -> TemplateList:
        row = await _visible(user_db, conversation_id)
        channel = await conversations_repo.channel(user_db, row.phone_number_id, row.workspace_id)
        if channel is None:
            return TemplateList(items=[])
        stored = await templates_repo.for_channel(user_db, channel.id)
        usable = (UsableTemplate.usable(template) for template in stored)
        return TemplateList(items=[t for t in usable if t is not None])

    @post(
        "/{conversation_id:uuid}/messages",
        responses=SEND_ERRORS,
        operation_id="sendMessage",
        operation_class=SendOperation,
        status_code=201,
        summary="Reply: text, media, a template or interactive buttons/list",
        description=(
            "The body's `type` says the kind: `text`, `image`, `video`, `audio`, `document`, "
            "`sticker` (by `media_url` or `media_id`), `template` (`name`, `language`, "
            "`parameters`: see the conversation's /templates) or `interactive` (`button` or "
            "`list`). Only a `template` may be sent outside the 24-hour window. Requires an "
            "`Idempotency-Key` "
            "(1-200 characters): retrying with the same key never sends twice. 201 with the "
            "message once 360dialog accepted it (replays carry `Idempotent-Replayed: true`). "
            "Errors: 409 `window_closed` (outside the window for any kind but `template`: "
            "nothing is sent, `detail.needs` is `template`; or Meta's 131047, stored as "
            "failed), 409 `send_in_progress` (same key, first request still sending), 409 "
            "`channel_unavailable`, 422 `invalid_input` (naming the field, also a template's "
            "`parameters.body`/`parameters.header` count), 422 `template_unavailable` (no such "
            "template on the channel, or not approved: nothing is sent), 422 "
            "`template_rejected` (Meta refused it, 132000-132016: stored as failed, the "
            "channel's templates are re-read), 422 `idempotency_key_reused` (same key, "
            "different body), 502 `send_failed` (stored as `failed` with Meta's code and "
            "message in `detail`). A failed send is final: send again with a new key. A "
            "customer known only by username is sent to by user id; 422 "
            "`recipient_unsupported` when Meta cannot deliver that message to a user id "
            "(131062)."
        ),
    )
    async def send_message(
        self,
        agent: NamedDependency[AuthUser],
        user_db: NamedDependency[AgentDb],
        channel_keys: NamedDependency[ChannelKeys],
        send_ledger: NamedDependency[SendLedger],
        d360: NamedDependency[D360Client],
        refresh_templates: NamedDependency[Callable[[str], None]],
        conversation_id: ConversationId,
        data: JSONBody[Reply],
        idempotency_key: IdempotencyKey,
    ) -> Response[Message]:
        conversation = await _visible(user_db, conversation_id)
        return await send_reply(
            db=user_db,
            keys=channel_keys,
            ledger=send_ledger,
            d360=d360,
            agent=agent,
            conversation=conversation,
            reply=data,
            idempotency_key=idempotency_key,
            refresh_templates=refresh_templates,
        )


async def _visible(db: AgentDb, conversation_id: uuid.UUID) -> ConversationDetailsRow:
    row = await conversations_repo.get(db, conversation_id)
    if row is None:
        raise not_found()
    return row


async def _details(db: AgentDb, conversation_id: uuid.UUID) -> ConversationWithDetails:
    return ConversationWithDetails.build(await _visible(db, conversation_id), now_utc())
