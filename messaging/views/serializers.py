"""REST representations shared by several views. Each view's own input sits beside it.

A message is rendered by frames.message_data, the same function that builds the WebSocket
`message` frame, so the two shapes cannot drift apart; the declared fields are there for
the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from messaging import frames
from messaging.models import Conversation, ConversationMember, Message
from messaging.views.fields import MAX_INT, NOT_BLANK_PATTERN, TEXT_PATTERN, IdField

# URLs a message may link an attachment to (services.messages.clean_content): http(s), or a
# path on this site; "//host/x" and "/\\host/x" are not paths.
ATTACHMENT_URL_PATTERN = r"^(https?://[^\u0000]*|/([^/\\\u0000][^\u0000]*)?)$"
ATTACHMENT_SCHEMA = {
    "type": "object",
    "properties": {
        "url": {
            "type": "string",
            "pattern": ATTACHMENT_URL_PATTERN,
            "description": "http(s) URL or a path on this site",
        },
        "name": {"type": "string", "minLength": 1, "pattern": TEXT_PATTERN},
        "size": {"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_INT},
        "mime": {"type": "string", "minLength": 1, "pattern": TEXT_PATTERN},
    },
    "required": ["url", "name", "size", "mime"],
}
TEXT_CONTENT_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": settings.IMS_MAX_TEXT_LENGTH,
    "pattern": NOT_BLANK_PATTERN,
    "description": "msg_type text",
}


@extend_schema_field(
    {
        "oneOf": [TEXT_CONTENT_SCHEMA, ATTACHMENT_SCHEMA],
        "description": "A string for text; {url, name, size, mime} for image and file.",
    }
)
class ContentField(serializers.JSONField):
    """Any JSON value here; services.messages.clean_content checks it against msg_type."""


class UtcDateTimeField(serializers.DateTimeField):
    """Every time on the wire is ISO 8601 in UTC with a Z, whatever TIME_ZONE says."""

    def to_representation(self, value: Any) -> str:
        return frames.iso(value)


class MessageSerializer(serializers.Serializer):
    """A message as PROTOCOL.md defines it (output only)."""

    msg_id = serializers.UUIDField()
    client_msg_id = serializers.CharField()
    conversation_id = IdField()
    sender_id = IdField()
    receiver_id = IdField(allow_null=True, help_text="The other user; null in a group.")
    msg_type = serializers.ChoiceField(choices=Message.Type.choices)
    content = ContentField()
    mentions = serializers.ListField(child=IdField())
    created_at = UtcDateTimeField()

    def to_representation(self, instance: Message) -> dict[str, Any]:
        return frames.message_data(instance)


class MemberSerializer(serializers.Serializer):
    id = IdField(source="user_id")
    username = serializers.CharField(source="user.username")
    display_name = serializers.SerializerMethodField()

    def get_display_name(self, membership: ConversationMember) -> str:
        return str(membership.user)


class ConversationSerializer(serializers.Serializer):
    """A conversation as the user sees it in a list (output only)."""

    id = IdField(source="conversation.id")
    kind = serializers.ChoiceField(source="conversation.kind", choices=Conversation.Kind.choices)
    title = serializers.CharField(source="conversation.title", help_text="Empty for a direct conversation.")
    members = MemberSerializer(source="conversation.memberships.all", many=True)
    created_at = UtcDateTimeField(source="conversation.created_at")
    unread_count = serializers.IntegerField(
        min_value=0, help_text="Messages from others this user has not read."
    )
    last_message = MessageSerializer(allow_null=True)
