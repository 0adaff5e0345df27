"""REST for messages: send (the twin of the WebSocket `send` frame), mark read, and a
conversation's history."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging import inbound
from messaging.errors import CSRF, NO_ROUTE, NOT_JSON, error_responses
from messaging.models import Message
from messaging.selectors.conversations import (
    conversation_history,
    conversation_member_ids,
    message_deliveries,
)
from messaging.services.messages import MAX_CLIENT_MSG_ID_LENGTH, message_send
from messaging.services.receipts import MSG_ID_PATTERN, messages_mark_read
from messaging.views.common import BAD_BODY, CONVERSATION_PATH, SendRateThrottle, caller_id
from messaging.views.fields import (
    RefinedSchemaSerializer,
    StrictCursorPagination,
    TextField,
)
from messaging.views.serializers import (
    ATTACHMENT_SCHEMA,
    TEXT_CONTENT_SCHEMA,
    ContentField,
    IdField,
    MessageSerializer,
)


class MessageSendApi(APIView):
    """Send a message: the REST twin of the WebSocket `send` frame.

    A retry with the same client_msg_id answers 201 with the first message and stores and
    delivers nothing again. Over the rate limit: 429 with code rate_limited, nothing stored.
    Beyond its schema: `to` is another user, and `mentions` are members of the conversation.
    """

    throttle_classes = [SendRateThrottle]

    @extend_schema_serializer(component_name="MessageSendRequest")
    class InputSerializer(RefinedSchemaSerializer):
        # Exactly one of the four branches: a body with both `to` and `conversation_id`
        # matches two of them, one with neither matches none.
        schema_refinement = {
            "description": "Exactly one of `to` and `conversation_id`; `content` by `msg_type`.",
            "oneOf": [
                {"required": [target], "properties": {target: {"type": "integer"}, **content}}
                for target in ("to", "conversation_id")
                for content in (
                    {"msg_type": {"enum": ["text"]}, "content": TEXT_CONTENT_SCHEMA},
                    {"msg_type": {"enum": ["image", "file"]}, "content": ATTACHMENT_SCHEMA},
                )
            ],
        }

        client_msg_id = TextField(
            required=False,
            max_length=MAX_CLIENT_MSG_ID_LENGTH,
            help_text="Unique per sender, chosen by the client so retries are safe; generated when absent.",
        )
        to = IdField(required=False, allow_null=True, help_text="A user id: a direct message.")
        conversation_id = IdField(
            required=False, allow_null=True, help_text="Give exactly one of `to` and this."
        )
        msg_type = serializers.ChoiceField(choices=Message.Type.choices)
        content = ContentField()
        mentions = serializers.ListField(
            child=IdField(), required=False, max_length=settings.IMS_MAX_GROUP_MEMBERS
        )

    @extend_schema_serializer(component_name="SentMessage")
    class OutputSerializer(MessageSerializer):
        seq = serializers.IntegerField(
            min_value=0, help_text="The sender's own stream seq for this message (0 once purged)."
        )

        # The message plus the sender's seq, which post() passes as context["seq"].
        def to_representation(self, instance: Message) -> dict[str, Any]:
            return {**super().to_representation(instance), "seq": self.context["seq"]}

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            **error_responses(
                {
                    400: f"{BAD_BODY} Or `to` is the caller, or a mention is not a member.",
                    403: f"Not a member of `conversation_id`, or the caller is deactivated. {CSRF}",
                    404: "No such user (`to`) or conversation.",
                    415: NOT_JSON,
                    429: "Over IMS_REST_SENDS_PER_MINUTE (code rate_limited); nothing stored.",
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = message_send(sender_id=caller_id(request), **serializer.validated_data)
        output = self.OutputSerializer(result.message, context={"seq": result.sender_seq})
        return Response(output.data, status=status.HTTP_201_CREATED)


class MessagesReadApi(APIView):
    """Mark messages read by the caller; their senders get a `read` receipt.

    Ids of messages the caller did not receive, or already read, are skipped.
    """

    @extend_schema_serializer(component_name="MessagesReadRequest")
    class InputSerializer(serializers.Serializer):
        msg_ids = serializers.ListField(
            child=TextField(validators=[RegexValidator(MSG_ID_PATTERN)]),
            allow_empty=False,
            min_length=1,
            max_length=inbound.MAX_IDS_PER_FRAME,
            help_text="`msg_id`s as messages carry them (UUIDs).",
        )

    @extend_schema_serializer(component_name="MessagesReadResult")
    class OutputSerializer(serializers.Serializer):
        read = serializers.IntegerField(min_value=0, help_text="How many messages became read.")

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            **error_responses({400: BAD_BODY, 403: CSRF, 415: NOT_JSON}),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        count = messages_mark_read(user_id=caller_id(request), **serializer.validated_data)
        return Response(self.OutputSerializer({"read": count}).data)


class HistoryPagination(StrictCursorPagination):
    ordering = "-id"  # message ids are UUIDv7: newest first, stable under new inserts

    def position_is_valid(self, position: str) -> bool:
        try:
            uuid.UUID(str(position))
        except ValueError:
            return False
        return True


@extend_schema_serializer(component_name="HistoryMessage")
class HistoryMessageSerializer(MessageSerializer):
    """A message of the history: the caller's own carry `delivery`."""

    @extend_schema_serializer(component_name="Delivery")
    class DeliverySerializer(serializers.Serializer):
        recipients = serializers.IntegerField(min_value=0, help_text="The other members it went to.")
        delivered = serializers.IntegerField(min_value=0, help_text="How many of them have it.")
        read = serializers.IntegerField(min_value=0, help_text="How many of them read it.")

    delivery = DeliverySerializer(required=False, help_text="Only on the caller's own messages.")


class ConversationMessagesApi(APIView):
    """A conversation's history, newest first, one cursor page at a time (`next` walks
    back in time). Members only. The caller's own messages carry `delivery`
    ({recipients, delivered, read}), so a reloaded page shows the same ticks as a live one."""

    pagination_class = HistoryPagination

    @extend_schema(
        parameters=[CONVERSATION_PATH],
        responses={
            200: HistoryMessageSerializer(many=True),
            **error_responses(
                {
                    400: "An id out of range, or a `page_size` that is not a positive integer.",
                    403: "Not a member of the conversation.",
                    404: f"No such conversation, or a `cursor` this server did not give. {NO_ROUTE}",
                }
            ),
        },
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        # Raises forbidden for a non-member, not_found for an unknown conversation.
        conversation_member_ids(conversation_id=inbound.check_id(conversation_id), user_id=caller_id(request))
        paginator = self.pagination_class()
        page = (
            paginator.paginate_queryset(
                conversation_history(conversation_id=conversation_id), request, view=self
            )
            or []
        )
        me = caller_id(request)
        deliveries = message_deliveries(message_ids=[m.pk for m in page if m.sender_id == me])
        results = []
        for message, data in zip(page, MessageSerializer(page, many=True).data, strict=True):
            delivery = deliveries.get(message.pk)
            if delivery is not None:
                data = {**data, "delivery": asdict(delivery)}
            results.append(data)
        return paginator.get_paginated_response(results)
