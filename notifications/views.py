"""The REST API of notifications and push, included at /api/ (same auth and errors as messaging)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.errors import NotFound
from notifications import vapid


class VapidPublicKeyApi(APIView):
    """The VAPID application server key, base64url, for `PushManager.subscribe()`."""

    @extend_schema_serializer(component_name="VapidPublicKey")
    class OutputSerializer(serializers.Serializer):
        public_key = serializers.CharField()

    @extend_schema(
        responses={
            200: OutputSerializer,
            401: OpenApiResponse(description="no credentials"),
            404: OpenApiResponse(description="Web Push is not configured on this server"),
        }
    )
    def get(self, request: Request) -> Response:
        try:
            public_key = vapid.application_server_key()
        except vapid.VapidKeyError:
            public_key = None
        if public_key is None:
            raise NotFound("Web Push is not configured on this server")
        return Response(self.OutputSerializer({"public_key": public_key}).data)
