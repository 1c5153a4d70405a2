"""What WhatsApp accepts as an uploaded file: its content type decides the message type and
the size limit (Cloud API supported media types).

The limits are checked before any byte leaves for 360dialog, so a file WhatsApp would
refuse costs neither the upload nor a stored reply.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.whatsapp.vocabulary import MessageType

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class UploadKind:
    type: MessageType
    max_bytes: int


_IMAGE = UploadKind(MessageType.IMAGE, 5 * MB)
_VIDEO = UploadKind(MessageType.VIDEO, 16 * MB)
_AUDIO = UploadKind(MessageType.AUDIO, 16 * MB)
_DOCUMENT = UploadKind(MessageType.DOCUMENT, 100 * MB)
# Static stickers may have 100 KB, animated ones 500 KB; the bytes do not say which
# without decoding the file, so the larger limit applies and Meta judges the rest.
_STICKER = UploadKind(MessageType.STICKER, 500 * 1024)

UPLOAD_KINDS: dict[str, UploadKind] = {
    "image/jpeg": _IMAGE,
    "image/png": _IMAGE,
    "video/mp4": _VIDEO,
    "video/3gpp": _VIDEO,
    "audio/aac": _AUDIO,
    "audio/amr": _AUDIO,
    "audio/mpeg": _AUDIO,
    "audio/mp4": _AUDIO,
    "audio/ogg": _AUDIO,
    "image/webp": _STICKER,
    "text/plain": _DOCUMENT,
    "application/pdf": _DOCUMENT,
    "application/msword": _DOCUMENT,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _DOCUMENT,
    "application/vnd.ms-excel": _DOCUMENT,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _DOCUMENT,
    "application/vnd.ms-powerpoint": _DOCUMENT,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": _DOCUMENT,
}

MAX_UPLOAD_BYTES = max(kind.max_bytes for kind in UPLOAD_KINDS.values())


class UploadRefused(Exception):
    """The file cannot be sent on WhatsApp; `status` is 413 (too large) or 415 (type)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def upload_kind(content_type: str | None, size_at_most: int) -> UploadKind:
    """The message type for a file of this content type and (at most) this size.

    Raises UploadRefused: 415 for a type WhatsApp does not take, 413 when the file
    may be larger than that type's limit.
    """
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    kind = UPLOAD_KINDS.get(mime)
    if kind is None:
        raise UploadRefused(
            415,
            f"WhatsApp does not take files of type {mime or '(none)'!r}; "
            f"supported: {', '.join(sorted(UPLOAD_KINDS))}",
        )
    if size_at_most > kind.max_bytes:
        raise UploadRefused(
            413,
            f"a {kind.type} ({mime}) may have at most {kind.max_bytes} bytes on WhatsApp",
        )
    return kind
