"""REST representations shared by several views. Each view's own input sits beside it.

A message is rendered by frames.message_data, the same function that builds the WebSocket
`message` frame, so the two shapes cannot drift apart; the declared fields are there for
the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from messaging import frames, inbound
from messaging.models import Conversation, ConversationMember, Message

ATTACHMENT_SCHEMA = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "description": "http(s) URL or a path on this site"},
        "name": {"type": "string"},
        "size": {"type": "integer", "minimum": 0},
        "mime": {"type": "string"},
    },
    "required": ["url", "name", "size", "mime"],
}


@extend_schema_field(
    {
        "oneOf": [{"type": "string", "description": "msg_type text"}, ATTACHMENT_SCHEMA],
        "description": "A string for text; {url, name, size, mime} for image and file.",
    }
)
class ContentField(serializers.JSONField):
    """Any JSON value here; services.messages.clean_content checks it against msg_type."""


class IdField(serializers.IntegerField):
    """A user, conversation or notification id: a positive 64-bit integer (a bigger one is
    the client's mistake, not a database error)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, max_value=inbound.MAX_INT, **kwargs)


class UtcDateTimeField(serializers.DateTimeField):
    """Every time on the wire is ISO 8601 in UTC with a Z, whatever TIME_ZONE says."""

    def to_representation(self, value: Any) -> str:
        return frames.iso(value)


class MessageSerializer(serializers.Serializer):
    """A message as PROTOCOL.md defines it (output only)."""

    msg_id = serializers.UUIDField()
    client_msg_id = serializers.CharField()
    conversation_id = serializers.IntegerField()
    sender_id = serializers.IntegerField()
    receiver_id = serializers.IntegerField(allow_null=True, help_text="The other user; null in a group.")
    msg_type = serializers.ChoiceField(choices=Message.Type.choices)
    content = ContentField()
    mentions = serializers.ListField(child=serializers.IntegerField())
    created_at = UtcDateTimeField()

    def to_representation(self, instance: Message) -> dict[str, Any]:
        return frames.message_data(instance)


class MemberSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="user_id")
    username = serializers.CharField(source="user.username")
    display_name = serializers.SerializerMethodField()

    def get_display_name(self, membership: ConversationMember) -> str:
        return str(membership.user)


class ConversationSerializer(serializers.Serializer):
    """A conversation as the user sees it in a list (output only)."""

    id = serializers.IntegerField(source="conversation.id")
    kind = serializers.ChoiceField(source="conversation.kind", choices=Conversation.Kind.choices)
    title = serializers.CharField(source="conversation.title", help_text="Empty for a direct conversation.")
    members = MemberSerializer(source="conversation.memberships.all", many=True)
    created_at = UtcDateTimeField(source="conversation.created_at")
    unread_count = serializers.IntegerField(help_text="Messages from others this user has not read.")
    last_message = MessageSerializer(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    """The body of a domain error (messaging.errors); a field error adds `<field>: [detail]`."""

    code = serializers.ChoiceField(
        choices=["bad_request", "too_large", "forbidden", "not_found", "rate_limited", "server_error"]
    )
    detail = serializers.CharField()
