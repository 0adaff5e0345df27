"""A Django upload handler that stops a multipart body once it passes the upload limit."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest

from messaging.errors import TooLarge

# Room for the multipart boundaries and part headers around the file itself.
MULTIPART_OVERHEAD_BYTES = 16 * 1024


def too_large(limit_bytes: int) -> TooLarge:
    return TooLarge(f"files are limited to {limit_bytes} bytes", field="file")


def check_content_length(meta: dict[str, Any], *, limit_bytes: int) -> None:
    """Refuses a body announced as too large before a byte of it is read."""
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit_bytes + MULTIPART_OVERHEAD_BYTES:
        raise too_large(limit_bytes)


class UploadLimitHandler(FileUploadHandler):
    """First in the chain: counts the file bytes of the whole request and raises TooLarge
    as soon as they pass the limit, so a body without (or lying about) Content-Length is cut
    short too. The handlers after it (memory, then a temporary file) store the chunks."""

    def __init__(self, request: HttpRequest | None = None, *, limit_bytes: int) -> None:
        super().__init__(request)
        self.limit_bytes = limit_bytes
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit_bytes:
            raise too_large(self.limit_bytes)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler builds the UploadedFile
