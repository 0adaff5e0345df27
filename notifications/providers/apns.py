"""Apple Push Notification service over HTTP/2, with token (.p8 key, ES256 JWT) authentication.

Apple refuses a provider token older than an hour and one renewed more often than every
20 minutes (TooManyProviderTokenUpdates), so one token serves 50 minutes. Answers
(Apple's "Handling notification responses from APNs"): 410 and 400 BadDeviceToken /
DeviceTokenNotForTopic mean the token is dead (permanent); 429, 500 and 503 are retried;
403 ExpiredProviderToken renews the JWT and is retried; other refusals concern this
message or our credentials and are not retried.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

from notifications.providers.base import (
    PushError,
    PushMessage,
    PushResult,
    PushTarget,
    not_configured_error,
    parse_retry_after,
)
from notifications.providers.payload import PayloadTooLarge, dumps, fit_json
from notifications.providers.transport import http_client

TOKEN_LIFETIME_SECONDS = 50 * 60
# Apple's limit for every push type we send (VoIP alone gets 5 KiB).
MAX_PAYLOAD_BYTES = 4096
# apns-collapse-id: at most 64 bytes.
_MAX_COLLAPSE_ID_BYTES = 64
_TOKEN_DEAD_REASONS = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered", "ExpiredToken"})
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REQUIRED_SETTINGS = ("IMS_APNS_KEY_FILE", "IMS_APNS_KEY_ID", "IMS_APNS_TEAM_ID", "IMS_APNS_TOPIC")


def collapse_id_for(collapse_key: str) -> str:
    """The key itself when it fits apns-collapse-id, else its SHA-256 in hex."""
    if len(collapse_key.encode()) <= _MAX_COLLAPSE_ID_BYTES:
        return collapse_key
    return hashlib.sha256(collapse_key.encode()).hexdigest()


def apns_headers(message: PushMessage) -> dict[str, str]:
    """How APNs delivers this push; FCM sends the same headers to its iOS clients. The
    provider adds the topic and its token."""
    headers = {
        # Every priority is an alert the user sees: a background push shows nothing.
        "apns-push-type": "alert",
        "apns-priority": message.presentation.apns_priority,
        # 0 asks APNs to try once and keep nothing.
        "apns-expiration": str(int(time.time()) + message.ttl_seconds if message.ttl_seconds > 0 else 0),
    }
    if message.collapse_key:
        headers["apns-collapse-id"] = collapse_id_for(message.collapse_key)
    return headers


def aps_presentation(message: PushMessage) -> dict[str, Any]:
    """The `aps` keys that decide how the alert interrupts: its level, and a sound unless
    silent. FCM sends the same ones to its iOS clients."""
    presentation = message.presentation
    aps: dict[str, Any] = {"interruption-level": presentation.interruption_level}
    if not presentation.silent:
        aps["sound"] = "default"
    return aps


def apns_document(message: PushMessage) -> dict[str, Any]:
    """The JSON body: `aps` for the system, the item frame under `ims` for the app."""
    aps = {"alert": {"title": message.title, "body": message.body}, **aps_presentation(message)}
    document = fit_json({"aps": aps, "ims": message.payload}, max_bytes=MAX_PAYLOAD_BYTES)
    if document.pop("truncated", False):
        # Same bytes, but where the app looks: beside the item it may need to fetch in full.
        document["ims"]["truncated"] = True
    return document


class ApnsProvider:
    kind = "apns"

    def __init__(self) -> None:
        self._key_id = settings.IMS_APNS_KEY_ID
        self._team_id = settings.IMS_APNS_TEAM_ID
        self._topic = settings.IMS_APNS_TOPIC
        self._base_url = settings.IMS_APNS_BASE_URL.rstrip("/")
        self._timeout_seconds = settings.IMS_PUSH_TIMEOUT_SECONDS
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._problem = self._load()
        self._client = http_client(http2=True)
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def _load(self) -> str | None:
        missing = [name for name in _REQUIRED_SETTINGS if not getattr(settings, name)]
        if missing:
            return f"{', '.join(missing)} not set"
        path = Path(settings.IMS_APNS_KEY_FILE)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            return f"cannot read the .p8 key {path}: {type(exc).__name__}"
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            return f"{path} is not a P-256 key (APNs auth keys are ES256)"
        self._key = key
        return None

    def is_configured(self) -> bool:
        return self._key is not None

    def describe_configuration(self) -> str:
        if self._key is None:
            return f"APNs is off: {self._problem}"
        return f"APNs for {self._topic} with key {self._key_id} of team {self._team_id}, via {self._base_url}"

    def close(self) -> None:
        self._client.close()

    def allows(self, priority: str) -> bool:
        return True

    def send(self, *, target: PushTarget, message: PushMessage) -> PushResult:
        if self._key is None:
            raise not_configured_error(kind=self.kind, description=str(self._problem))
        try:
            body = dumps(apns_document(message))
        except PayloadTooLarge as exc:
            raise PushError(f"apns payload too large: {exc}", retryable=False) from None
        headers = {
            **apns_headers(message),
            "apns-topic": self._topic,
            "content-type": "application/json",
            "authorization": f"bearer {self._provider_token(self._key)}",
        }
        url = f"{self._base_url}/3/device/{target.address}"
        try:
            response = self._client.post(url, content=body, headers=headers, timeout=self._timeout_seconds)
        except httpx.HTTPError as exc:
            raise PushError(f"apns request failed: {type(exc).__name__}") from None
        if response.status_code == 200:
            return PushResult(status_code=200, provider_id=response.headers.get("apns-id"))
        raise self._error(response)

    def _provider_token(self, key: ec.EllipticCurvePrivateKey) -> str:
        now = time.time()
        with self._lock:
            if self._token is None or now - self._token[1] >= TOKEN_LIFETIME_SECONDS:
                token = jwt.encode(
                    {"iss": self._team_id, "iat": int(now)},
                    key,
                    algorithm="ES256",
                    headers={"kid": self._key_id},
                )
                self._token = (token, now)
            return self._token[0]

    def _forget_token(self) -> None:
        with self._lock:
            self._token = None

    def _error(self, response: httpx.Response) -> PushError:
        status = response.status_code
        try:
            reason = str(response.json().get("reason", ""))
        except (ValueError, AttributeError):
            reason = ""
        detail = f"apns answered {status} {reason}".rstrip()
        if status == 410 or reason in _TOKEN_DEAD_REASONS:
            return PushError(f"{detail}: device token is dead", permanent=True, status_code=status)
        if reason == "ExpiredProviderToken":
            self._forget_token()
            return PushError(detail, status_code=status)
        if status in _RETRY_STATUSES:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return PushError(detail, status_code=status, retry_after_seconds=retry_after)
        return PushError(detail, retryable=False, status_code=status)
