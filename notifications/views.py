"""The REST API of notifications and push, included at /api/ (same auth and errors as messaging)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound as DrfNotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.api import Priority
from messaging.errors import BadRequest, Forbidden, NotFound
from notifications import vapid
from notifications.models import Category, Device
from notifications.selectors import (
    device_reason_shown,
    devices_of_user,
    notification_items,
    notifications_unread_count,
    push_preferences,
)
from notifications.services.devices import device_delete, device_register
from notifications.services.notifications import ALL, notification_send, notifications_mark_read
from notifications.services.preferences import conversation_mute, conversation_unmute, preferences_update

BAD_REQUEST = OpenApiResponse(
    description='Malformed body: {"<field>": ["..."]}, or a domain error {"code": "bad_request", ...}.'
)
NOT_AUTHENTICATED = OpenApiResponse(description="No or invalid credentials.")
FORBIDDEN = OpenApiResponse(description="Not allowed (code forbidden).")
NOT_FOUND = OpenApiResponse(description="Not found (code not_found).")
MAX_IDS_PER_REQUEST = 1000


def _caller(request: Request) -> int:
    """The authenticated caller's id (every view here requires authentication)."""
    return int(request.user.pk)  # type: ignore[arg-type]


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


class NotificationListApi(APIView):
    """GET: the caller's notifications, newest first, cursor-paginated, with the unread count.
    POST: send one (staff, or the `notifications.add_notification` permission)."""

    @extend_schema_serializer(component_name="NotificationSendRequest")
    class InputSerializer(serializers.Serializer):
        user_ids = serializers.ListField(
            child=serializers.IntegerField(min_value=1), required=False, allow_empty=False, max_length=100_000
        )
        all = serializers.BooleanField(required=False, help_text="Every active user instead of `user_ids`.")
        title = serializers.CharField(max_length=200, trim_whitespace=False)
        content = serializers.CharField(
            allow_blank=True, trim_whitespace=False, max_length=settings.IMS_MAX_TEXT_LENGTH
        )
        priority = serializers.ChoiceField(choices=Priority.choices)
        category = serializers.ChoiceField(choices=Category.choices)
        extra = serializers.DictField(required=False)

        def validate(self, data: dict[str, Any]) -> dict[str, Any]:
            if ("user_ids" in data) == bool(data.get("all")):
                raise serializers.ValidationError({"user_ids": ['give either "user_ids" or "all": true']})
            return data

    @extend_schema_serializer(component_name="NotificationSent")
    class SentSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        recipients = serializers.IntegerField(source="recipient_count")

    @extend_schema_serializer(component_name="Notification")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        seq = serializers.IntegerField(help_text="Its seq in the caller's stream.")
        title = serializers.CharField()
        content = serializers.CharField()
        extra = serializers.DictField()
        priority = serializers.CharField()
        category = serializers.CharField()
        created_at = serializers.CharField()
        read = serializers.BooleanField()

        def to_representation(self, item: Any) -> dict[str, Any]:
            return {**item.payload["data"], "seq": item.seq, "read": item.read_at is not None}

    @extend_schema(responses={200: OutputSerializer(many=True), 401: NOT_AUTHENTICATED})
    def get(self, request: Request) -> Response:
        """The caller's notifications, newest first; `unread` counts all unread ones."""
        paginator = NotificationPagination()
        page = paginator.paginate_queryset(notification_items(user_id=_caller(request)), request, view=self)
        response = paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)
        response.data["unread"] = notifications_unread_count(user_id=_caller(request))
        return response

    @extend_schema(
        request=InputSerializer,
        responses={201: SentSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED, 403: FORBIDDEN},
    )
    def post(self, request: Request) -> Response:
        """Send a notification to `user_ids` or to `all` active users."""
        if not (request.user.is_staff or request.user.has_perm("notifications.add_notification")):
            raise Forbidden("only staff or holders of notifications.add_notification may notify")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        notification = notification_send(
            recipients=ALL if data.get("all") else data["user_ids"],
            title=data["title"],
            content=data["content"],
            priority=data["priority"],
            category=data["category"],
            extra=data.get("extra"),
            sender_user_id=_caller(request),
        )
        return Response(self.SentSerializer(notification).data, status=status.HTTP_201_CREATED)


class NotificationPagination(CursorPagination):
    ordering = "-seq"  # the caller's stream order: newest first, stable under new items
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request: Request) -> Cursor | None:
        cursor = super().decode_cursor(request)
        if (
            cursor is not None
            and cursor.position is not None
            and not str(cursor.position).lstrip("-").isdigit()
        ):
            # A forged position would otherwise reach the query and fail there with a 500.
            raise DrfNotFound(self.invalid_cursor_message)
        return cursor


class NotificationsReadApi(APIView):
    """Mark the caller's notifications read; its other devices get a `read` receipt."""

    @extend_schema_serializer(component_name="NotificationsReadRequest")
    class InputSerializer(serializers.Serializer):
        notification_ids = serializers.ListField(
            child=serializers.IntegerField(min_value=1), allow_empty=False, max_length=MAX_IDS_PER_REQUEST
        )

    @extend_schema_serializer(component_name="NotificationsReadResult")
    class OutputSerializer(serializers.Serializer):
        read = serializers.IntegerField(help_text="How many notifications became read.")

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED}
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        count = notifications_mark_read(user_id=_caller(request), **serializer.validated_data)
        return Response(self.OutputSerializer({"read": count}).data)


class DeviceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    name = serializers.CharField()
    active = serializers.BooleanField()
    deactivated_reason = serializers.SerializerMethodField(
        help_text="Empty while active, else a fixed word: gone, invalid or endpoint_not_allowed "
        "(what the push service answered is for staff, in the admin)."
    )
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField()

    def get_deactivated_reason(self, device: Device) -> str:
        return device_reason_shown(device)


class DeviceListApi(APIView):
    """GET: the caller's devices. POST: register one for third-party push."""

    @extend_schema_serializer(component_name="DeviceRegisterRequest")
    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=Device.Kind.choices)
        subscription = serializers.DictField(
            required=False,
            help_text='webpush: {"endpoint", "keys": {"p256dh", "auth"}} from PushManager.subscribe()',
        )
        token = serializers.CharField(required=False, trim_whitespace=False, help_text="fcm and apns")
        phone = serializers.CharField(required=False, trim_whitespace=False, help_text="sms, E.164")
        name = serializers.CharField(required=False, allow_blank=True, max_length=100)

    @extend_schema_serializer(component_name="DeviceRegistered")
    class CreatedSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        kind = serializers.CharField()
        name = serializers.CharField()
        created_at = serializers.DateTimeField()

    @extend_schema(responses={200: DeviceSerializer(many=True), 401: NOT_AUTHENTICATED})
    def get(self, request: Request) -> Response:
        return Response(DeviceSerializer(devices_of_user(user_id=_caller(request)), many=True).data)

    @extend_schema(
        request=InputSerializer, responses={201: CreatedSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED}
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device = device_register(user_id=_caller(request), **serializer.validated_data)
        return Response(self.CreatedSerializer(device).data, status=status.HTTP_201_CREATED)


class DeviceDetailApi(APIView):
    """DELETE: forget one of the caller's devices (anyone else's: 404)."""

    @extend_schema(responses={204: None, 401: NOT_AUTHENTICATED, 404: NOT_FOUND})
    def delete(self, request: Request, device_id: int) -> Response:
        device_delete(user_id=_caller(request), device_id=device_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PreferencesApi(APIView):
    """The caller's time zone and quiet hours (no third-party push but P0 inside them)."""

    @extend_schema_serializer(component_name="QuietHours")
    class QuietHoursSerializer(serializers.Serializer):
        start = serializers.CharField(help_text="HH:MM in the user's time zone")
        end = serializers.CharField(help_text="HH:MM; before start means the next day")

    @extend_schema_serializer(component_name="PushPreferences")
    class PreferencesSerializer(serializers.Serializer):
        time_zone = serializers.CharField(required=False)
        quiet_hours = serializers.JSONField(
            required=False, allow_null=True, help_text='{"start": "22:00", "end": "07:00"} or null'
        )

    @extend_schema(responses={200: PreferencesSerializer, 401: NOT_AUTHENTICATED})
    def get(self, request: Request) -> Response:
        return Response(push_preferences(user_id=_caller(request)))

    @extend_schema(
        request=PreferencesSerializer,
        responses={200: PreferencesSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED},
    )
    def patch(self, request: Request) -> Response:
        serializer = self.PreferencesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not isinstance(request.data, dict) or not serializer.validated_data:
            raise BadRequest("give `time_zone` and/or `quiet_hours`")
        preferences_update(user_id=_caller(request), **serializer.validated_data)
        return Response(push_preferences(user_id=_caller(request)))


class ConversationMuteApi(APIView):
    """POST: no third-party push for this conversation's messages. DELETE: push them again.
    Live delivery is never held back. Members only."""

    @extend_schema(
        request=None, responses={204: None, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND}
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        conversation_mute(user_id=_caller(request), conversation_id=conversation_id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={204: None, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND})
    def delete(self, request: Request, conversation_id: int) -> Response:
        conversation_unmute(user_id=_caller(request), conversation_id=conversation_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
