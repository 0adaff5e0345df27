"""Firebase Cloud Messaging, HTTP v1 API, authenticated as a service account.

google-auth signs the account's JWT assertion and trades it at the account's `token_uri`
for an OAuth2 access token, which is reused until shortly before it expires. Errors
(https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode): UNREGISTERED, 404,
SENDER_ID_MISMATCH and an INVALID_ARGUMENT about the token mean the token is dead
(permanent); UNAVAILABLE, INTERNAL, QUOTA_EXCEEDED, 429 and 5xx are retried; 401 drops
the cached access token and is retried; anything else refuses this message only.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import requests
from django.conf import settings
from google.auth import exceptions as google_exceptions
from google.auth.transport.requests import Request as GoogleAuthRequest
from google.oauth2 import service_account

from notifications.providers.apns import apns_headers, aps_presentation
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

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# FCM refuses a message whose data exceeds 4,000 bytes; keys and quoting count too, so
# fit the item's JSON with room for them.
_MAX_DATA_BYTES = 3500
_TOKEN_DEAD_CODES = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})
_RETRY_CODES = frozenset({"UNAVAILABLE", "INTERNAL", "QUOTA_EXCEEDED"})
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class _TimedRequest(GoogleAuthRequest):
    """google-auth's transport with our timeout: its own default is 120 seconds."""

    def __init__(self, *, session: requests.Session, timeout_seconds: float) -> None:
        super().__init__(session=session)
        self._timeout_seconds = timeout_seconds

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> Any:
        # The caller's timeout is replaced by ours.
        return super().__call__(
            url, method=method, body=body, headers=headers, timeout=self._timeout_seconds, **kwargs
        )


def data_fields(payload: dict[str, Any]) -> dict[str, str]:
    """FCM `data` values must be strings: strings stay, anything else becomes its JSON."""
    fitted = fit_json(payload, max_bytes=_MAX_DATA_BYTES)
    return {key: value if isinstance(value, str) else dumps(value).decode() for key, value in fitted.items()}


class FcmProvider:
    kind = "fcm"

    def __init__(self) -> None:
        self._path = settings.IMS_FCM_SERVICE_ACCOUNT_FILE
        self._base_url = settings.IMS_FCM_BASE_URL.rstrip("/")
        self._timeout_seconds = settings.IMS_PUSH_TIMEOUT_SECONDS
        self._problem: str | None = None
        self._credentials: service_account.Credentials | None = None
        self._project_id = ""
        self._load()
        self._client = http_client(http2=False)
        self._token_session = requests.Session()
        if settings.IMS_PUSH_CA_FILE:
            self._token_session.verify = settings.IMS_PUSH_CA_FILE
        self._token_request = _TimedRequest(
            session=self._token_session, timeout_seconds=self._timeout_seconds
        )
        self._lock = threading.Lock()

    def _load(self) -> None:
        if not self._path:
            self._problem = "IMS_FCM_SERVICE_ACCOUNT_FILE is not set"
            return
        try:
            info = json.loads(Path(self._path).read_text())
            self._credentials = service_account.Credentials.from_service_account_info(
                info, scopes=[FCM_SCOPE]
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Never the exception text: it may quote the private key.
            self._problem = f"cannot load the service account from {self._path}: {type(exc).__name__}"
            return
        self._project_id = info.get("project_id") or ""
        if not self._project_id:
            self._credentials = None
            self._problem = f"the service account in {self._path} has no project_id"

    def is_configured(self) -> bool:
        return self._credentials is not None

    def describe_configuration(self) -> str:
        if self._credentials is None:
            return f"FCM is off: {self._problem}"
        return (
            f"FCM for project {self._project_id} as {self._credentials.service_account_email}, "
            f"via {self._base_url}"
        )

    def close(self) -> None:
        self._client.close()
        self._token_session.close()

    def allows(self, priority: str) -> bool:
        return True

    def send(self, *, target: PushTarget, message: PushMessage) -> PushResult:
        if self._credentials is None:
            raise not_configured_error(kind=self.kind, description=str(self._problem))
        try:
            body = {"message": self._message(target=target, message=message)}
        except PayloadTooLarge as exc:
            raise PushError(f"fcm payload too large: {exc}", retryable=False) from None
        url = f"{self._base_url}/v1/projects/{self._project_id}/messages:send"
        headers = {"Authorization": f"Bearer {self._access_token(self._credentials)}"}
        try:
            response = self._client.post(url, json=body, headers=headers, timeout=self._timeout_seconds)
        except httpx.HTTPError as exc:
            raise PushError(f"fcm request failed: {type(exc).__name__}") from None
        if response.status_code < 300:
            return PushResult(status_code=response.status_code, provider_id=response.json().get("name"))
        raise self._error(response)

    def _message(self, *, target: PushTarget, message: PushMessage) -> dict[str, Any]:
        """Shown at every priority (`notification`), presented per platform as the table in
        presentation.py says; the item goes along as `data` for the app."""
        presentation = message.presentation
        ttl_seconds = max(message.ttl_seconds, 0)
        android: dict[str, Any] = {
            "priority": presentation.android_priority,
            "ttl": f"{ttl_seconds}s",
            "notification": {
                "channel_id": presentation.channel_id,
                "notification_priority": presentation.notification_priority,
                "default_sound": not presentation.silent,
                "default_vibrate_timings": not presentation.silent,
            },
        }
        if message.collapse_key:
            android["collapse_key"] = message.collapse_key
        return {
            "token": target.address,
            "notification": {"title": message.title, "body": message.body},
            "data": data_fields(message.payload),
            "android": android,
            "apns": {"headers": apns_headers(message), "payload": {"aps": aps_presentation(message)}},
            "webpush": {"headers": {"Urgency": presentation.urgency, "TTL": str(ttl_seconds)}},
        }

    def _access_token(self, credentials: service_account.Credentials) -> str:
        """The cached access token, refreshed when it is missing or about to expire."""
        with self._lock:
            if not credentials.valid:
                try:
                    credentials.refresh(self._token_request)
                except google_exceptions.RefreshError as exc:
                    # An answer from the token endpoint: a revoked key or a wrong account.
                    raise PushError(
                        f"fcm access token refused: {type(exc).__name__}",
                        retryable=getattr(exc, "retryable", False),
                    ) from None
                except google_exceptions.TransportError as exc:
                    raise PushError(f"fcm token request failed: {type(exc).__name__}") from None
            token = credentials.token
        if token is None:  # unreachable: `valid` and a successful refresh both mean a token
            raise PushError("fcm access token missing after refresh")
        return token

    def _forget_token(self) -> None:
        with self._lock:
            if self._credentials is not None:
                self._credentials.token = None

    def _error(self, response: httpx.Response) -> PushError:
        status = response.status_code
        error = _error_body(response)
        code = _error_code(error)
        detail = f"fcm answered {status} {code or ''}".rstrip()
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if code in _TOKEN_DEAD_CODES or status == 404 or _is_token_invalid(error):
            return PushError(f"{detail}: token is dead", permanent=True, status_code=status)
        if status == 401:
            self._forget_token()
            return PushError(detail, status_code=status)
        if code in _RETRY_CODES or status in _RETRY_STATUSES:
            return PushError(detail, status_code=status, retry_after_seconds=retry_after)
        return PushError(detail, retryable=False, status_code=status)


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def _error_code(error: dict[str, Any]) -> str | None:
    """The FcmError errorCode from `details` when present, else the google.rpc status."""
    for detail in error.get("details") or ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("FcmError"):
            return detail.get("errorCode")
    return error.get("status")


def _is_token_invalid(error: dict[str, Any]) -> bool:
    """INVALID_ARGUMENT blames the token when a field violation names message.token, or the
    message says the registration token is not valid."""
    if error.get("status") != "INVALID_ARGUMENT":
        return False
    for detail in error.get("details") or ():
        for violation in (detail.get("fieldViolations") or ()) if isinstance(detail, dict) else ():
            if violation.get("field") == "message.token":
                return True
    return "registration token" in str(error.get("message", "")).lower()
