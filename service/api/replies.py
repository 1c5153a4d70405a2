"""Replying and read receipts: the steps between the agent's database and 360dialog.

A reply arrives already typed: the body decodes into one kind of
`service.whatsapp.domain.Reply` (text, image, video, audio, document, sticker,
template, interactive), each kind's shape rules checked by the decoder (422
naming the field otherwise). Every kind then takes the one path below
(`send_reply`), idempotent per `Idempotency-Key` (following the IETF
idempotency-key draft):

1. A key this agent already used in this conversation replays the stored
   outcome and never sends again (keys belong to their sender: another
   agent's key neither blocks nor replays): 201 with the message once sent (header
   `Idempotent-Replayed: true`), the stored failure's error again when it
   failed, 409 `send_in_progress` while the first request is still sending,
   422 `idempotency_key_reused` when the body differs.
2. A kind that needs the 24-hour window (all but templates) outside it: 409
   `window_closed` saying a template is needed, nothing stored or sent.
3. `prepare` makes the stored form: the checks that need the database
   (a template must be approved on this channel, with as many parameters as
   it has placeholders: 422 otherwise) and the content kept in `messages`.
4. The message is stored `pending` with its key through the `SendLedger`
   (agents cannot insert messages themselves); the unique (conversation,
   sender, key) makes a concurrent duplicate lose here, before anything is
   sent.
5. 360dialog is called with the channel's key (`cloud_message` builds the
   body); the outcome is stored through the service-role `SendLedger`: `sent`
   with the wamid (201), or `failed` with Meta's error code and message
   (`failure_error` maps it: 409 `window_closed` for 131047, 422
   `recipient_unsupported` for 131062 (no such message to a user id), 422
   `template_rejected` for a template error (132000-132016), else 502
   `send_failed`; the stored message is in `detail.message`).

A customer known only by username (no phone, a business-scoped user id) is
sent to through the Cloud API's `recipient` field; a conversation with
neither is refused with 422 `recipient_unavailable` before anything is stored.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Response
from litestar.background_tasks import BackgroundTask

from service.api.agent import invalid, not_found, text_input
from service.api.auth import AuthUser
from service.api.errors import ApiError
from service.repositories import conversations as conversations_repo
from service.repositories import messages as messages_repo
from service.repositories import templates as templates_repo
from service.repositories.channel_keys import ChannelKeys
from service.repositories.conversations import Conversation
from service.repositories.messages import (
    IdempotencyKeyTaken,
    Message,
    NewOutbound,
    SenderNotMember,
)
from service.repositories.roles import AgentDb
from service.repositories.send_ledger import SendLedger
from service.whatsapp.d360 import D360Client
from service.whatsapp.domain import (
    USER_ID,
    AudioReply,
    DocumentReply,
    ImageReply,
    InteractiveReply,
    Recipient,
    Reply,
    StickerReply,
    TemplateReply,
    TextReply,
    VideoReply,
    reply_content,
    reply_type,
    window_status,
)
from service.whatsapp.errors import (
    TEMPLATE_ERROR_CODES,
    USER_ID_UNSUPPORTED_CODE,
    WINDOW_CLOSED_CODES,
    D360AuthError,
    D360Error,
    D360Exception,
)
from service.whatsapp.templates import APPROVED, fill, needs

log = logging.getLogger(__name__)

REPLAYED_HEADER = "Idempotent-Replayed"
# Keys of a stored template reply that the service filled in from the template.
FILLED_IN = frozenset({"body", "header"})
_ERROR_MESSAGE_LIMIT = 1000


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- sending ------------------------------------------------------------------------------


def recipient_of(conversation: Conversation) -> Recipient:
    """Where a reply goes; 422 when the conversation has nowhere to send to.

    A customer with a phone gets it as `to`; one known only by username gets
    the business-scoped user id. Anything else is refused rather than sent
    somewhere else.
    """
    if conversation.phone is not None:
        try:
            return Recipient(to=conversation.phone)
        except ValueError:
            pass
    elif conversation.user_id is not None and USER_ID.fullmatch(conversation.user_id):
        return Recipient(user_id=conversation.user_id)
    raise ApiError(
        422,
        "recipient_unavailable",
        "this conversation has neither a phone number nor a WhatsApp user id to send to",
    )


class Prepared(msgspec.Struct, frozen=True, kw_only=True):
    """A reply ready to store and send: what `messages` keeps of it, and the reply itself."""

    reply: Reply
    content: dict[str, Any]
    media_url: str | None = None
    media_filename: str | None = None


async def prepare(db: AgentDb, reply: Reply, conversation: Conversation) -> Prepared:
    """The stored form of a reply; the checks that need the database happen here (422s)."""
    content = reply_content(reply)
    match reply:
        case ImageReply() | VideoReply() | AudioReply() | StickerReply():
            return Prepared(reply=reply, content=content, media_url=reply.media_url)
        case DocumentReply():
            return Prepared(
                reply=reply,
                content=content,
                media_url=reply.media_url,
                media_filename=reply.filename,
            )
        case TemplateReply():
            return await _prepare_template(db, reply, conversation, content)
        case TextReply() | InteractiveReply():
            return Prepared(reply=reply, content=content)


async def _prepare_template(
    db: AgentDb,
    reply: TemplateReply,
    conversation: Conversation,
    content: dict[str, Any],
) -> Prepared:
    """An approved template of this channel with one parameter per placeholder, filled in."""
    named = f"template {reply.name!r} ({reply.language})"
    channel = await conversations_repo.channel(
        db, conversation.phone_number_id, conversation.workspace_id
    )
    template = (
        await templates_repo.one(db, channel.id, reply.name, reply.language) if channel else None
    )
    if template is None:
        raise ApiError(
            422,
            "template_unavailable",
            f"{named} is not a template of this conversation's channel "
            "(GET its /templates for the ones it can use)",
        )
    if template.status != APPROVED:
        raise ApiError(
            422,
            "template_unavailable",
            f"{named} is {template.status}: only approved templates can be sent",
        )
    needed = needs(template.components)
    if needed.unsupported is not None:
        raise ApiError(
            422, "template_unavailable", f"{named} cannot be sent from here: {needed.unsupported}"
        )
    given = reply.parameters
    for part, want, got in (
        ("header", needed.parameters.header, len(given.header)),
        ("body", needed.parameters.body, len(given.body)),
    ):
        if want != got:
            raise invalid(
                f"parameters.{part}",
                f"{named} needs {want} {part} parameter(s), got {got}",
            )
    filled = {"body": fill(needed.body, given.body), "header": fill(needed.header, given.header)}
    content.update({k: v for k, v in filled.items() if v is not None})
    return Prepared(reply=reply, content=content)


def _message_json(message: Message) -> dict[str, Any]:
    encoded: dict[str, Any] = msgspec.to_builtins(message)
    return encoded


def failure_error(message: Message) -> ApiError:
    """The error a failed send answers with (first time and on every replay)."""
    detail = {
        "reason": message.error_message,
        "code": message.error_code,
        "message": _message_json(message),
    }
    if message.error_code in WINDOW_CLOSED_CODES:
        return ApiError(409, "window_closed", detail)
    if message.error_code == USER_ID_UNSUPPORTED_CODE:
        # Meta cannot deliver this message to a user id; nothing will change that.
        return ApiError(422, "recipient_unsupported", detail)
    if message.error_code in TEMPLATE_ERROR_CODES:
        return ApiError(422, "template_rejected", detail)
    return ApiError(502, "send_failed", detail)


def replay(existing: Message, reply: Reply) -> Response[Message]:
    stored = existing.content
    if isinstance(reply, TemplateReply):
        # The text the service filled in is not part of the request.
        stored = {k: v for k, v in stored.items() if k not in FILLED_IN}
    if existing.type != reply_type(reply) or stored != reply_content(reply):
        raise ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different message",
        )
    if existing.status == "pending":
        raise ApiError(
            409,
            "send_in_progress",
            {
                "reason": "a request with this Idempotency-Key is still being sent; retry later",
                "message": _message_json(existing),
            },
        )
    if existing.status == "failed":
        raise failure_error(existing)
    return Response(existing, status_code=201, headers={REPLAYED_HEADER: "true"})


async def send_reply(
    *,
    db: AgentDb,
    keys: ChannelKeys,
    ledger: SendLedger,
    d360: D360Client,
    agent: AuthUser,
    conversation: Conversation,
    reply: Reply,
    idempotency_key: str,
    refresh_templates: Callable[[str], None],
) -> Response[Message]:
    """The one send path for every kind of reply (the module docstring gives the steps)."""
    text_input(idempotency_key, "Idempotency-Key", "header")
    recipient = recipient_of(conversation)

    existing = await ledger.by_key(conversation.id, agent.user_id, idempotency_key)
    if existing is not None:
        return replay(existing, reply)

    if reply.needs_window:
        require_open_window(conversation)

    channel, api_key = await channel_key(db, keys, conversation)
    prepared = await prepare(db, reply, conversation)
    try:
        return await store_and_send(
            ledger=ledger,
            keys=keys,
            d360=d360,
            agent=agent,
            conversation=conversation,
            prepared=prepared,
            idempotency_key=idempotency_key,
            recipient=recipient,
            channel=channel,
            api_key=api_key,
        )
    except ApiError as exc:
        if exc.error == "template_rejected":
            # Meta no longer takes the template as stored: re-read the channel's list.
            refresh_templates(channel)
        raise


async def channel_key(
    db: AgentDb, keys: ChannelKeys, conversation: Conversation
) -> tuple[str, str]:
    """The conversation's channel (phone_number_id) and its 360dialog key; 409 when inactive."""
    channel = await conversations_repo.channel(
        db, conversation.phone_number_id, conversation.workspace_id
    )
    api_key = (
        await keys.api_key_for(channel.phone_number_id)
        if channel is not None and channel.is_active
        else None
    )
    if channel is None or api_key is None:
        raise ApiError(409, "channel_unavailable", "this conversation's channel is not active")
    return channel.phone_number_id, api_key


async def store_and_send(
    *,
    ledger: SendLedger,
    keys: ChannelKeys,
    d360: D360Client,
    agent: AuthUser,
    conversation: Conversation,
    prepared: Prepared,
    idempotency_key: str,
    recipient: Recipient,
    channel: str,
    api_key: str,
    as_stored: Callable[[Message], Reply] | None = None,
) -> Response[Message]:
    """Steps 4 and 5: the reply stored `pending` with its key, then sent and its outcome stored.

    `as_stored` gives this request as the reply stored under its key would be
    when parts of the reply are not the request's own (an uploaded file's media
    id): a concurrent retry is then compared with what it asked for.
    """
    reply = prepared.reply
    new = NewOutbound(
        conversation_id=conversation.id,
        sent_by=agent.user_id,
        type=reply_type(reply),
        content=prepared.content,
        idempotency_key=idempotency_key,
        media_url=prepared.media_url,
        media_filename=prepared.media_filename,
    )
    try:
        pending = await ledger.open(new)
    except IdempotencyKeyTaken:
        # A concurrent request of this agent with the same key won the insert.
        existing = await ledger.by_key(conversation.id, agent.user_id, idempotency_key)
        if existing is None:
            raise
        return replay(existing, as_stored(existing) if as_stored else reply)
    except SenderNotMember as exc:
        # Removed from the workspace since the conversation was read (an upload
        # takes a while): as for any conversation the agent cannot see.
        raise not_found() from exc

    # Once the message is stored, finish even if the client goes away: an
    # abandoned send would stay `pending` and block its key forever.
    task = asyncio.ensure_future(
        _deliver(ledger, keys, d360, api_key, channel, pending, recipient, reply)
    )
    message = await asyncio.shield(task)
    if message.status == "failed":
        raise failure_error(message)
    return Response(message, status_code=201)


def require_open_window(conversation: Conversation) -> None:
    window = window_status(conversation.last_customer_message_at, now_utc())
    if window.state != "closed":
        return
    closed = window.closes_at.isoformat() if window.closes_at else None
    raise ApiError(
        409,
        "window_closed",
        {
            "reason": (
                "the 24-hour customer service window is closed"
                + (f" (since {closed})" if closed else " (the customer never wrote)")
                + ": only a template message can be sent (type `template`)"
            ),
            "closes_at": closed,
            "needs": "template",
        },
    )


async def _deliver(
    ledger: SendLedger,
    keys: ChannelKeys,
    d360: D360Client,
    api_key: str,
    phone_number_id: str,
    pending: Message,
    recipient: Recipient,
    reply: Reply,
) -> Message:
    try:
        sent = await d360.send_message(api_key, recipient, reply)
    except D360Exception as exc:
        if isinstance(exc, D360AuthError):
            keys.forget(phone_number_id)
        code, reason = _failure(exc)
        log.warning("send of message %s failed: %s", pending.id, reason)
        failed = await ledger.record(
            pending.id,
            sent_by=pending_sender(pending),
            status="failed",
            at=now_utc(),
            error_code=code,
            error_message=reason,
        )
        return failed or pending
    try:
        stored = await ledger.record(
            pending.id,
            sent_by=pending_sender(pending),
            status="sent",
            at=now_utc(),
            wamid=sent.message_id,
        )
    except Exception:
        log.exception(
            "message %s was sent as %s but could not be recorded", pending.id, sent.message_id
        )
        raise
    return stored or pending


def pending_sender(pending: Message) -> uuid.UUID:
    assert pending.sent_by is not None, "an agent's reply always has its sender"
    return pending.sent_by


def _failure(exc: D360Exception) -> tuple[int | None, str]:
    if isinstance(exc, D360Error):
        text = exc.message or f"HTTP {exc.status_code}"
        if exc.details and exc.details not in text:
            text = f"{text}: {exc.details}"
        return exc.code, text[:_ERROR_MESSAGE_LIMIT]
    # Network failures: no HTTP answer, so no code. str() names the call, never the key.
    return None, f"network error: {exc}"[:_ERROR_MESSAGE_LIMIT]


# --- read receipts ------------------------------------------------------------------------


async def read_receipt_task(
    *,
    db: AgentDb,
    keys: ChannelKeys,
    d360: D360Client,
    conversation: Conversation,
) -> BackgroundTask | None:
    """A background task marking the last inbound message read, when the channel wants it.

    Never raises: a read receipt is a courtesy, its failure must not fail the request.
    """
    try:
        channel = await conversations_repo.channel(
            db, conversation.phone_number_id, conversation.workspace_id
        )
        if channel is None or not channel.send_read_receipts or not channel.is_active:
            return None
        wamid = await messages_repo.last_inbound_wamid(db, conversation.id)
        if wamid is None:
            return None
        api_key = await keys.api_key_for(channel.phone_number_id)
        if api_key is None:
            return None
    except Exception as exc:
        log.warning(
            "read receipt for conversation %s skipped: %s", conversation.id, type(exc).__name__
        )
        return None
    return BackgroundTask(_send_read_receipt, d360, keys, api_key, channel.phone_number_id, wamid)


async def _send_read_receipt(
    d360: D360Client, keys: ChannelKeys, api_key: str, phone_number_id: str, wamid: str
) -> None:
    try:
        await d360.mark_as_read(api_key, wamid)
    except D360Exception as exc:
        if isinstance(exc, D360AuthError):
            keys.forget(phone_number_id)
        # The exception text names the call and Meta's error, never the key.
        log.warning("read receipt for %s failed: %s", wamid, exc)
    except Exception:
        log.exception("read receipt for %s failed", wamid)
