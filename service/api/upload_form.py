"""Reading an attachment upload (multipart/form-data) as it arrives, never whole.

The form is `caption` (optional) and then `file`, which must be the last part:
everything about the file (type, name, an upper bound of its size) is known
when its part begins, so the checks run before one byte of it is forwarded,
and the bytes are then handed on chunk by chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from service.whatsapp.domain import MAX_CAPTION_LENGTH
from service.whatsapp.uploads import UploadRefused

# Bytes of a field before `file`: a caption of 1,024 characters is at most 4 KiB in UTF-8.
_MAX_FIELD_BYTES = 4 * MAX_CAPTION_LENGTH
_FIELDS = frozenset({"caption", "file"})


class FormError(Exception):
    """The body is not the upload form; `key` names the part, `reason` says why."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def boundary_of(content_type: str | None) -> str:
    """The multipart boundary; UploadRefused 415 when the body is not multipart/form-data."""
    mime, options = parse_options_header(content_type or "")
    boundary = options.get("boundary")
    if mime != "multipart/form-data" or not isinstance(boundary, str) or not boundary:
        raise UploadRefused(415, "send the file as multipart/form-data with a `file` part")
    return boundary


@dataclass
class FileHead:
    content_type: str | None
    filename: str | None
    caption: str | None
    # The file has at most this many bytes (the request's length minus what came
    # before the file and the closing delimiter); exact up to one delimiter's length.
    size_at_most: int


class UploadForm:
    """One upload request's body: `head()` reads up to the file, `file()` streams it."""

    def __init__(self, chunks: AsyncIterator[bytes], boundary: str, content_length: int) -> None:
        self._chunks = chunks
        self._parser = PushMultipartParser(
            boundary, content_length=content_length, max_header_count=8, max_segment_count=3
        )
        self._closing = len(f"\r\n--{boundary}--")
        self._delimiter = len(f"\r\n--{boundary}\r\n")
        self._length = content_length
        self._fed = 0
        self._pending: list[bytes] = []
        self._segment: MultipartSegment | None = None
        self._file: MultipartSegment | None = None
        self._file_done = False

    async def head(self) -> FileHead:
        caption: bytearray | None = None
        while self._file is None:
            chunk = await self._next_chunk()
            try:
                for event in self._parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        # A small body arrives in one chunk: a part after the file
                        # would otherwise be read here as more of the file.
                        if self._file is not None:
                            raise FormError(event.name or "form", "`file` must be the last part")
                        if event.name not in _FIELDS:
                            raise FormError(
                                event.name or "form", "unknown part; send `caption` and `file`"
                            )
                        if event.name == "caption" and caption is not None:
                            raise FormError("caption", "given twice; send one `caption`")
                        self._segment = event
                        if event.name == "file":
                            self._file = event
                        else:
                            caption = bytearray()
                    elif event is None:
                        if self._segment is self._file:
                            self._file_done = True
                        self._segment = None
                    elif self._file is not None:
                        self._pending.append(bytes(event))
                    else:
                        assert caption is not None
                        caption += event
                        if len(caption) > _MAX_FIELD_BYTES:
                            raise FormError("caption", f"at most {MAX_CAPTION_LENGTH} characters")
            except MultipartError as exc:
                raise FormError("form", f"not a valid multipart body ({exc})") from exc
            if self._parser.closed and self._file is None:
                raise FormError("file", "the form has no `file` part")
        received = sum(len(piece) for piece in self._pending)
        if self._file_done and received == 0:
            # WhatsApp has nothing to show for an empty file: refused before it leaves.
            raise FormError("file", "the file is empty")
        # What came before the file's first byte, at least: the parser may still
        # hold up to one delimiter of this chunk.
        before = self._fed - received - self._delimiter
        text = None
        if caption is not None:
            try:
                text = caption.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise FormError("caption", "not UTF-8 text") from exc
        return FileHead(
            content_type=self._file.content_type,
            filename=self._file.filename or None,
            caption=text,
            size_at_most=max(0, self._length - before - self._closing),
        )

    async def file(self, max_bytes: int) -> AsyncIterator[bytes]:
        """The file's bytes; UploadRefused 413 past `max_bytes`, FormError when a part follows."""
        size = 0
        for piece in self._pending:
            size += len(piece)
            yield piece
        self._pending.clear()
        if size > max_bytes:
            raise UploadRefused(413, f"the file has more than {max_bytes} bytes")
        while not self._parser.closed:
            chunk = await self._next_chunk()
            try:
                for event in self._parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        raise FormError(event.name or "form", "`file` must be the last part")
                    if event is None:
                        self._file_done = True
                        continue
                    size += len(event)
                    if size > max_bytes:
                        raise UploadRefused(413, f"the file has more than {max_bytes} bytes")
                    yield bytes(event)
            except MultipartError as exc:
                raise FormError("form", f"not a valid multipart body ({exc})") from exc
        if not self._file_done:
            raise FormError("file", "the upload ended before the file did")
        if size == 0:
            # Its end came in a later chunk than its head: the upload is aborted here.
            raise FormError("file", "the file is empty")

    async def _next_chunk(self) -> bytes:
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            chunk = b""  # the parser checks that the stream is complete
        self._fed += len(chunk)
        return chunk
