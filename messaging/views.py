"""The REST API: each view parses its input, calls one service or selector, renders.

Authentication is the API token (`Authorization: Token KEY`) or the session cookie (with
its CSRF token on writes); no credentials get 401. Domain errors (messaging.errors) become
{"code", "detail", "<field>": [detail]} with their HTTP status in errors.rest_exception_handler;
a body that fails an input serializer gets DRF's {"<field>": ["..."]} with 400.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated, NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from messaging import inbound
from messaging.models import Message
from messaging.selectors.conversations import (
    conversation_history,
    conversation_member_ids,
    conversation_summaries,
    message_deliveries,
)
from messaging.selectors.presence import online_user_ids
from messaging.selectors.users import user_directory
from messaging.serializers import (
    ContentField,
    ConversationSerializer,
    ErrorSerializer,
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
from messaging.services.receipts import messages_mark_read
from messaging.services.tickets import ws_ticket_issue

BAD_REQUEST = OpenApiResponse(
    description='Malformed body: {"<field>": ["..."]}, or a domain error {"code": "bad_request", ...}.'
)
NOT_AUTHENTICATED = OpenApiResponse(description="No or invalid credentials.")
FORBIDDEN = OpenApiResponse(ErrorSerializer, description="Not a member (code forbidden).")
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such user or conversation (code not_found).")


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
    """

    throttle_classes = [SendRateThrottle]

    @extend_schema_serializer(component_name="MessageSendRequest")
    class InputSerializer(serializers.Serializer):
        client_msg_id = serializers.CharField(
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
        mentions = serializers.ListField(child=IdField(), required=False)

    @extend_schema_serializer(component_name="SentMessage")
    class OutputSerializer(MessageSerializer):
        seq = serializers.IntegerField(help_text="The sender's own stream seq for this message.")

        # The message plus the sender's seq, which post() passes as context["seq"].
        def to_representation(self, instance: Message) -> dict[str, Any]:
            return {**super().to_representation(instance), "seq": self.context["seq"]}

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
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
            child=serializers.CharField(), allow_empty=False, max_length=inbound.MAX_IDS_PER_FRAME
        )

    @extend_schema_serializer(component_name="MessagesReadResult")
    class OutputSerializer(serializers.Serializer):
        read = serializers.IntegerField(help_text="How many messages became read.")

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED},
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
        title = serializers.CharField(max_length=200)
        member_ids = serializers.ListField(
            child=IdField(),
            max_length=settings.IMS_MAX_GROUP_MEMBERS,
            help_text="The other members; the caller is always one.",
        )

    @extend_schema(responses={200: ConversationSerializer(many=True), 401: NOT_AUTHENTICATED})
    def get(self, request: Request) -> Response:
        """The caller's conversations, latest activity first; not paginated."""
        summaries = conversation_summaries(user_id=caller_id(request))
        return Response(ConversationSerializer(summaries, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: ConversationSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED, 404: NOT_FOUND},
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


class ConversationDetailApi(APIView):
    """PATCH: rename a group (any member). Every member's page learns of it through a
    `conversation` stream item `renamed`."""

    @extend_schema_serializer(component_name="GroupRenameRequest")
    class InputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=200)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: ConversationSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
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
            child=IdField(), allow_empty=False, max_length=settings.IMS_MAX_GROUP_MEMBERS
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            200: ConversationSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
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
        responses={204: None, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND}
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
        id = serializers.IntegerField()
        username = serializers.CharField()
        display_name = serializers.CharField()
        online = serializers.BooleanField()

    @extend_schema(
        parameters=[OpenApiParameter("q", str, description="Part of a username or name.")],
        responses={200: OutputSerializer(many=True), 401: NOT_AUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        users = list(user_directory(query=request.query_params.get("q", "")[:150]))
        online = online_user_ids(user_ids=[user.pk for user in users])
        entries = [
            DirectoryEntry(
                id=user.pk, username=user.username, display_name=str(user), online=user.pk in online
            )
            for user in users
        ]
        return Response(self.OutputSerializer(entries, many=True).data)


class HistoryPagination(CursorPagination):
    ordering = "-id"  # message ids are UUIDv7: newest first, stable under new inserts
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request: Request) -> Cursor | None:
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                # DRF's stub says int; decode_cursor takes the position from the query string.
                uuid.UUID(cursor.position)  # type: ignore[arg-type]
            except ValueError:
                # A forged position would otherwise reach the query and fail there with a 500.
                raise NotFound(self.invalid_cursor_message) from None
        return cursor


class ConversationMessagesApi(APIView):
    """A conversation's history, newest first, one cursor page at a time (`next` walks
    back in time). Members only. The caller's own messages carry `delivery`
    ({recipients, delivered, read}), so a reloaded page shows the same ticks as a live one."""

    pagination_class = HistoryPagination

    @extend_schema(
        responses={
            200: MessageSerializer(many=True),
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
        }
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

    @extend_schema(request=None, responses={201: OutputSerializer, 401: NOT_AUTHENTICATED})
    def post(self, request: Request) -> Response:
        ticket = ws_ticket_issue(user_id=caller_id(request))
        return Response(self.OutputSerializer(ticket).data, status=status.HTTP_201_CREATED)
