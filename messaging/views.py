"""The REST API: each view parses its input, calls one service or selector, renders.

Authentication is the API token (`Authorization: Token KEY`) or the session cookie (with
its CSRF token on writes); no credentials get 401. Every other error has the body
{"code", "detail", "<field>": ["..."]} (messaging.errors). The OpenAPI document at
/api/schema/ says exactly what each view takes and answers: a request it allows is
refused only for a rule JSON Schema cannot state, named in the operation's description.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from messaging import inbound
from messaging.errors import CSRF, NO_ROUTE, NOT_JSON, error_responses
from messaging.models import Message
from messaging.rest import (
    RefinedSchemaSerializer,
    StrictCursorPagination,
    TextField,
    id_schema,
)
from messaging.selectors.conversations import (
    conversation_history,
    conversation_member_ids,
    conversation_summaries,
    message_deliveries,
)
from messaging.selectors.presence import online_user_ids
from messaging.selectors.users import user_directory
from messaging.serializers import (
    ATTACHMENT_SCHEMA,
    TEXT_CONTENT_SCHEMA,
    ContentField,
    ConversationSerializer,
    IdField,
    MessageSerializer,
    UtcDateTimeField,
)
from messaging.services.conversations import (
    conversation_add_members,
    conversation_create_group,
    conversation_remove_member,
    conversation_rename,
)
from messaging.services.messages import MAX_CLIENT_MSG_ID_LENGTH, message_send
from messaging.services.receipts import MSG_ID_PATTERN, messages_mark_read
from messaging.services.text import TEXT_PATTERN, require_text
from messaging.services.tickets import ws_ticket_issue

BAD_BODY = "The body is not what this operation takes (the fields say why)."
NOT_A_MEMBER = f"Not a member of the conversation. {CSRF}"
CONVERSATION_PATH = OpenApiParameter(
    "conversation_id", {**id_schema()}, OpenApiParameter.PATH, description="A conversation's id."
)


def caller_id(request: Request) -> int:
    """The caller's id. Every view here requires authentication (IsAuthenticated, the
    default permission class), so a request that reaches a view has a user."""
    pk = request.user.pk
    if pk is None:
        raise NotAuthenticated()
    return pk


class SendRateThrottle(UserRateThrottle):
    """The REST twin of the WebSocket send limit: IMS_REST_SENDS_PER_MINUTE per user."""

    def get_rate(self) -> str:
        return f"{settings.IMS_REST_SENDS_PER_MINUTE}/min"


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


class ConversationListApi(APIView):
    """GET: the caller's conversations, latest activity first, not paginated (a chat list
    shows them all, each with its unread count). POST: create a group."""

    @extend_schema_serializer(component_name="GroupCreateRequest")
    class InputSerializer(serializers.Serializer):
        title = TextField(max_length=200, help_text="Stored without leading and trailing whitespace.")
        member_ids = serializers.ListField(
            child=IdField(),
            max_length=settings.IMS_MAX_GROUP_MEMBERS,
            help_text="The other members; the caller is always one.",
        )

    @extend_schema(responses={200: ConversationSerializer(many=True), **error_responses({})})
    def get(self, request: Request) -> Response:
        """The caller's conversations, latest activity first; not paginated."""
        summaries = conversation_summaries(user_id=caller_id(request))
        return Response(ConversationSerializer(summaries, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: ConversationSerializer,
            **error_responses(
                {
                    400: f"{BAD_BODY} Or more than IMS_MAX_GROUP_MEMBERS members with the caller.",
                    403: CSRF,
                    404: "No such user among `member_ids` (or not active).",
                    415: NOT_JSON,
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        """Create a group of the caller and `member_ids`."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        conversation = conversation_create_group(
            creator_id=caller_id(request), title=data["title"], member_ids=data["member_ids"]
        )
        return _summary_response(request, conversation.pk, status_code=status.HTTP_201_CREATED)


def _summary_response(
    request: Request, conversation_id: int, *, status_code: int = status.HTTP_200_OK
) -> Response:
    (summary,) = conversation_summaries(user_id=caller_id(request), conversation_id=conversation_id)
    return Response(ConversationSerializer(summary).data, status=status_code)


# A direct conversation's members and title never change (docs/protocol.md).
DIRECT_IS_FIXED = "the conversation is a direct one, whose members and title never change."


class ConversationDetailApi(APIView):
    """PATCH: rename a group (any member). Every member's page learns of it through a
    `conversation` stream item `renamed`."""

    @extend_schema_serializer(component_name="GroupRenameRequest")
    class InputSerializer(serializers.Serializer):
        title = TextField(max_length=200, help_text="Stored without leading and trailing whitespace.")

    @extend_schema(
        parameters=[CONVERSATION_PATH],
        request=InputSerializer,
        responses={
            200: ConversationSerializer,
            **error_responses(
                {
                    400: f"{BAD_BODY} Or {DIRECT_IS_FIXED}",
                    403: NOT_A_MEMBER,
                    404: f"No such conversation. {NO_ROUTE}",
                    415: NOT_JSON,
                }
            ),
        },
    )
    def patch(self, request: Request, conversation_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        conversation_rename(
            conversation_id=inbound.check_id(conversation_id),
            actor_id=caller_id(request),
            **serializer.validated_data,
        )
        return _summary_response(request, conversation_id)


class ConversationMembersApi(APIView):
    """POST: add users to a group (any member may). Each member gets a `conversation`
    stream item `member_added`."""

    @extend_schema_serializer(component_name="GroupMembersAddRequest")
    class InputSerializer(serializers.Serializer):
        user_ids = serializers.ListField(
            child=IdField(), allow_empty=False, min_length=1, max_length=settings.IMS_MAX_GROUP_MEMBERS
        )

    @extend_schema(
        parameters=[CONVERSATION_PATH],
        request=InputSerializer,
        responses={
            200: ConversationSerializer,
            **error_responses(
                {
                    400: f"{BAD_BODY} Or {DIRECT_IS_FIXED} Or the group would pass IMS_MAX_GROUP_MEMBERS.",
                    403: NOT_A_MEMBER,
                    404: f"No such conversation, or no such (active) user among `user_ids`. {NO_ROUTE}",
                    415: NOT_JSON,
                }
            ),
        },
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        conversation_add_members(
            conversation_id=inbound.check_id(conversation_id),
            actor_id=caller_id(request),
            **serializer.validated_data,
        )
        return _summary_response(request, conversation_id)


class ConversationMemberApi(APIView):
    """DELETE: leave a group (your own id) or, as its creator, remove a member. Members and
    the removed user get a `conversation` stream item `member_removed`."""

    @extend_schema(
        parameters=[
            CONVERSATION_PATH,
            OpenApiParameter("user_id", id_schema(), OpenApiParameter.PATH, description="The member's id."),
        ],
        responses={
            204: None,
            **error_responses(
                {
                    400: f"An id out of range. Or {DIRECT_IS_FIXED}",
                    403: f"Not a member, or removing someone from a group the caller did not create. {CSRF}",
                    404: f"No such conversation, or the user is not a member. {NO_ROUTE}",
                }
            ),
        },
    )
    def delete(self, request: Request, conversation_id: int, user_id: int) -> Response:
        conversation_remove_member(
            conversation_id=inbound.check_id(conversation_id),
            actor_id=caller_id(request),
            user_id=inbound.check_id(user_id),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


@dataclass(frozen=True, kw_only=True)
class DirectoryEntry:
    """One user as the directory shows it."""

    id: int
    username: str
    display_name: str
    online: bool


class UserDirectoryApi(APIView):
    """Active users to start a conversation with: `?q=` filters by username or name."""

    @extend_schema_serializer(component_name="DirectoryUser")
    class OutputSerializer(serializers.Serializer):
        id = IdField()
        username = serializers.CharField()
        display_name = serializers.CharField()
        online = serializers.BooleanField()

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "q",
                {"type": "string", "pattern": TEXT_PATTERN},
                description="Part of a username or name (its first 150 characters count).",
            )
        ],
        responses={
            200: OutputSerializer(many=True),
            **error_responses({400: "`q` holds U+0000."}),
        },
    )
    def get(self, request: Request) -> Response:
        query = request.query_params.get("q", "")
        require_text(query, field="q")
        users = list(user_directory(query=query[:150]))
        online = online_user_ids(user_ids=[user.pk for user in users])
        entries = [
            DirectoryEntry(
                id=user.pk, username=user.username, display_name=str(user), online=user.pk in online
            )
            for user in users
        ]
        return Response(self.OutputSerializer(entries, many=True).data)


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


class WsTicketApi(APIView):
    """A single-use WebSocket credential: connect to ws://HOST/ws/?ticket=TICKET before
    `expires_at`, so no long-lived token travels in a URL."""

    @extend_schema_serializer(component_name="WsTicket")
    class OutputSerializer(serializers.Serializer):
        ticket = serializers.CharField(source="key")
        expires_at = UtcDateTimeField()

    @extend_schema(request=None, responses={201: OutputSerializer, **error_responses({403: CSRF})})
    def post(self, request: Request) -> Response:
        ticket = ws_ticket_issue(user_id=caller_id(request))
        return Response(self.OutputSerializer(ticket).data, status=status.HTTP_201_CREATED)
