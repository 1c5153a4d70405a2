"""/api/messages/{id}/media: a message's file, for an agent who may see the message."""

from __future__ import annotations

import uuid

from litestar import Controller, get
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.response import Stream

from service.api.agent import (
    AGENT_DEPENDENCIES,
    AGENT_ERRORS,
    AGENT_EXCEPTION_HANDLERS,
    BEARER_SECURITY,
    not_found,
)
from service.api.errors import ApiError
from service.api.media import (
    SAFETY_HEADERS,
    content_disposition,
    iterate_body,
    open_media,
    served_type,
)
from service.api.openapi import MediaOperation, MessageId
from service.repositories import conversations as conversations_repo
from service.repositories import messages as messages_repo
from service.repositories.channel_keys import ChannelKeys
from service.repositories.roles import AgentDb
from service.whatsapp.d360 import D360Client


class MessageController(Controller):
    path = "/api/messages"
    tags = ["messages"]  # noqa: RUF012 (Litestar reads it per instance)
    dependencies = AGENT_DEPENDENCIES
    exception_handlers = AGENT_EXCEPTION_HANDLERS
    security = BEARER_SECURITY

    @get(
        "/{message_id:uuid}/media",
        responses=AGENT_ERRORS,
        operation_id="getMessageMedia",
        operation_class=MediaOperation,
        summary="Stream a message's media",
        description=(
            "Received media is fetched through 360dialog with the channel's key and streamed. "
            "Images (not SVG), audio, video and PDF are shown inline with their type; anything "
            "else is an attachment of type application/octet-stream. Every response carries "
            "`Content-Security-Policy: sandbox` and `X-Content-Type-Options: nosniff`; the "
            "filename loses control and format characters. Media a reply sent by URL is not "
            "served (its URL is the message's `media_url`). 404 when the message is not "
            "visible, has no received media, or WhatsApp no longer has it; 502 when 360dialog "
            "fails."
        ),
    )
    async def media(
        self,
        user_db: NamedDependency[AgentDb],
        channel_keys: NamedDependency[ChannelKeys],
        d360: NamedDependency[D360Client],
        message_id: MessageId,
    ) -> Stream:
        try:
            return await _media(user_db, channel_keys, d360, message_id)
        except ApiError as exc:
            # Errors of this route are media responses too.
            exc.headers = {**(exc.headers or {}), **SAFETY_HEADERS}
            raise


async def _media(
    user_db: AgentDb,
    channel_keys: ChannelKeys,
    d360: D360Client,
    message_id: uuid.UUID,
) -> Stream:
    message = await messages_repo.get(user_db, message_id)
    if message is None:
        raise not_found("message")
    # Only what 360dialog holds for a received message: a reply's media_url
    # was typed by an agent, and redirecting to it would send co-workers
    # anywhere under this API's name.
    media_id = message.content.get("media_id")
    if message.direction != "inbound" or not isinstance(media_id, str) or not media_id:
        raise not_found("media")

    conversation = await conversations_repo.get(user_db, message.conversation_id)
    channel = (
        await conversations_repo.channel(
            user_db, conversation.phone_number_id, conversation.workspace_id
        )
        if conversation is not None
        else None
    )
    # Only after the agent's own reads returned the message and its channel.
    api_key = await channel_keys.api_key_for(channel.phone_number_id) if channel else None
    if api_key is None:
        raise not_found("media")

    response, mime_type, stack = await open_media(d360, api_key, media_id)
    content_type, inline = served_type(
        mime_type
        or message.media_mime_type
        or _str(message.content.get("mime_type"))
        or response.headers.get("content-type")
    )
    filename = (
        message.media_filename
        or _str(message.content.get("filename"))
        or f"{message.id}{_extension(content_type)}"
    )
    headers = {
        "Content-Disposition": content_disposition(filename, inline=inline),
        "Cache-Control": "private, max-age=300",
        **SAFETY_HEADERS,
    }
    return Stream(
        iterate_body(response, stack),
        media_type=content_type,
        headers=headers,
        # Closes the upstream response if the body was never iterated.
        background=BackgroundTask(stack.aclose),
    )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "application/pdf": ".pdf",
}


def _extension(content_type: str) -> str:
    return _EXTENSIONS.get(content_type, "")
