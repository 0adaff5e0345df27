"""The REST API of notifications and push, included at /api/ (same auth, errors and
OpenAPI conventions as messaging's: see messaging.views)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.api import (
    MAX_ID,
    IdField,
    Priority,
    RefinedSchemaSerializer,
    StrictBooleanField,
    StrictCursorPagination,
    TextField,
    TextOrBlankField,
    id_schema,
    require_ids,
)
from messaging.errors import CSRF, NO_ROUTE, NOT_JSON, BadRequest, Forbidden, NotFound, error_responses
from notifications import vapid
from notifications.models import Category, Device
from notifications.providers.sms import E164
from notifications.selectors import (
    device_reason_shown,
    devices_of_user,
    notification_items,
    notifications_unread_count,
    push_preferences,
)
from notifications.services.devices import (
    APNS_TOKEN,
    AUTH_PATTERN,
    FCM_TOKEN,
    MAX_ADDRESS_LENGTH,
    P256DH_PATTERN,
    device_delete,
    device_register,
)
from notifications.services.notifications import (
    ALL,
    MAX_EXTRA_BYTES,
    MAX_EXTRA_DEPTH,
    notification_send,
    notifications_mark_read,
)
from notifications.services.preferences import (
    QUIET_TIME_PATTERN,
    conversation_mute,
    conversation_unmute,
    known_time_zones,
    preferences_update,
)

BAD_BODY = "The body is not what this operation takes (the fields say why)."
MAX_IDS_PER_REQUEST = 1000
CONVERSATION_PATH = OpenApiParameter(
    "conversation_id", id_schema(), OpenApiParameter.PATH, description="A conversation's id."
)


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
            **error_responses({404: "Web Push is not configured on this server."}),
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


class NotificationPagination(StrictCursorPagination):
    ordering = "-seq"  # the caller's stream order: newest first, stable under new items

    def position_is_valid(self, position: str) -> bool:
        # A seq: no "2**70" reaches the query (an OverflowError on SQLite).
        digits = str(position).removeprefix("-")
        return digits.isascii() and digits.isdigit() and int(digits) <= MAX_ID

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        page = super().get_paginated_response_schema(schema)
        unread = {"type": "integer", "minimum": 0, "description": "The caller's unread notifications."}
        return {
            **page,
            "properties": {**page["properties"], "unread": unread},
            "required": [*page["required"], "unread"],
        }


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {},
        "description": f"Free JSON for the client, sent with the notification: at most "
        f"{MAX_EXTRA_BYTES} bytes as JSON and {MAX_EXTRA_DEPTH} levels deep, numbers within "
        "±(2**63 - 1), no U+0000 in keys or strings.",
    }
)
class ExtraField(serializers.DictField):
    """`extra`: an object; notification_send checks what is in it."""


class NotificationListApi(APIView):
    """GET: the caller's notifications, newest first, cursor-paginated, with the unread count.
    POST: send one (staff, or the `notifications.add_notification` permission)."""

    pagination_class = NotificationPagination

    @extend_schema_serializer(component_name="NotificationSendRequest")
    class InputSerializer(RefinedSchemaSerializer):
        schema_refinement = {
            "oneOf": [
                {"required": ["user_ids"], "properties": {"all": {"type": "boolean", "enum": [False]}}},
                {
                    "required": ["all"],
                    "properties": {"all": {"type": "boolean", "enum": [True]}},
                    "not": {"required": ["user_ids"]},
                },
            ],
            "description": 'Give either `user_ids` or `"all": true`.',
        }

        user_ids = serializers.ListField(
            child=IdField(), required=False, allow_empty=False, min_length=1, max_length=100_000
        )
        all = StrictBooleanField(required=False, help_text="Every active user instead of `user_ids`.")
        title = TextField(max_length=200)
        content = TextOrBlankField(max_length=settings.IMS_MAX_TEXT_LENGTH)
        priority = serializers.ChoiceField(choices=Priority.choices)
        category = serializers.ChoiceField(choices=Category.choices)
        extra = ExtraField(required=False)

        def validate(self, data: dict[str, Any]) -> dict[str, Any]:
            if ("user_ids" in data) == bool(data.get("all")):
                raise serializers.ValidationError({"user_ids": ['give either "user_ids" or "all": true']})
            return data

    @extend_schema_serializer(component_name="NotificationSent")
    class SentSerializer(serializers.Serializer):
        id = IdField()
        recipients = serializers.IntegerField(source="recipient_count", min_value=0)

    @extend_schema_serializer(component_name="Notification")
    class OutputSerializer(serializers.Serializer):
        id = IdField()
        seq = IdField(help_text="Its seq in the caller's stream.")
        title = serializers.CharField()
        content = serializers.CharField()
        extra = serializers.DictField()
        priority = serializers.ChoiceField(choices=Priority.choices)
        category = serializers.ChoiceField(choices=Category.choices)
        created_at = serializers.DateTimeField()
        read = serializers.BooleanField()

        def to_representation(self, item: Any) -> dict[str, Any]:
            return {**item.payload["data"], "seq": item.seq, "read": item.read_at is not None}

    @extend_schema(
        responses={
            200: OutputSerializer(many=True),
            **error_responses(
                {
                    400: "A `page_size` that is not a positive integer.",
                    404: "A `cursor` this server did not give.",
                }
            ),
        }
    )
    def get(self, request: Request) -> Response:
        """The caller's notifications, newest first; `unread` counts all unread ones."""
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(notification_items(user_id=_caller(request)), request, view=self)
        response = paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)
        response.data["unread"] = notifications_unread_count(user_id=_caller(request))
        return response

    @extend_schema(
        request=InputSerializer,
        responses={
            201: SentSerializer,
            **error_responses(
                {
                    400: f"{BAD_BODY} Or `extra` breaks a rule of its description.",
                    403: f"Neither staff nor holding notifications.add_notification. {CSRF}",
                    404: "No such (active) user among `user_ids`.",
                    415: NOT_JSON,
                }
            ),
        },
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


class NotificationsReadApi(APIView):
    """Mark the caller's notifications read; its other devices get a `read` receipt."""

    @extend_schema_serializer(component_name="NotificationsReadRequest")
    class InputSerializer(serializers.Serializer):
        notification_ids = serializers.ListField(
            child=IdField(), allow_empty=False, min_length=1, max_length=MAX_IDS_PER_REQUEST
        )

    @extend_schema_serializer(component_name="NotificationsReadResult")
    class OutputSerializer(serializers.Serializer):
        read = serializers.IntegerField(min_value=0, help_text="How many notifications became read.")

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses({400: BAD_BODY, 403: CSRF, 415: NOT_JSON})},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        count = notifications_mark_read(user_id=_caller(request), **serializer.validated_data)
        return Response(self.OutputSerializer({"read": count}).data)


class DeviceSerializer(serializers.Serializer):
    id = IdField()
    kind = serializers.ChoiceField(choices=Device.Kind.choices)
    name = serializers.CharField()
    active = serializers.BooleanField()
    deactivated_reason = serializers.SerializerMethodField(
        help_text="Empty while active, else a fixed word: gone, invalid or endpoint_not_allowed "
        "(what the push service answered is for staff, in the admin)."
    )
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)

    def get_deactivated_reason(self, device: Device) -> str:
        return device_reason_shown(device)


WEBPUSH_SUBSCRIPTION_SCHEMA = {
    "type": "object",
    "description": "What PushManager.subscribe() gave.",
    "required": ["endpoint", "keys"],
    "properties": {
        "endpoint": {
            "type": "string",
            "format": "uri",
            "pattern": "^https?://",
            "maxLength": MAX_ADDRESS_LENGTH,
            "description": "The push service's URL (http only for one on a private network).",
        },
        "keys": {
            "type": "object",
            "required": ["p256dh", "auth"],
            "properties": {
                "p256dh": {
                    "type": "string",
                    "pattern": P256DH_PATTERN,
                    "description": "An uncompressed P-256 point (65 bytes, the first 0x04), base64url.",
                },
                "auth": {"type": "string", "pattern": AUTH_PATTERN, "description": "16 bytes, base64url."},
            },
        },
    },
}


class DeviceListApi(APIView):
    """GET: the caller's devices. POST: register one for third-party push."""

    @extend_schema_serializer(component_name="DeviceRegisterRequest")
    class InputSerializer(RefinedSchemaSerializer):
        schema_refinement = {
            "oneOf": [
                {
                    "required": ["subscription"],
                    "properties": {
                        "kind": {"enum": ["webpush"]},
                        "subscription": WEBPUSH_SUBSCRIPTION_SCHEMA,
                    },
                },
                {
                    "required": ["token"],
                    "properties": {"kind": {"enum": ["fcm"]}, "token": {"pattern": FCM_TOKEN.pattern}},
                },
                {
                    "required": ["token"],
                    "properties": {"kind": {"enum": ["apns"]}, "token": {"pattern": APNS_TOKEN.pattern}},
                },
                {
                    "required": ["phone"],
                    "properties": {"kind": {"enum": ["sms"]}, "phone": {"pattern": E164.pattern}},
                },
            ]
        }

        kind = serializers.ChoiceField(choices=Device.Kind.choices)
        subscription = serializers.DictField(required=False, help_text="webpush")
        token = TextField(required=False, help_text="fcm and apns")
        phone = TextField(required=False, help_text="sms, E.164")
        name = TextOrBlankField(required=False, max_length=100)

    @extend_schema_serializer(component_name="DeviceRegistered")
    class CreatedSerializer(serializers.Serializer):
        id = IdField()
        kind = serializers.ChoiceField(choices=Device.Kind.choices)
        name = serializers.CharField(allow_blank=True)
        created_at = serializers.DateTimeField()

    @extend_schema(responses={200: DeviceSerializer(many=True), **error_responses({})})
    def get(self, request: Request) -> Response:
        return Response(DeviceSerializer(devices_of_user(user_id=_caller(request)), many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: CreatedSerializer,
            **error_responses(
                {
                    400: f"{BAD_BODY} Or the subscription's endpoint is no URL a push service gives.",
                    403: CSRF,
                    415: NOT_JSON,
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device = device_register(user_id=_caller(request), **serializer.validated_data)
        return Response(self.CreatedSerializer(device).data, status=status.HTTP_201_CREATED)


class DeviceDetailApi(APIView):
    """DELETE: forget one of the caller's devices (anyone else's: 404)."""

    @extend_schema(
        parameters=[OpenApiParameter("device_id", id_schema(), OpenApiParameter.PATH)],
        responses={
            204: None,
            **error_responses(
                {
                    400: "An id out of range.",
                    403: CSRF,
                    404: f"No such device of the caller's. {NO_ROUTE}",
                }
            ),
        },
    )
    def delete(self, request: Request, device_id: int) -> Response:
        require_ids([device_id], field="device_id")
        device_delete(user_id=_caller(request), device_id=device_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


QUIET_HOURS_SCHEMA = {
    "type": "object",
    "nullable": True,
    "additionalProperties": False,
    "required": ["start", "end"],
    "properties": {
        "start": {"type": "string", "pattern": QUIET_TIME_PATTERN, "description": "HH:MM, the user's time"},
        "end": {
            "type": "string",
            "pattern": QUIET_TIME_PATTERN,
            "description": "HH:MM; before start: the next day",
        },
    },
    "description": "No third-party push but P0 in this window; null for none. Start and end differ.",
}


@extend_schema_field(QUIET_HOURS_SCHEMA)
class QuietHoursField(serializers.JSONField):
    """`{"start", "end"}` or null; preferences_update checks it."""


class PreferencesApi(APIView):
    """The caller's time zone and quiet hours (no third-party push but P0 inside them)."""

    @extend_schema_serializer(component_name="PushPreferences")
    class OutputSerializer(serializers.Serializer):
        time_zone = serializers.CharField()
        quiet_hours = QuietHoursField(allow_null=True)

    @extend_schema_serializer(component_name="PushPreferencesUpdate")
    class InputSerializer(RefinedSchemaSerializer):
        schema_refinement = {
            "anyOf": [{"required": ["time_zone"]}, {"required": ["quiet_hours"]}],
            "description": "Give `time_zone` and/or `quiet_hours`; what is not given stays.",
        }

        time_zone = serializers.ChoiceField(
            choices=sorted(known_time_zones()), required=False, help_text="An IANA time zone."
        )
        quiet_hours = QuietHoursField(required=False, allow_null=True)

    @extend_schema(responses={200: OutputSerializer, **error_responses({})})
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(push_preferences(user_id=_caller(request))).data)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            **error_responses(
                {400: f"{BAD_BODY} Or quiet hours that start and end at once.", 403: CSRF, 415: NOT_JSON}
            ),
        },
    )
    def patch(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not serializer.validated_data:
            raise BadRequest("give `time_zone` and/or `quiet_hours`")
        preferences_update(user_id=_caller(request), **serializer.validated_data)
        return Response(self.OutputSerializer(push_preferences(user_id=_caller(request))).data)


class ConversationMuteApi(APIView):
    """POST: no third-party push for this conversation's messages. DELETE: push them again.
    Live delivery is never held back. Members only."""

    MUTE_ERRORS = error_responses(
        {
            400: "An id out of range.",
            403: f"Not a member of the conversation. {CSRF}",
            404: f"No such conversation. {NO_ROUTE}",
        }
    )

    @extend_schema(parameters=[CONVERSATION_PATH], request=None, responses={204: None, **MUTE_ERRORS})
    def post(self, request: Request, conversation_id: int) -> Response:
        require_ids([conversation_id], field="conversation_id")
        conversation_mute(user_id=_caller(request), conversation_id=conversation_id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(parameters=[CONVERSATION_PATH], responses={204: None, **MUTE_ERRORS})
    def delete(self, request: Request, conversation_id: int) -> Response:
        require_ids([conversation_id], field="conversation_id")
        conversation_unmute(user_id=_caller(request), conversation_id=conversation_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
