"""What every REST view of messaging shares: who is calling, the send throttle, and the
words and path parameters the OpenAPI document repeats."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

from messaging.errors import CSRF
from messaging.views.fields import (
    id_schema,
)

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
