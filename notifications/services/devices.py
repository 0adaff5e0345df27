"""Registering and removing push devices; the caller's own only."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from messaging.api import require_text
from messaging.errors import BadRequest, NotFound
from notifications.models import Device
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
# Push services give https endpoints; http is allowed for push services on a private network.
_endpoint_validator = URLValidator(schemes=["https", "http"])


# The keys as the OpenAPI document states them: base64url of exactly their bytes, padded or
# not, with the unused bits of the last character zero (what an encoder writes).
P256DH_PATTERN = "^B[A-P][A-Za-z0-9_-]{84}[AEIMQUYcgkosw048]=?$"  # 0x04, then 64 bytes
AUTH_PATTERN = "^[A-Za-z0-9_-]{21}[AQgw](==)?$"


def _b64url_bytes(value: Any, *, field: str) -> bytes:
    """The bytes of canonical base64url, padded or not: the decoder alone also skips
    foreign characters and reads any trailing bits."""
    unpadded = value.rstrip("=") if isinstance(value, str) else ""
    if not unpadded or value[len(unpadded) :] not in ("", "=" * (-len(unpadded) % 4)):
        raise BadRequest(f"`{field}` must be a base64url string", field=field)
    try:
        raw = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError):
        raise BadRequest(f"`{field}` is not valid base64url", field=field) from None
    if base64.urlsafe_b64encode(raw).decode().rstrip("=") != unpadded:
        raise BadRequest(f"`{field}` is not valid base64url", field=field)
    return raw


def _webpush_target(subscription: Any) -> tuple[str, dict[str, str]]:
    if not isinstance(subscription, dict):
        raise BadRequest(
            "`subscription` must be the object PushManager.subscribe() gave", field="subscription"
        )
    endpoint = subscription.get("endpoint")
    if not isinstance(endpoint, str) or len(endpoint) > MAX_ADDRESS_LENGTH:
        raise BadRequest("`subscription.endpoint` must be a URL", field="subscription")
    try:
        _endpoint_validator(endpoint)
    except ValidationError:
        raise BadRequest("`subscription.endpoint` must be an https URL", field="subscription") from None
    keys = subscription.get("keys")
    if not isinstance(keys, dict):
        raise BadRequest("`subscription.keys` must hold `p256dh` and `auth`", field="subscription")
    p256dh = _b64url_bytes(keys.get("p256dh"), field="subscription")
    if len(p256dh) != P256DH_BYTES or p256dh[0] != 4:
        raise BadRequest("`subscription.keys.p256dh` must be an uncompressed P-256 key", field="subscription")
    if len(_b64url_bytes(keys.get("auth"), field="subscription")) != AUTH_SECRET_BYTES:
        raise BadRequest("`subscription.keys.auth` must be 16 bytes", field="subscription")
    return endpoint, {"p256dh": keys["p256dh"], "auth": keys["auth"]}


def _address(*, kind: str, subscription: Any, token: Any, phone: Any) -> tuple[str, dict[str, str]]:
    if kind == Device.Kind.WEBPUSH:
        return _webpush_target(subscription)
    if kind in (Device.Kind.FCM, Device.Kind.APNS):
        pattern = FCM_TOKEN if kind == Device.Kind.FCM else APNS_TOKEN
        if not isinstance(token, str) or not pattern.fullmatch(token):
            raise BadRequest(f"`token` is not a valid {kind} token", field="token")
        return token, {}
    if kind == Device.Kind.SMS:
        if not isinstance(phone, str) or not E164.fullmatch(phone):
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
