"""Uploads over REST: store a file for a conversation, and serve it to its members only.

Served files can never run script in our origin: anything but a raster image is an
attachment, the type is the server's own guess, `nosniff` stops browsers from guessing
another, and a sandbox CSP applies should one be opened directly anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.http import FileResponse, HttpRequest
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging import inbound
from messaging.errors import CSRF, NO_ROUTE, error_responses
from messaging.services.uploads import (
    SAFE_IMAGE_TYPES,
    upload_for_reader,
    upload_is_inline,
    upload_store,
    upload_url,
)
from messaging.views.common import CONVERSATION_PATH, caller_id
from messaging.views.serializers import ATTACHMENT_SCHEMA
from messaging.views.upload_limit import UploadLimitHandler, check_content_length

SERVED_FILE_CSP = "default-src 'none'; img-src 'self'; sandbox"


class UploadCreateApi(APIView):
    """Upload one file (the multipart file part `file`, with a filename) to a conversation
    the caller belongs to.

    The answer is the `content` of an image or file message: send it next with msg_type
    `image` when `mime` is a raster image type, else `file`. Over IMS_MAX_UPLOAD_BYTES:
    413 with code too_large, and nothing is stored.
    """

    parser_classes = [MultiPartParser]

    @extend_schema_serializer(component_name="UploadRequest")
    class InputSerializer(serializers.Serializer):
        """Only for the schema: upload_store reads the file and says what is wrong with it."""

        file = serializers.FileField()

    @extend_schema_serializer(component_name="Attachment")
    class OutputSerializer(serializers.Serializer):
        url = serializers.CharField()
        name = serializers.CharField()
        size = serializers.IntegerField()
        mime = serializers.CharField()

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        # Before anything reads the body: the CSRF check of session auth parses it.
        request.upload_handlers = [
            UploadLimitHandler(request, limit_bytes=settings.IMS_MAX_UPLOAD_BYTES),
            *request.upload_handlers,
        ]
        return super().initialize_request(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        check_content_length(request.META, limit_bytes=settings.IMS_MAX_UPLOAD_BYTES)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        parameters=[CONVERSATION_PATH],
        request={"multipart/form-data": InputSerializer},
        responses={
            201: OpenApiResponse(ATTACHMENT_SCHEMA, description="The attachment, ready to send."),
            **error_responses(
                {
                    400: "An id out of range, or no file part `file` (with a filename).",
                    403: f"Not a member of the conversation. {CSRF}",
                    404: f"No such conversation. {NO_ROUTE}",
                    413: "Over IMS_MAX_UPLOAD_BYTES (code too_large); nothing stored.",
                    415: "The body is not `multipart/form-data`.",
                }
            ),
        },
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        upload = upload_store(
            conversation_id=inbound.check_id(conversation_id),
            uploader_id=caller_id(request),
            file=request.FILES.get("file"),
        )
        body = {"url": upload_url(upload), "name": upload.name, "size": upload.size, "mime": upload.mime}
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)


class FileNegotiation(BaseContentNegotiation):
    """A file is what it is: the request's Accept header chooses nothing (an error body is
    JSON whatever it says), so no client gets a 406."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class UploadFileApi(APIView):
    """The file itself, for members of its conversation; 404 for anyone else."""

    content_negotiation_class = FileNegotiation

    @extend_schema(
        parameters=[
            OpenApiParameter("upload_id", {"type": "string", "format": "uuid"}, OpenApiParameter.PATH),
            OpenApiParameter(
                "name",
                {"type": "string", "pattern": "^[^/]+$"},
                OpenApiParameter.PATH,
                description="The file's name, as in its URL (only `upload_id` decides).",
            ),
        ],
        responses={
            **{
                (200, mime): OpenApiResponse(
                    {"type": "string", "format": "binary"},
                    description="The file: a raster image shown inline, anything else a download.",
                )
                for mime in [*sorted(SAFE_IMAGE_TYPES), "application/octet-stream"]
            },
            **error_responses(
                {404: f"No such file, or the caller is not a member of its conversation. {NO_ROUTE}"}
            ),
        },
    )
    def get(self, request: Request, upload_id: str, name: str) -> FileResponse:
        upload = upload_for_reader(upload_id=upload_id, user_id=caller_id(request))
        inline = upload_is_inline(upload)
        response = FileResponse(
            upload.file.open("rb"),
            # A download needs no type; a generic one leaves nothing for a browser to render.
            content_type=upload.mime if inline else "application/octet-stream",
            as_attachment=not inline,
            filename=upload.name,
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = SERVED_FILE_CSP
        response["Cache-Control"] = "private, max-age=86400"
        return response
