"""Registering and removing push devices; the caller's own only.

An address (a Web Push endpoint, an FCM or APNs token, a phone number) belongs to one user:
registering it again replaces only the caller's own registration, and one that another user
holds is refused, saying nothing of whom. For a phone number that is plain: anyone knows a
colleague's number, and moving it would cut them off from P0 escalation by SMS. Endpoints and
tokens are bearer secrets only the device has, so someone presenting one most likely holds the
device (a shared browser after another login); they are refused all the same, because secrets
leak too (logs, backups, the admin, a device's former owner) and a silent move leaves its
victim nothing to notice, while a refusal is loud and a real hand-over has a clean path: the
browser client unsubscribes and subscribes again for a fresh endpoint (the old one then dies
at the push service, 404/410, and is deactivated), an app signing out deletes its device, and
an administrator removes a stale one. See docs/push-providers.md, "Devices".
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging.api import require_text
from messaging.errors import BadRequest, Forbidden, NotFound
from messaging.models import User
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
# Where each kind's address travels in POST /api/devices/, and what a refusal calls it.
ADDRESS_FIELDS: dict[str, str] = {
    Device.Kind.WEBPUSH: "subscription",
    Device.Kind.FCM: "token",
    Device.Kind.APNS: "token",
    Device.Kind.SMS: "phone",
}
ADDRESS_NAMES: dict[str, str] = {
    Device.Kind.WEBPUSH: "push subscription",
    Device.Kind.FCM: "FCM token",
    Device.Kind.APNS: "APNs token",
    Device.Kind.SMS: "phone number",
}


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
    """Register a device for this user; the user's own endpoint, token or phone again
    replaces its registration (same id). One another user registered is refused (Forbidden)
    and stays theirs; so is one past IMS_MAX_DEVICES_PER_USER active devices (BadRequest).
    Anything refused stores nothing."""
    address, keys = _address(kind=kind, subscription=subscription, token=token, phone=phone)
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"`name` must be text of at most {MAX_NAME_LENGTH} characters", field="name")
    require_text(name, field="name")
    with transaction.atomic():
        _lock_user(user_id=user_id)
        device = Device.objects.filter(kind=kind, address=address).first()
        if device is not None and device.user_id != user_id:
            raise _taken(kind)
        if device is None or not device.active:
            _require_room_for_one_more(user_id=user_id)
        device = device or Device(user_id=user_id, kind=kind, address=address)
        device.keys, device.name, device.active, device.deactivated_reason = keys, name, True, ""
        device.created_at, device.last_used_at = now or timezone.now(), None
        try:
            with transaction.atomic():
                device.save()
        except IntegrityError:
            raise _taken(kind) from None  # another user registered it meanwhile
    return device


def _lock_user(*, user_id: int) -> None:
    """One user's registrations one at a time, so concurrent ones cannot pass the cap together
    (PostgreSQL; on SQLite the IMMEDIATE transaction already serialises every writer)."""
    list(User.objects.select_for_update().filter(pk=user_id).values_list("pk", flat=True))


def _taken(kind: str) -> Forbidden:
    return Forbidden(
        f"this {ADDRESS_NAMES[kind]} is registered to another user; it can be registered here once it "
        "is removed there (DELETE /api/devices/{id}/ by that user, or by an administrator)",
        field=ADDRESS_FIELDS[kind],
    )


def _require_room_for_one_more(*, user_id: int) -> None:
    limit = settings.IMS_MAX_DEVICES_PER_USER
    if Device.objects.filter(user_id=user_id, active=True).count() >= limit:
        raise BadRequest(
            f"at most {limit} active devices per user (IMS_MAX_DEVICES_PER_USER): remove one with "
            "DELETE /api/devices/{id}/ before registering another"
        )


def device_delete(*, user_id: int, device_id: int) -> None:
    """Forget one of the user's devices; anyone else's is not found."""
    if device_id > MAX_ID:
        raise NotFound("no such device")
    deleted, _ = Device.objects.filter(pk=device_id, user_id=user_id).delete()
    if not deleted:
        raise NotFound("no such device")
