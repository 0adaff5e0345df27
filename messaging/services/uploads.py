"""Writes and checks for uploaded files: store one for a conversation, find one for a reader.

The MIME type is decided here from the file's first bytes (for the raster images a browser
may show inline) or its name (for everything else, always served as an attachment); what
the browser claimed is never trusted.
"""

from __future__ import annotations

import mimetypes
import unicodedata
from pathlib import PurePosixPath, PureWindowsPath

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.urls import reverse

from messaging.errors import BadRequest, NotFound
from messaging.models import ConversationMember, Upload
from messaging.services.conversations import conversation_member_ids

# Formats a browser decodes as pictures only; SVG is not one of them (it can carry script).
SAFE_IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
SAFE_IMAGE_TYPES = frozenset({mime for _, mime in SAFE_IMAGE_SIGNATURES} | {"image/webp"})
MAX_NAME_LENGTH = 255


def sniff_mime(*, head: bytes, name: str) -> str:
    """A safe raster type when the bytes say so, else a type guessed from the name."""
    for signature, mime in SAFE_IMAGE_SIGNATURES:
        if head.startswith(signature):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    guessed, _ = mimetypes.guess_type(name)
    # A name that claims a raster image whose bytes are not one is just bytes.
    if guessed is None or guessed in SAFE_IMAGE_TYPES:
        return "application/octet-stream"
    return guessed


def clean_file_name(raw: str) -> str:
    """The last path component, without control characters, at most 255 characters."""
    base = PureWindowsPath(PurePosixPath(raw or "").name).name
    printable = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if not printable or printable in {".", ".."}:
        return "file"
    return printable[-MAX_NAME_LENGTH:]


def upload_store(*, conversation_id: int, uploader_id: int, file: UploadedFile | None) -> Upload:
    """Stores a member's file for the conversation; raises forbidden/not_found otherwise."""
    conversation_member_ids(conversation_id=conversation_id, user_id=uploader_id)
    if file is None:
        raise BadRequest("send the file as the multipart field `file`", field="file")
    name = clean_file_name(file.name or "")
    file.seek(0)
    head = file.read(16)
    file.seek(0)
    upload = Upload(
        conversation_id=conversation_id,
        uploader_id=uploader_id,
        name=name,
        size=file.size or 0,
        mime=sniff_mime(head=head, name=name),
    )
    upload.file.save(name, file, save=False)
    try:
        with transaction.atomic():
            upload.save()
    except BaseException:
        upload.file.delete(save=False)  # no orphan file for a row that was never stored
        raise
    return upload


def upload_for_reader(*, upload_id: str, user_id: int) -> Upload:
    """The upload if the user belongs to its conversation; not_found in every other case,
    so a stranger cannot even learn that the file exists."""
    upload = Upload.objects.filter(pk=upload_id).first()
    if (
        upload is None
        or not ConversationMember.objects.filter(
            conversation_id=upload.conversation_id, user_id=user_id
        ).exists()
    ):
        raise NotFound("no such file")
    return upload


def upload_url(upload: Upload) -> str:
    return reverse("upload-file", kwargs={"upload_id": upload.pk, "name": upload.name})


def upload_is_inline(upload: Upload) -> bool:
    """Only raster images are shown in the page; anything else downloads."""
    return upload.mime in SAFE_IMAGE_TYPES
