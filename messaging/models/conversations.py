from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models

from messaging.ids import new_msg_id

if TYPE_CHECKING:
    from messaging.models.users import User


class Conversation(models.Model):
    class Kind(models.TextChoices):
        DIRECT = "direct"
        GROUP = "group"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    title = models.CharField(max_length=200, blank=True)
    # "<low user id>:<high user id>" for direct conversations: a unique key makes
    # get-or-create race free, so two first messages never open two conversations.
    direct_key = models.CharField(max_length=50, unique=True, null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Annotated: django-stubs cannot infer the types of a relation named by strings.
    members: models.ManyToManyField[User, ConversationMember] = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="ConversationMember", related_name="conversations"
    )

    def __str__(self) -> str:
        return self.title or f"{self.get_kind_display()} #{self.pk}"


class ConversationMember(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversation", "user"], name="unique_membership")]
        indexes = [models.Index(fields=["user", "conversation"])]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.conversation_id}"


class Message(models.Model):
    class Type(models.TextChoices):
        TEXT = "text"
        IMAGE = "image"
        FILE = "file"

    id = models.UUIDField(primary_key=True, default=new_msg_id, editable=False)
    client_msg_id = models.CharField(max_length=64)
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sent_messages"
    )
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    receiver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The other user of a direct conversation; empty in a group.",
    )
    msg_type = models.CharField(max_length=10, choices=Type.choices, default=Type.TEXT)
    # A string for text, {"url", "name", "size", "mime"} for image and file.
    content = models.JSONField()
    mentions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(db_index=True)  # the admin's date filter and hierarchy

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sender", "client_msg_id"], name="unique_client_msg_id_per_sender"
            )
        ]
        # History pages walk a conversation by id, which is time ordered (UUIDv7).
        indexes = [models.Index(fields=["conversation", "-id"], name="message_history_idx")]

    def __str__(self) -> str:
        return str(self.id)

    @property
    def msg_id(self) -> str:
        return str(self.id)
