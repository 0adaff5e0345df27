"""Registering and removing push devices; the caller's own only."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Any

from django.db import transaction
from django.utils import timezone

from messaging.api import require_text
from messaging.errors import BadRequest, NotFound
from notifications.models import Device
from notifications.providers import endpoints
from notifications.providers.sms import E164

# Larger ids in a URL would overflow the database's bigint (a 500 on PostgreSQL).
MAX_ID = 2**63 - 1
MAX_ADDRESS_LENGTH = 1024
MAX_NAME_LENGTH = 100
# RFC 8291: p256dh is an uncompressed P-256 point (65 bytes), auth a 16-byte secret.
P256DH_BYTES = 65
AUTH_SECRET_BYTES = 16
# APNs device tokens are hex (32 bytes today; Apple says not to assume the length).
APNS_TOKEN = re.compile(r"^[0-9a-fA-F]{64,200}$")
# FCM registration tokens: printable ASCII without spaces, about 160 characters today.
FCM_TOKEN = re.compile(r"^[\x21-\x7e]{20,1024}$")


def _b64url_bytes(value: Any, *, field: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"`{field}` must be a base64url string", field=field)
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise BadRequest(f"`{field}` is not valid base64url", field=field) from None


def _webpush_target(subscription: Any) -> tuple[str, dict[str, str]]:
    if not isinstance(subscription, dict):
        raise BadRequest(
            "`subscription` must be the object PushManager.subscribe() gave", field="subscription"
        )
    endpoint = subscription.get("endpoint")
    if not isinstance(endpoint, str) or len(endpoint) > MAX_ADDRESS_LENGTH:
        raise BadRequest("`subscription.endpoint` must be a URL", field="subscription")
    keys = subscription.get("keys")
    if not isinstance(keys, dict):
        raise BadRequest("`subscription.keys` must hold `p256dh` and `auth`", field="subscription")
    p256dh = _b64url_bytes(keys.get("p256dh"), field="subscription")
    if len(p256dh) != P256DH_BYTES or p256dh[0] != 4:
        raise BadRequest("`subscription.keys.p256dh` must be an uncompressed P-256 key", field="subscription")
    if len(_b64url_bytes(keys.get("auth"), field="subscription")) != AUTH_SECRET_BYTES:
        raise BadRequest("`subscription.keys.auth` must be 16 bytes", field="subscription")
    _webpush_endpoint_check(endpoint)
    return endpoint, {"p256dh": keys["p256dh"], "auth": keys["auth"]}


def _webpush_endpoint_check(endpoint: str) -> None:
    """The endpoint address policy (providers.endpoints), with the lookup: a push service's
    https URL on public addresses unless IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS is on."""
    try:
        endpoints.endpoint_check(endpoint)
    except endpoints.EndpointRefused as exc:
        raise BadRequest(f"`subscription.endpoint` {exc}", field="subscription") from None
    except endpoints.EndpointUnresolved:
        # Worded as for a private address, so the answer does not tell which names exist.
        raise BadRequest(
            f"`subscription.endpoint` must be {endpoints.what_is_allowed()}",
            field="subscription",
        ) from None


def _address(*, kind: str, subscription: Any, token: Any, phone: Any) -> tuple[str, dict[str, str]]:
    if kind == Device.Kind.WEBPUSH:
        return _webpush_target(subscription)
    if kind in (Device.Kind.FCM, Device.Kind.APNS):
        pattern = FCM_TOKEN if kind == Device.Kind.FCM else APNS_TOKEN
        if not isinstance(token, str) or not pattern.match(token):
            raise BadRequest(f"`token` is not a valid {kind} token", field="token")
        return token, {}
    if kind == Device.Kind.SMS:
        if not isinstance(phone, str) or not E164.match(phone):
            raise BadRequest("`phone` must be an E.164 number like +4915112345678", field="phone")
        return phone, {}
    raise BadRequest(f"`kind` must be one of {', '.join(Device.Kind.values)}", field="kind")


def device_register(
    *,
    user_id: int,
    kind: str,
    subscription: Any = None,
    token: Any = None,
    phone: Any = None,
    name: str = "",
    now: dt.datetime | None = None,
) -> Device:
    """Register a device for this user. The same endpoint, token or phone again replaces
    the earlier registration, whoever made it. Bad input raises BadRequest, stores nothing."""
    address, keys = _address(kind=kind, subscription=subscription, token=token, phone=phone)
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"`name` must be text of at most {MAX_NAME_LENGTH} characters", field="name")
    require_text(name, field="name")
    with transaction.atomic():
        device, _ = Device.objects.update_or_create(
            kind=kind,
            address=address,
            defaults={
                "user_id": user_id,
                "keys": keys,
                "name": name,
                "active": True,
                "deactivated_reason": "",
                "created_at": now or timezone.now(),
                "last_used_at": None,
            },
        )
    return device


def device_delete(*, user_id: int, device_id: int) -> None:
    """Forget one of the user's devices; anyone else's is not found."""
    if device_id > MAX_ID:
        raise NotFound("no such device")
    deleted, _ = Device.objects.filter(pk=device_id, user_id=user_id).delete()
    if not deleted:
        raise NotFound("no such device")
