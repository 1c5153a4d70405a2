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

from typing import Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency

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
from service.api.openapi import ConversationId, IdempotencyKey, UploadOperation
from service.api.replies import (
    channel_key,
    prepare,
    recipient_of,
    replay,
    require_open_window,
    store_and_send,
)
from service.api.upload_form import FileHead, FormError, UploadForm, boundary_of
from service.repositories import conversations as conversations_repo
from service.repositories.channel_keys import ChannelKeys
from service.repositories.conversations import Conversation
from service.repositories.messages import Message
from service.repositories.roles import AgentDb
from service.repositories.send_ledger import SendLedger
from service.whatsapp.d360 import D360Client
from service.whatsapp.domain import Reply, parse_reply
from service.whatsapp.errors import D360AuthError, D360Exception
from service.whatsapp.uploads import MAX_UPLOAD_BYTES, UploadKind, UploadRefused, upload_kind
from service.whatsapp.vocabulary import MessageType

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
        user_db: NamedDependency[AgentDb],
        channel_keys: NamedDependency[ChannelKeys],
        send_ledger: NamedDependency[SendLedger],
        d360: NamedDependency[D360Client],
        conversation_id: ConversationId,
        idempotency_key: IdempotencyKey,
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


async def _send_upload(
    *,
    db: AgentDb,
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
    """The reply pipeline (service.api.replies) with the upload between its checks and the store."""
    # WhatsApp shows a file name for documents only.
    filename = head.filename if kind.type is MessageType.DOCUMENT else None
    # A form's empty caption field means none.
    caption = head.caption or None
    # Checks the caption and file name against the kind's rules before anything else.
    _reply(kind, caption, filename, _PROBE_ID)
    recipient = recipient_of(conversation)

    def as_stored(existing: Message) -> Reply:
        # The request is the same if, sent by the stored media id, it is the stored reply.
        stored_id = existing.content.get("media_id")
        media_id = stored_id if isinstance(stored_id, str) and stored_id else _PROBE_ID
        return _reply(kind, caption, filename, media_id)

    existing = await ledger.by_key(conversation.id, agent.user_id, idempotency_key)
    if existing is not None:
        return replay(existing, as_stored(existing))
    require_open_window(conversation)
    channel, api_key = await channel_key(db, keys, conversation)

    try:
        media_id = await d360.upload_media(
            api_key,
            form.file(kind.max_bytes),
            mime_type=(head.content_type or "").lower(),
            filename=head.filename or kind.type.value,
        )
    except D360Exception as exc:
        if isinstance(exc, D360AuthError):
            keys.forget(channel)
        raise ApiError(502, "upload_failed", f"360dialog refused the file: {exc}") from exc

    reply = _reply(kind, caption, filename, media_id)
    return await store_and_send(
        ledger=ledger,
        keys=keys,
        d360=d360,
        agent=agent,
        conversation=conversation,
        prepared=await prepare(db, reply, conversation),
        idempotency_key=idempotency_key,
        recipient=recipient,
        channel=channel,
        api_key=api_key,
        # A retry of this request may have uploaded the file and stored it first.
        as_stored=as_stored,
    )


# Stands in for 360dialog's id where only the rest of the reply is checked or compared.
_PROBE_ID = "0"


def _reply(kind: UploadKind, caption: str | None, filename: str | None, media_id: str) -> Reply:
    """The media reply the upload sends; 422 naming the field when the form breaks a rule."""
    # The tag as JSON would carry it: msgspec takes a str, not the StrEnum member.
    fields: dict[str, object] = {"type": kind.type.value, "media_id": media_id}
    if caption is not None:
        fields["caption"] = caption
    if filename is not None:
        fields["filename"] = filename
    try:
        return parse_reply(fields)
    except msgspec.ValidationError as exc:
        raise invalid(_field(str(exc)), str(exc)) from exc


def _field(message: str) -> str:
    """The form field a msgspec message names (`$.caption`, or unknown field `caption`)."""
    for name in ("caption", "filename"):
        if f"`{name}`" in message or f"$.{name}" in message:
            return "file" if name == "filename" else name
    return "file"
