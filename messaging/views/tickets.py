"""REST for WebSocket tickets: a single-use credential, so no long-lived token travels in a URL."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.errors import CSRF, error_responses
from messaging.services.tickets import ws_ticket_issue
from messaging.views.common import caller_id
from messaging.views.serializers import (
    UtcDateTimeField,
)


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
