"""Replying and read receipts: the steps between the agent's database and 360dialog.

Sending a reply (idempotent per `Idempotency-Key`, following the IETF
idempotency-key draft):

1. A key this agent already used in this conversation replays the stored
   outcome and never sends again (keys belong to their sender: another
   agent's key neither blocks nor replays): 201 with the message once sent (header
   `Idempotent-Replayed: true`), the stored failure's error again when it
   failed, 409 `send_in_progress` while the first request is still sending,
   422 `idempotency_key_reused` when the body differs.
2. Outside the 24-hour window: 409 `window_closed`, nothing stored or sent.
3. The message is stored `pending` with its key through the `SendLedger`
   (agents cannot insert messages themselves); the unique (conversation,
   sender, key) makes a concurrent duplicate lose here, before anything is
   sent.
4. 360dialog is called with the channel's key; the outcome is stored through
   the service-role `SendLedger`: `sent` with the wamid (201), or `failed`
   with Meta's error code and message (409 `window_closed` for 131047, 422
   `recipient_unsupported` for 131062 (no such message to a user id), else
   502 `send_failed`; the stored message is in `detail.message`).

A customer known only by username (no phone, a business-scoped user id) is
sent to through the Cloud API's `recipient` field; a conversation with
neither is refused with 422 `recipient_unavailable` before anything is stored.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Response
from litestar.background_tasks import BackgroundTask
from postgrest import APIError, AsyncPostgrestClient

from service.api.agent import invalid, text_input
from service.api.auth import AuthUser
from service.api.errors import ApiError
from service.api.schemas import SendMessageBody
from service.repositories import conversations as conversations_repo
from service.repositories import messages as messages_repo
from service.repositories.channel_keys import ChannelKeys
from service.repositories.conversations import Conversation
from service.repositories.messages import Message, NewOutbound
from service.repositories.send_ledger import SendLedger
from service.whatsapp.d360 import D360Client
from service.whatsapp.domain import (
    USER_ID,
    MediaContent,
    Send360MessageParams,
    TextContent,
    window_status,
)
from service.whatsapp.errors import (
    USER_ID_UNSUPPORTED_CODE,
    WINDOW_CLOSED_CODES,
    D360AuthError,
    D360Error,
    D360Exception,
)

log = logging.getLogger(__name__)

REPLAYED_HEADER = "Idempotent-Replayed"
_ERROR_MESSAGE_LIMIT = 1000


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- sending ------------------------------------------------------------------------------


class Recipient(msgspec.Struct, frozen=True):
    to: str | None
    user_id: str | None


def recipient_of(conversation: Conversation) -> Recipient:
    """Where a reply goes; 422 when the conversation has nowhere to send to.

    A customer with a phone gets it as `to`; one known only by username gets
    the business-scoped user id as `recipient`. Anything else is refused
    rather than sent somewhere else.
    """
    if conversation.phone is not None:
        return Recipient(conversation.phone, None)
    if conversation.user_id is not None and USER_ID.fullmatch(conversation.user_id):
        return Recipient(None, conversation.user_id)
    raise ApiError(
        422,
        "recipient_unavailable",
        "this conversation has neither a phone number nor a WhatsApp user id to send to",
    )


def send_params(body: SendMessageBody, conversation: Conversation) -> Send360MessageParams:
    """The 360dialog message for a request body; 422 naming the field when it does not fit."""
    target = recipient_of(conversation)
    to, recipient = target.to, target.user_id
    for key in ("text", "caption", "filename", "media_url"):
        text_input(getattr(body, key), key)
    if body.type == "text":
        if body.text is None or not body.text.strip():
            raise invalid("text", "a text message needs a non-empty text")
        for key in ("media_url", "caption", "filename"):
            if getattr(body, key) is not None:
                raise invalid(key, "a text message takes only text")
    else:
        if body.media_url is None:
            raise invalid("media_url", f"an {body.type} message needs a media_url")
        if body.text is not None:
            raise invalid("text", "a media message takes a caption, not text")
        if body.caption is not None and body.type == "audio":
            raise invalid("caption", "audio messages cannot have a caption")
        if body.filename is not None and body.type != "document":
            raise invalid("filename", "only documents can have a filename")
    try:
        if body.type == "text":
            return Send360MessageParams(to=to, recipient=recipient, type="text", body=body.text)
        return Send360MessageParams(
            to=to,
            recipient=recipient,
            type=body.type,
            link=body.media_url,
            caption=body.caption,
            filename=body.filename,
        )
    except ValueError as exc:
        raise invalid("type", str(exc)) from exc


def stored_content(body: SendMessageBody) -> dict[str, Any]:
    content: TextContent | MediaContent
    if body.type == "text":
        assert body.text is not None
        content = TextContent(body=body.text)
    else:
        content = MediaContent(link=body.media_url, caption=body.caption, filename=body.filename)
    built: dict[str, Any] = msgspec.to_builtins(content)
    return built


def message_json(message: Message) -> dict[str, Any]:
    encoded: dict[str, Any] = msgspec.to_builtins(message)
    return encoded


def failure_error(message: Message) -> ApiError:
    """The error a failed send answers with (first time and on every replay)."""
    detail = {
        "reason": message.error_message,
        "code": message.error_code,
        "message": message_json(message),
    }
    if message.error_code in WINDOW_CLOSED_CODES:
        return ApiError(409, "window_closed", detail)
    if message.error_code == USER_ID_UNSUPPORTED_CODE:
        # Meta cannot deliver this message to a user id; nothing will change that.
        return ApiError(422, "recipient_unsupported", detail)
    return ApiError(502, "send_failed", detail)


def _replay(existing: Message, body: SendMessageBody, content: dict[str, Any]) -> Response[Message]:
    if existing.type != body.type or existing.content != content:
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
                "message": message_json(existing),
            },
        )
    if existing.status == "failed":
        raise failure_error(existing)
    return Response(existing, status_code=201, headers={REPLAYED_HEADER: "true"})


async def send_reply(
    *,
    db: AsyncPostgrestClient,
    keys: ChannelKeys,
    ledger: SendLedger,
    d360: D360Client,
    agent: AuthUser,
    conversation: Conversation,
    body: SendMessageBody,
    idempotency_key: str,
) -> Response[Message]:
    text_input(idempotency_key, "Idempotency-Key", "header")
    params = send_params(body, conversation)
    content = stored_content(body)

    existing = await ledger.by_key(conversation.id, agent.user_id, idempotency_key)
    if existing is not None:
        return _replay(existing, body, content)

    require_open_window(conversation)

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

    new = NewOutbound(
        conversation_id=conversation.id,
        sent_by=agent.user_id,
        type=body.type,
        content=content,
        idempotency_key=idempotency_key,
        media_url=body.media_url,
        media_filename=body.filename,
    )
    try:
        pending = await ledger.open(new)
    except APIError as exc:
        if exc.code != "23505":
            raise
        # A concurrent request of this agent with the same key won the insert.
        existing = await ledger.by_key(conversation.id, agent.user_id, idempotency_key)
        if existing is None:
            raise
        return _replay(existing, body, content)

    # Once the message is stored, finish even if the client goes away: an
    # abandoned send would stay `pending` and block its key forever.
    task = asyncio.ensure_future(
        deliver(ledger, keys, d360, api_key, channel.phone_number_id, pending, params)
    )
    message = await asyncio.shield(task)
    if message.status == "failed":
        raise failure_error(message)
    return Response(message, status_code=201)


def require_open_window(conversation: Conversation) -> None:
    window = window_status(conversation.last_customer_message_at, now_utc())
    if window.state == "closed":
        closed = window.closes_at.isoformat() if window.closes_at else None
        raise ApiError(
            409,
            "window_closed",
            {
                "reason": (
                    "the 24-hour customer service window is closed"
                    + (f" (since {closed})" if closed else " (the customer never wrote)")
                    + ": only template messages can be sent"
                ),
                "closes_at": closed,
            },
        )


async def deliver(
    ledger: SendLedger,
    keys: ChannelKeys,
    d360: D360Client,
    api_key: str,
    phone_number_id: str,
    pending: Message,
    params: Send360MessageParams,
) -> Message:
    try:
        sent = await d360.send_message(api_key, params)
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
    db: AsyncPostgrestClient,
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
