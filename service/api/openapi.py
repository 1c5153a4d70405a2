"""What the generated OpenAPI document cannot say by itself about the agent routes.

Litestar documents a 400 for every handler with parameters and a JSON 200 for
every response; here a route's operation says what it really answers: no
400/413 without a body (validation errors are 422 here), the media route's
file and redirect, the send route's replay header.
"""

from __future__ import annotations

import typing
import uuid
from dataclasses import dataclass
from typing import Annotated

from litestar.openapi.spec import (
    Discriminator,
    OpenAPI,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    RequestBody,
    Schema,
)
from litestar.openapi.spec import Operation as _Operation
from litestar.params import HeaderParameter, PathParameter

from service.api.replies import REPLAYED_HEADER
from service.whatsapp.domain import REPLY_KINDS, Interactive

ConversationId = Annotated[uuid.UUID, PathParameter(description="The conversation's id")]
MessageId = Annotated[uuid.UUID, PathParameter(description="The message's id")]
# Every way to send (JSON reply or upload) takes the same key, with the same rules.
IdempotencyKey = Annotated[
    str,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="A key of yours for this reply (a UUID): a retry with the same key "
        "and body returns the stored message and never sends twice",
    ),
]

_STRING = Schema(type=OpenAPIType.STRING)


@dataclass
class AgentOperation(_Operation):
    """An agent route: 400 and 413 only where there is a body to be malformed or too large."""

    def __post_init__(self) -> None:
        if self.request_body is None and self.responses:
            self.responses = {
                code: response
                for code, response in self.responses.items()
                if code not in {"400", "413"}
            }


@dataclass
class SendOperation(AgentOperation):
    def __post_init__(self) -> None:
        super().__post_init__()
        created = (self.responses or {}).get("201")
        if isinstance(created, OpenAPIResponse):
            created.headers = {
                **(created.headers or {}),
                REPLAYED_HEADER: OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.STRING, enum=["true"]),
                    description=(
                        "Present on a retry with an Idempotency-Key already sent: the stored "
                        "message is returned and nothing is sent again"
                    ),
                    required=False,
                ),
            }


@dataclass
class UploadOperation(SendOperation):
    """The upload route reads its body itself (streamed), so its form is described here."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        required=["file"],
                        properties={
                            "caption": Schema(
                                type=OpenAPIType.STRING,
                                max_length=1024,
                                description="Text under an image, video or document; before `file`",
                            ),
                            "file": Schema(
                                type=OpenAPIType.STRING,
                                format=OpenAPIFormat.BINARY,
                                description="The file, with its content type and name; "
                                "the last part",
                            ),
                        },
                    )
                )
            },
        )
        super().__post_init__()


@dataclass
class MediaOperation(AgentOperation):
    def __post_init__(self) -> None:
        super().__post_init__()
        self.responses = {
            **(self.responses or {}),
            "200": OpenAPIResponse(
                description=(
                    "The file, streamed: inline with its type for images (not SVG), audio, "
                    "video and PDF; any other type as an `application/octet-stream` attachment"
                ),
                content={
                    "*/*": OpenAPIMediaType(
                        schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
                    )
                },
                headers={
                    "Content-Type": OpenAPIHeader(
                        schema=_STRING,
                        description="The media's type if it may be shown inline, else "
                        "`application/octet-stream`",
                    ),
                    "Content-Disposition": OpenAPIHeader(
                        schema=_STRING,
                        description="`inline` or `attachment`, with the file name stripped of "
                        "control and format characters",
                    ),
                    "Cache-Control": OpenAPIHeader(
                        schema=_STRING, description="`private, max-age=300`"
                    ),
                    "Content-Security-Policy": OpenAPIHeader(
                        schema=_STRING, description="`sandbox`, on every media response"
                    ),
                    "X-Content-Type-Options": OpenAPIHeader(
                        schema=_STRING, description="`nosniff`, on every media response"
                    ),
                },
            ),
        }


def document_reply_kinds(document: OpenAPI) -> None:
    """Says what the `type` tag of each reply kind means, and lets clients dispatch on it.

    Litestar writes a tagged union as a plain `oneOf`, its tag as a bare `const`.
    """
    schemas = document.components.schemas if document.components else None
    if not schemas:
        return
    discriminators: dict[frozenset[str], Discriminator] = {}
    for union, kinds in (("reply", REPLY_KINDS), ("interactive", typing.get_args(Interactive))):
        mapping: dict[str, str] = {}
        for kind in kinds:
            tag = kind.__struct_config__.tag
            schema = schemas.get(kind.__name__)
            if schema is None or not isinstance(tag, str) or not schema.properties:
                continue
            mapping[tag] = f"#/components/schemas/{kind.__name__}"
            field = schema.properties.get("type")
            if isinstance(field, Schema):
                field.description = f"`{tag}`: which kind of {union} this is"
        discriminators[frozenset(mapping.values())] = Discriminator(
            property_name="type", mapping=mapping
        )
    found: list[Schema] = list(schemas.values())
    for item in (document.paths or {}).values():
        operation = item.post
        body = operation.request_body if operation else None
        if isinstance(body, RequestBody):
            found += [m.schema for m in body.content.values() if isinstance(m.schema, Schema)]
    for schema in found:
        for nested in [schema, *(schema.properties or {}).values()]:
            if isinstance(nested, Schema) and nested.one_of:
                refs = frozenset(getattr(ref, "ref", "") for ref in nested.one_of)
                nested.discriminator = discriminators.get(refs, nested.discriminator)
