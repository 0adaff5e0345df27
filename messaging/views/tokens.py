"""Signing in over REST: a password for the user's API token, and revoking that token.

The one REST call that takes a password; like the login page it goes through the sign-in
guard (messaging.services.signin), so wrong passwords are slowed, then refused for a while.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.http import HttpRequest
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.errors import CSRF, NOT_JSON, ErrorSerializer, error_responses
from messaging.services.tokens import api_token_obtain, api_token_revoke
from messaging.views.common import caller_id
from messaging.views.fields import TextField


class ApiTokenApi(APIView):
    """POST: a username and password for the user's API token (`Authorization: Token KEY`,
    `?token=KEY` on the WebSocket). DELETE: revoke the caller's token, which closes the
    user's WebSockets with 4403; the next POST makes a new one.

    The user has one token, shared by every app signed in as that user.
    """

    # JSON only, as every REST view (settings.REST_FRAMEWORK): a cross-site form cannot
    # send it, so no other site can make employees' browsers spend their office address's
    # allowance of failures.
    # Signing in needs no credentials but the password; imsproject.request_limits reads this
    # too, so a POST without a token is not refused before its body is read.
    anonymous_methods = frozenset({"POST"})

    @extend_schema_serializer(component_name="TokenRequest")
    class InputSerializer(serializers.Serializer):
        username = TextField(max_length=150)
        password = TextField(max_length=4096, style={"input_type": "password"})

    @extend_schema_serializer(component_name="Token")
    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField(source="key", help_text="Send as `Authorization: Token <token>`.")

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        drf_request = super().initialize_request(request, *args, **kwargs)
        if request.method == "POST":
            # Signing in takes a password and nothing else: a stale token or a session
            # cookie sent along must not turn it into a 401 or a CSRF failure.
            drf_request.authenticators = ()
        return drf_request

    def get_permissions(self) -> Sequence[Any]:
        if self.request.method in self.anonymous_methods:
            return [AllowAny()]
        return super().get_permissions()

    @extend_schema(
        request=InputSerializer,
        auth=[],  # none: the password is the credential
        summary="Sign in: the user's API token for a username and password",
        responses={
            200: OpenApiResponse(
                OutputSerializer, description="The user's API token, the same on every call."
            ),
            400: OpenApiResponse(
                ErrorSerializer,
                description="Wrong username or password, unknown or inactive user: one answer for all "
                '(code bad_request). A malformed body adds {"<field>": ["..."]}.',
            ),
            415: OpenApiResponse(ErrorSerializer, description=NOT_JSON),
            429: OpenApiResponse(
                ErrorSerializer,
                description="Too many failed attempts for this account or from this address (code "
                "rate_limited): the password was not checked. Try again after Retry-After seconds.",
            ),
        },
        parameters=[
            OpenApiParameter(
                "Retry-After",
                int,
                OpenApiParameter.HEADER,
                response=[429],
                description="Seconds to wait before the next attempt.",
            )
        ],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        token = api_token_obtain(
            username=data["username"], password=data["password"], remote_addr=request.META.get("REMOTE_ADDR")
        )
        return Response(self.OutputSerializer(token).data)

    @extend_schema(
        request=None,
        summary="Revoke the caller's API token; the user's WebSockets close with 4403",
        responses={
            204: OpenApiResponse(description="Revoked (also when there was none)."),
            **error_responses({403: CSRF}),
        },
    )
    def delete(self, request: Request) -> Response:
        api_token_revoke(user_id=caller_id(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
