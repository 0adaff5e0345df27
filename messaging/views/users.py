"""REST for the people directory the chat page searches when starting a conversation."""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.errors import error_responses
from messaging.selectors.presence import online_user_ids
from messaging.selectors.users import user_directory
from messaging.services.text import TEXT_PATTERN, require_text
from messaging.views.serializers import (
    IdField,
)


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
