"""Attachments: upload to a session, look one up (with a fresh signed link), download by signed link.

Layer: REST API (thin: parse, call :mod:`chat.services.attachments`, shape).

Uploads are ``multipart/form-data`` with one ``file`` part.  The body is
bounded twice while it arrives: by ``CHAT_ATTACHMENT_MAX_BYTES_CEILING`` at
the ASGI edge (``security.body_limit.StreamingBodyLimit``, before Django
spools it), then by the workspace's own limit as Django's parser streams the
part into a temporary file (:class:`LimitedUpload`): neither keeps the body
in memory.  Downloads need no credentials but a link from
:mod:`chat.services.attachment_links`, checked against the linked user's
access when the file is served; the file is streamed from storage by reads
in a worker thread, with ``nosniff``, a CSP that lets nothing run, and
``Content-Disposition: attachment`` for everything but raster images.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable
from urllib.parse import unquote

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, TemporaryFileUploadHandler
from django.http import FileResponse, HttpRequest
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chat.errors import AttachmentTooLarge, InvalidPayload, SessionClosed
from chat.models import Attachment, SessionStatus
from chat.services import attachment_links, attachments, moderation, screening, sniff
from chat.services import sessions as service

from .base import ApiView
from .schema import ATTACHMENT, SESSION, WORKSPACE, errors
from .serializers import AttachmentSerializer, AttachmentUploadSerializer

TAG = ["attachments"]
#: What a multipart body adds around its file (boundaries, part headers, the ``name`` field).
MULTIPART_OVERHEAD = 64 * 1024
#: The headers every served file carries: the browser neither guesses its type nor runs anything in it.
SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, no-store",
}
_READ = 64 * 1024


class LimitedUpload(FileUploadHandler):
    """Counts each file's bytes as Django's parser streams them and stops at ``limit()``; one file per request."""

    def __init__(self, request: HttpRequest, limit: Callable[[], int]) -> None:
        super().__init__(request)
        self.limit = limit
        self.files = 0

    def handle_raw_input(self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: Any = None) -> None:
        if content_length > self.limit() + MULTIPART_OVERHEAD:  # declared too large: refused before reading
            raise AttachmentTooLarge(maxBytes=self.limit())

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.files += 1
        if self.files > 1:
            raise InvalidPayload("Upload one file per request.")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > self.limit():
            raise AttachmentTooLarge(maxBytes=self.limit())
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


@extend_schema(tags=TAG, parameters=[WORKSPACE, SESSION])
class AttachmentUpload(ApiView):
    parser_classes = [MultiPartParser]
    serializer_class = AttachmentSerializer
    upload_limit: int | None = None

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        ceiling = settings.CHAT.attachment_max_bytes_ceiling
        request.upload_handlers = [
            LimitedUpload(request, lambda: self.upload_limit or ceiling),
            TemporaryFileUploadHandler(request),  # always to disk: no upload is held in memory
        ]
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        summary="Upload an attachment",
        description="`multipart/form-data` with one `file` part (and optionally `name`, the name to show). "
        "Its type is sniffed from its bytes, never taken from the client; HTML, SVG and other scriptable "
        "types are refused whatever the workspace allows. The upload belongs to the caller and this session; "
        "send it by listing its `id` in a message's `attachments` (socket `chat:send-message` or "
        "`POST .../messages/`). Uploads no message sent are removed after CHAT_ATTACHMENT_UNREFERENCED_TTL_S.",
        request={"multipart/form-data": AttachmentUploadSerializer},
        responses={
            201: AttachmentSerializer,
            **errors(
                "invalid_payload",
                "attachment_name_invalid",
                "forbidden",
                "not_a_member",
                "session_not_found",
                "session_closed",
                "muted",
                "attachment_too_large",
                "attachment_type_not_allowed",
                "attachments_pending_limit",
                "rate_limited",
            ),
        },
    )
    def post(self, request: Request, workspace: str, session: str) -> Response:
        membership = self.membership
        row = service.get_session(membership, session)
        if row.status != SessionStatus.OPEN:
            raise SessionClosed()
        moderation.check_can_send(membership)
        async_to_sync(screening.limiter().check)("upload", request.user.pk)
        attachments.check_pending(request.user.pk)
        self.upload_limit = attachments.max_bytes(membership.workspace)
        upload = request.FILES.get("file")
        if upload is None and isinstance(request.data.get("file"), str) and request.data["file"]:
            # A part without a filename (``curl -F "file=<notes.txt"``) is a form field to Django: its content
            # is the file all the same (bounded by DATA_UPLOAD_MAX_MEMORY_SIZE, as every field is).
            upload = SimpleUploadedFile("file", request.data["file"].encode())
        if upload is None:
            raise InvalidPayload("Send the file as the multipart part named 'file'.", fields={"file": ["Required."]})
        # Some clients percent-encode the part's filename (RFC 7578 allows it): what it names is the decoded form.
        name = request.data.get("name") or unquote(upload.name or "")
        stored = attachments.store_upload(membership, row, upload, name)
        return Response(attachments.shape_for(stored, request.user.pk), status=status.HTTP_201_CREATED)


@extend_schema(tags=TAG, parameters=[WORKSPACE, SESSION, ATTACHMENT])
class AttachmentDetail(ApiView):
    serializer_class = AttachmentSerializer

    @extend_schema(
        summary="Get an attachment, with a fresh download link",
        description="`url` is a signed path for the caller, valid for CHAT_ATTACHMENT_URL_TTL_S. Another "
        "member's upload that no message sent yet, and the attachments of messages the caller may not see, "
        "are `attachment_not_found`.",
        responses={200: AttachmentSerializer, **errors("not_a_member", "session_not_found", "attachment_not_found")},
    )
    def get(self, request: Request, workspace: str, session: str, attachment: str) -> Response:
        row = service.get_session(self.membership, session)
        found = attachments.visible_in(self.membership, row, attachment)
        return Response(attachments.shape_for(found, request.user.pk))


class AnyAccept(BaseContentNegotiation):
    """A file is served whatever ``Accept`` says (an ``<img>`` asks for images); errors are JSON."""

    def select_parser(self, request: Request, parsers: list) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


class AttachmentDownload(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    content_negotiation_class = AnyAccept

    @extend_schema(
        tags=TAG,
        summary="Download an attachment by signed link",
        description="The `url` of an attachment: no credentials, the link is one. It works for "
        "CHAT_ATTACHMENT_URL_TTL_S and only while the user it was made for may still see the attachment. "
        "Served with `X-Content-Type-Options: nosniff`, `Content-Security-Policy: default-src 'none'; "
        "sandbox`, and `Content-Disposition: attachment` (raster images: `inline`).",
        parameters=[OpenApiParameter("token", str, OpenApiParameter.PATH, description="The signed token.")],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The file."),
            **errors("attachment_link_expired", "attachment_link_invalid", "attachment_not_found"),
        },
    )
    def get(self, request: Request, token: str) -> FileResponse:
        public_id, user_id = attachment_links.verify(token)
        return file_response(attachments.downloadable(public_id, user_id))


def file_response(row: Attachment) -> FileResponse:
    inline = row.content_type in sniff.RASTER_IMAGES
    content_type = f"{row.content_type}; charset=utf-8" if row.content_type == sniff.TEXT else row.content_type
    response = FileResponse(_chunks(row.storage_name), content_type=content_type)
    response["Content-Length"] = str(row.size)
    response["Content-Disposition"] = content_disposition_header(not inline, row.name)
    for name, value in SAFE_HEADERS.items():
        response[name] = value
    return response


async def _chunks(name: str) -> AsyncIterator[bytes]:
    """The stored file, read in a worker thread a chunk at a time (storage APIs are synchronous)."""
    file = await asyncio.to_thread(attachments.storage().open, name, "rb")
    try:
        while chunk := await asyncio.to_thread(file.read, _READ):
            yield chunk
    finally:
        await asyncio.to_thread(file.close)
