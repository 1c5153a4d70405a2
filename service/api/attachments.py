"""POST /api/conversations/{id}/attachments: a file from the agent's computer, sent as a reply.

The body is multipart/form-data, `caption` (optional) then `file` (last), and
is never held whole: it is read as it arrives and forwarded to 360dialog
(`POST /media`) chunk by chunk, then sent by the returned media id.

Order, so that nothing leaves and nothing is stored for a file WhatsApp would
refuse:

1. The request must say its length (411 otherwise); the route's own body
   limit (WhatsApp's largest, 100 MB, plus the form's overhead) is checked on
   it before anything is read.
2. The form is read up to the file's part: its content type decides the
   message type (415 when WhatsApp takes no such file) and its size, bounded
   by the request's length, must fit that type's limit (413).
3. The same Idempotency-Key rules as every reply: a key this agent already
   used replays the stored outcome (the file is then not read nor uploaded
   again; the retry must name the same type, caption and file name, else 422
   `idempotency_key_reused`); then the window and the channel.
4. The file is uploaded. Only when 360dialog returned its id is the reply
   stored `pending` and sent by that id: a failed or interrupted upload stores
   nothing, and its retry with the same key uploads again (an uploaded file
   that was never sent expires at Meta after 30 days).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter
from postgrest import APIError, AsyncPostgrestClient

from service.api.agent import (
    AGENT_DEPENDENCIES,
    AGENT_EXCEPTION_HANDLERS,
    BEARER_SECURITY,
    invalid,
    not_found,
    text_input,
)
from service.api.auth import AuthUser
from service.api.errors import ApiError, documented
from service.api.openapi import ConversationId, UploadOperation
from service.api.replies import (
    REPLAYED_HEADER,
    deliver,
    failure_error,
    message_json,
    recipient_of,
    require_open_window,
)
from service.api.upload_form import FileHead, FormError, UploadForm, boundary_of
from service.repositories import conversations as conversations_repo
from service.repositories.channel_keys import ChannelKeys
from service.repositories.conversations import Conversation
from service.repositories.messages import Message, NewOutbound
from service.repositories.send_ledger import SendLedger
from service.whatsapp.d360 import D360Client
from service.whatsapp.domain import MediaContent, Send360MessageParams
from service.whatsapp.errors import D360AuthError, D360Exception
from service.whatsapp.uploads import MAX_UPLOAD_BYTES, UploadKind, UploadRefused, upload_kind

# Room for the form around the file: part headers, a caption of up to 4 KiB, delimiters.
FORM_OVERHEAD_BYTES = 64 * 1024
UPLOAD_ERRORS = documented(400, 401, 404, 409, 411, 413, 415, 422, 502, 503)


class AttachmentController(Controller):
    path = "/api/conversations"
    tags = ["conversations"]  # noqa: RUF012 (Litestar reads it per instance)
    dependencies = AGENT_DEPENDENCIES
    exception_handlers = AGENT_EXCEPTION_HANDLERS
    security = BEARER_SECURITY

    @post(
        "/{conversation_id:uuid}/attachments",
        responses=UPLOAD_ERRORS,
        operation_id="sendAttachment",
        operation_class=UploadOperation,
        status_code=201,
        request_max_body_size=MAX_UPLOAD_BYTES + FORM_OVERHEAD_BYTES,
        summary="Reply with a file from the agent's computer (inside the 24-hour window)",
        description=(
            "multipart/form-data: `caption` (optional, not for audio or stickers), then "
            "`file` as the last part, with its content type and name. The type decides the "
            "message: image (jpeg, png; 5 MB), video (mp4, 3gpp; 16 MB), audio (aac, amr, "
            "mpeg, mp4, ogg; 16 MB), sticker (webp; 500 KB) or document (pdf, text, Office; "
            "100 MB, sent with its file name). Checked before anything is uploaded or stored: "
            "415 `unsupported_media_type`, 413 `payload_too_large` (the request's "
            "Content-Length bounds the file; 411 without one). The file is streamed to "
            "360dialog and sent by its media id. `Idempotency-Key` as for `sendMessage`: a "
            "retry after the reply was stored replays it without uploading again (same type, "
            "caption and file name, else 422 `idempotency_key_reused`); a retry after a failed "
            "upload uploads again. 502 `upload_failed` when 360dialog refused the file "
            "(nothing stored)."
        ),
    )
    async def send_attachment(
        self,
        request: Request[Any, Any, Any],
        agent: NamedDependency[AuthUser],
        user_db: NamedDependency[AsyncPostgrestClient],
        channel_keys: NamedDependency[ChannelKeys],
        send_ledger: NamedDependency[SendLedger],
        d360: NamedDependency[D360Client],
        conversation_id: ConversationId,
        idempotency_key: Annotated[
            str,
            HeaderParameter(
                name="Idempotency-Key",
                min_length=1,
                max_length=200,
                description="A key of yours for this reply (a UUID): a retry with the same key "
                "never sends twice",
            ),
        ],
    ) -> Response[Message]:
        text_input(idempotency_key, "Idempotency-Key", "header")
        try:
            boundary = boundary_of(request.headers.get("content-type"))
            length = _content_length(request.headers.get("content-length"))
            conversation = await conversations_repo.get(user_db, conversation_id)
            if conversation is None:
                raise not_found()
            form = UploadForm(request.stream(), boundary, length)
            head = await form.head()
            kind = upload_kind(head.content_type, head.size_at_most)
            return await _send_upload(
                db=user_db,
                keys=channel_keys,
                ledger=send_ledger,
                d360=d360,
                agent=agent,
                conversation=conversation,
                kind=kind,
                head=head,
                form=form,
                idempotency_key=idempotency_key,
            )
        except UploadRefused as exc:
            if exc.status == 413:
                raise ApiError(413, "payload_too_large", exc.reason) from exc
            raise ApiError(415, "unsupported_media_type", exc.reason) from exc
        except FormError as exc:
            raise invalid(exc.key, exc.reason) from exc


def _content_length(value: str | None) -> int:
    if value is None or not value.isdigit():
        raise ApiError(
            411, "length_required", "send the upload with a Content-Length (not chunked)"
        )
    return int(value)


# Types whose message has no caption; Meta refuses one.
_NO_CAPTION = frozenset({"audio", "sticker"})


async def _send_upload(
    *,
    db: AsyncPostgrestClient,
    keys: ChannelKeys,
    ledger: SendLedger,
    d360: D360Client,
    agent: AuthUser,
    conversation: Conversation,
    kind: UploadKind,
    head: FileHead,
    form: UploadForm,
    idempotency_key: str,
) -> Response[Message]:
    caption = text_input(head.caption, "caption")
    if caption is not None and kind.type in _NO_CAPTION:
        raise invalid("caption", f"{kind.type} messages cannot have a caption")
    # WhatsApp shows a file name for documents only.
    filename = text_input(head.filename, "filename") if kind.type == "document" else None
    mime_type = (head.content_type or "").lower()
    # What the request says; the media id is 360dialog's answer, not part of it.
    said = MediaContent(mime_type=mime_type, caption=caption, filename=filename)
    recipient = recipient_of(conversation)

    existing = await ledger.by_key(conversation.id, agent.user_id, idempotency_key)
    if existing is not None:
        return _replay(existing, kind, said)
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

    try:
        media_id = await d360.upload_media(
            api_key,
            form.file(kind.max_bytes),
            mime_type=mime_type,
            filename=filename or head.filename or kind.type,
        )
    except D360Exception as exc:
        if isinstance(exc, D360AuthError):
            keys.forget(channel.phone_number_id)
        raise ApiError(502, "upload_failed", f"360dialog refused the file: {exc}") from exc

    content = msgspec.structs.replace(said, media_id=media_id)
    new = NewOutbound(
        conversation_id=conversation.id,
        sent_by=agent.user_id,
        type=kind.type,
        content=msgspec.to_builtins(content),
        idempotency_key=idempotency_key,
        media_filename=filename,
    )
    try:
        pending = await ledger.open(new)
    except APIError as exc:
        if exc.code != "23505":
            raise
        existing = await ledger.by_key(conversation.id, agent.user_id, idempotency_key)
        if existing is None:
            raise
        return _replay(existing, kind, said)
    params = Send360MessageParams(
        to=recipient.to,
        recipient=recipient.user_id,
        type=kind.type,
        media_id=media_id,
        caption=caption,
        filename=filename,
    )
    task = asyncio.ensure_future(
        deliver(ledger, keys, d360, api_key, channel.phone_number_id, pending, params)
    )
    message = await asyncio.shield(task)
    if message.status == "failed":
        raise failure_error(message)
    return Response(message, status_code=201)


def _replay(existing: Message, kind: UploadKind, said: MediaContent) -> Response[Message]:
    stored = {k: v for k, v in existing.content.items() if k != "media_id"}
    if existing.type != kind.type or stored != msgspec.to_builtins(said):
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
