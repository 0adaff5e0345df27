"""Web Push (RFC 8030) to browser subscriptions, encrypted as RFC 8291 aes128gcm, signed with VAPID.

pywebpush does the encryption and the POST; this module chooses the headers, fits the
payload into the 4 KiB record and turns the push service's answer into a PushError:
404/410 the subscription is gone (permanent); 429, 5xx and network failures are retried
(after Retry-After); 400/401/403/413 refuse this message or our VAPID credentials, which
says nothing about the subscription, so they are neither permanent nor retried; a redirect
is never followed and fails this push the same way. An endpoint the address policy
(endpoints.py) refuses at send time is never contacted, and its device is deactivated.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from py_vapid import Vapid
from pywebpush import WebPusher, WebPushException

from notifications import vapid
from notifications.providers import endpoints
from notifications.providers.base import (
    PushError,
    PushMessage,
    PushResult,
    PushTarget,
    Reason,
    not_configured_error,
    parse_retry_after,
)
from notifications.providers.payload import PayloadTooLarge, dumps, fit_json
from notifications.providers.transport import webpush_session

# RFC 8291: push services accept 4096 bytes of body. aes128gcm adds a 86-byte header
# (16 salt, 4 record size, 1 key id length, 65 key id), a 16-byte tag and a 1-byte
# padding delimiter, which leaves 3993 bytes of JSON.
MAX_RECORD_BYTES = 4096
MAX_PLAINTEXT_BYTES = MAX_RECORD_BYTES - 86 - 16 - 1
# RFC 8030 section 5.4: a Topic is at most 32 characters of the base64url alphabet.
_TOPIC_CHARS = 32
# RFC 8292 allows a VAPID token up to 24 hours; a shorter one limits a leaked header.
_VAPID_TOKEN_LIFETIME_SECONDS = 12 * 3600
# Re-sign before expiry so a token never dies in flight.
_VAPID_TOKEN_RENEW_SECONDS = 3600
_GONE_STATUSES = frozenset({404, 410})
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Of the push service's answer, what staff see in the attempt (PushAttempt.error keeps 300
# characters in all): enough for a WNS or autopush error description.
_ANSWER_EXCERPT_CHARS = 200


def topic_for(collapse_key: str) -> str:
    """A stable Topic for any collapse key: the first 32 base64url characters of its SHA-256."""
    return vapid.b64url_encode(hashlib.sha256(collapse_key.encode()).digest())[:_TOPIC_CHARS]


def push_document(message: PushMessage, *, max_bytes: int = MAX_PLAINTEXT_BYTES) -> bytes:
    """The JSON a service worker receives: the item frame plus `title` and `body`, shortened,
    and the priority with how to show it (options for showNotification), never shortened."""
    presentation = message.presentation
    hints: dict[str, Any] = {
        "priority": message.priority,
        "silent": presentation.silent,
        "require_interaction": presentation.require_interaction,
        "renotify": presentation.renotify,
    }
    # showNotification() refuses a vibration pattern on a silent notification.
    if presentation.vibrate_ms:
        hints["vibrate"] = list(presentation.vibrate_ms)
    # Joining two JSON objects drops a pair of braces and adds a comma.
    item = {**message.payload, "title": message.title, "body": message.body}
    fitted = fit_json(item, max_bytes=max_bytes - len(dumps(hints)) + 1)
    return dumps({**fitted, **hints})


class WebPushProvider:
    kind = "webpush"

    def __init__(self) -> None:
        self._subject = settings.IMS_VAPID_SUBJECT
        self._timeout_seconds = settings.IMS_PUSH_TIMEOUT_SECONDS
        self._source = vapid.key_source()
        self._vapid: Vapid | None = None
        try:
            key = vapid.load_private_key()
            self._problem = _configuration_problem(key=key, subject=self._subject)
        except vapid.VapidKeyError as exc:
            self._problem = str(exc)
        else:
            if self._problem is None:
                self._vapid = Vapid(private_key=key)
        self._session = webpush_session()
        # Signed VAPID headers per push service origin, reused until near expiry.
        self._tokens: dict[str, tuple[dict[str, str], float]] = {}
        self._lock = threading.Lock()

    def is_configured(self) -> bool:
        return self._vapid is not None

    def describe_configuration(self) -> str:
        if self._vapid is None:
            return f"Web Push is off: {self._problem}"
        return f"Web Push with the VAPID key from {self._source}, subject {self._subject}"

    def close(self) -> None:
        self._session.close()

    def allows(self, priority: str) -> bool:
        return True

    def send(self, *, target: PushTarget, message: PushMessage) -> PushResult:
        if self._vapid is None:
            raise not_configured_error(kind=self.kind, description=str(self._problem))
        try:
            data = push_document(message)
        except PayloadTooLarge as exc:
            raise PushError(f"web push payload too large: {exc}", retryable=False) from None
        try:
            # Before any work; the session checks again, with the lookup, as it connects.
            endpoints.endpoint_parse(target.address)
        except endpoints.EndpointRefused as exc:
            raise _endpoint_refused(exc) from None
        # RFC 8030 section 5.3, as PROTOCOL.md maps the priorities.
        headers: dict[str, str] = {"Urgency": message.presentation.urgency}
        if message.collapse_key:
            headers["Topic"] = topic_for(message.collapse_key)
        headers.update(self._vapid_headers(self._vapid, target.address))
        try:
            pusher = WebPusher(
                {"endpoint": target.address, "keys": target.keys}, requests_session=self._session
            )
            response = pusher.send(
                data,
                headers,
                ttl=message.ttl_seconds,
                content_encoding="aes128gcm",
                timeout=self._timeout_seconds,
            )
        except endpoints.EndpointRefused as exc:
            raise _endpoint_refused(exc) from None
        except endpoints.EndpointUnresolved as exc:
            raise PushError(f"web push endpoint did not resolve: {exc}") from None
        except WebPushException as exc:
            # Raised before any request: the subscription's keys are missing or malformed.
            raise PushError(
                f"invalid web push subscription: {exc.message}", permanent=True, reason=Reason.INVALID
            ) from None
        except (ValueError, TypeError) as exc:
            raise PushError(
                f"invalid web push subscription keys: {type(exc).__name__}",
                permanent=True,
                reason=Reason.INVALID,
            ) from None
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ):
            raise PushError(
                "web push endpoint is not a usable URL", permanent=True, reason=Reason.INVALID
            ) from None
        except requests.RequestException as exc:
            raise PushError(f"web push request failed: {type(exc).__name__}") from None
        return _result(response)

    def _vapid_headers(self, signer: Vapid, endpoint: str) -> dict[str, str]:
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        with self._lock:
            cached = self._tokens.get(audience)
            if cached and cached[1] - now > _VAPID_TOKEN_RENEW_SECONDS:
                return cached[0]
            expires_at = int(now) + _VAPID_TOKEN_LIFETIME_SECONDS
            claims = {"aud": audience, "sub": self._subject, "exp": expires_at}
            headers = signer.sign(claims)
            self._tokens[audience] = (headers, expires_at)
            return headers


def _configuration_problem(*, key: ec.EllipticCurvePrivateKey | None, subject: str) -> str | None:
    if key is None:
        return "no VAPID key: set IMS_VAPID_PRIVATE_KEY or run `manage.py vapid_keys generate --write`"
    if not subject.startswith(("mailto:", "https:")):
        return "IMS_VAPID_SUBJECT must start with mailto: or https:"
    public_key = settings.IMS_VAPID_PUBLIC_KEY.strip()
    if public_key and public_key != vapid.public_key_b64url(key):
        return "IMS_VAPID_PUBLIC_KEY is not the public half of the VAPID private key"
    return None


def _endpoint_refused(exc: endpoints.EndpointRefused) -> PushError:
    """A stored endpoint the policy refuses now (the settings or its DNS changed): nothing
    was sent, and nothing will be until the browser subscribes again."""
    return PushError(
        f"web push endpoint not allowed: it {exc}", permanent=True, reason=Reason.ENDPOINT_NOT_ALLOWED
    )


def _result(response: requests.Response) -> PushResult:
    status = response.status_code
    if status < 300:
        return PushResult(status_code=status, provider_id=_message_id(response))
    answered = f"push service answered {status} {response.reason or ''}".rstrip()
    if status < 400:
        # Never followed (transport.webpush_session): this push failed, the device stays.
        location = " ".join(response.headers.get("Location", "").split())[:_ANSWER_EXCERPT_CHARS]
        raise PushError(
            f"{answered}, redirect to {location or '(nowhere)'} not followed",
            retryable=False,
            status_code=status,
        )
    body = _body_excerpt(response)
    if status in _GONE_STATUSES:
        raise PushError(f"{answered}, subscription gone{body}", permanent=True, status_code=status)
    if status in _RETRY_STATUSES:
        raise PushError(
            f"{answered}{body}",
            status_code=status,
            retry_after_seconds=parse_retry_after(response.headers.get("Retry-After")),
        )
    # 400 malformed, 401/403 VAPID rejected, 413 too large: about this message or our keys.
    raise PushError(f"{answered}{body}", retryable=False, status_code=status)


def _body_excerpt(response: requests.Response) -> str:
    """For staff only (PushAttempt.error): the start of the answer's body, on one line."""
    text = response.content[: _ANSWER_EXCERPT_CHARS * 4].decode("utf-8", "replace")
    text = " ".join(text.split())[:_ANSWER_EXCERPT_CHARS]
    return f": {text}" if text else ""


def _message_id(response: requests.Response) -> str | None:
    """RFC 8030 section 5: the Location header names the push message resource."""
    location = response.headers.get("Location")
    return location.rsplit("/", 1)[-1] if location else None
