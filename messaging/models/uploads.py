from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


def upload_path(upload: Upload, filename: str) -> str:
    # The user's file name is never part of the stored path: it is kept in `name` only.
    return f"uploads/{upload.conversation_id}/{upload.id}"


class Upload(models.Model):
    """A file shared in a conversation, readable by its members only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        "messaging.Conversation", on_delete=models.CASCADE, related_name="uploads"
    )
    uploader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    file = models.FileField(upload_to=upload_path, max_length=200)
    name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    # Decided by the server from the file's first bytes, never taken from the browser.
    mime = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name
