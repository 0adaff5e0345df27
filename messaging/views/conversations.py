"""REST for conversations: the caller's list, new groups, renaming, and members."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging import inbound
from messaging.errors import CSRF, NO_ROUTE, NOT_JSON, error_responses
from messaging.selectors.conversations import (
    conversation_summaries,
)
from messaging.services.conversations import (
    conversation_add_members,
    conversation_create_group,
    conversation_remove_member,
    conversation_rename,
)
from messaging.views.common import BAD_BODY, CONVERSATION_PATH, NOT_A_MEMBER, caller_id
from messaging.views.fields import (
    TextField,
    id_schema,
)
from messaging.views.serializers import (
    ConversationSerializer,
    IdField,
)


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
