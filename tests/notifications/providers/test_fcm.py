"""FCM HTTP v1 against a local server that is both the OAuth2 token endpoint and FCM."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from notifications.providers import PushError, PushMessage, PushTarget, get_provider
from notifications.providers.apns import apns_headers, aps_presentation
from notifications.providers.fcm import FCM_SCOPE
from tests.notifications.providers.priority_table import PRIORITIES, documented, observed
from tests.notifications.providers.servers import LocalServer, Received, Reply, http_server

PROJECT_ID = "ims-test-project"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
CLIENT_EMAIL = "ims-push@ims-test-project.iam.gserviceaccount.com"
# Small keys keep generation fast; the server checks signatures all the same.
SERVICE_ACCOUNT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _error(
    http_status: int, code: str, message: str, *, status: str | None = None, details: list | None = None
) -> Reply:
    """An FCM error body: google.rpc status, and the FcmError errorCode in details."""
    error_details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]
    error_details.extend(details or [])
    body = {"code": http_status, "message": message, "status": status or code, "details": error_details}
    return Reply(http_status, {"error": body})


class FakeGoogle:
    """Issues access tokens for valid JWT assertions and accepts sends that carry one."""

    def __init__(self) -> None:
        self.server: LocalServer | None = None
        self.issued: list[str] = []
        self.tokens_issued = 0
        self.sent: list[dict[str, Any]] = []
        self.answers: dict[str, Reply] = {}

    def __call__(self, request: Received) -> Reply:
        if request.path == "/token":
            return self._token(request)
        if request.path == f"/v1/projects/{PROJECT_ID}/messages:send":
            return self._send(request)
        return Reply(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "no such path"}})

    def _token(self, request: Received) -> Reply:
        form = {key: values[0] for key, values in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply(400, {"error": "unsupported_grant_type"})
        try:
            claims = jwt.decode(
                form["assertion"],
                SERVICE_ACCOUNT_KEY.public_key(),
                algorithms=["RS256"],
                # Google's token endpoint, whatever token_uri the assertion is posted to.
                audience=GOOGLE_TOKEN_AUDIENCE,
                issuer=CLIENT_EMAIL,
            )
        except jwt.InvalidTokenError as exc:
            return Reply(400, {"error": "invalid_grant", "error_description": str(exc)})
        if FCM_SCOPE not in claims.get("scope", "").split():
            return Reply(400, {"error": "invalid_scope"})
        self.tokens_issued += 1
        token = f"ya29.local-{self.tokens_issued}"
        self.issued.append(token)
        return Reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _send(self, request: Received) -> Reply:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.issued:
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        message = request.json()["message"]
        if not all(isinstance(value, str) for value in message.get("data", {}).values()):
            return _error(400, "INVALID_ARGUMENT", "data values must be strings")
        self.sent.append(message)
        if message["token"] in self.answers:
            return self.answers[message["token"]]
        return Reply(200, {"name": f"projects/{PROJECT_ID}/messages/0:{len(self.sent)}"})


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    fake = FakeGoogle()
    with http_server(fake) as server:
        fake.server = server
        yield fake


@pytest.fixture
def provider(google, settings, tmp_path: Path):
    pem = SERVICE_ACCOUNT_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account = {
        "type": "service_account",
        "project_id": PROJECT_ID,
        "private_key_id": "key-1",
        "private_key": pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "token_uri": f"{google.server.url}/token",
    }
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(account))
    settings.IMS_FCM_SERVICE_ACCOUNT_FILE = str(path)
    settings.IMS_FCM_BASE_URL = google.server.url
    return get_provider("fcm")


def _message(**overrides: Any) -> PushMessage:
    values: dict[str, Any] = {
        "title": "Bob",
        "body": "Lunch at noon?",
        "payload": {"type": "message", "seq": 5, "data": {"msg_id": "m-1", "content": "Lunch at noon?"}},
        "priority": "P1",
        "ttl_seconds": 3600,
    }
    return PushMessage(**{**values, **overrides})


def _target(token: str = "device-token-1") -> PushTarget:  # noqa: S107 (an FCM token, not a secret)
    return PushTarget(kind="fcm", address=token)


def test_send_carries_the_item_as_string_data_with_a_notification(google, provider):
    result = provider.send(target=_target(), message=_message())
    assert result.status_code == 200
    assert result.provider_id == f"projects/{PROJECT_ID}/messages/0:1"
    (sent,) = google.sent
    assert sent["token"] == "device-token-1"
    assert sent["notification"] == {"title": "Bob", "body": "Lunch at noon?"}
    assert sent["data"]["type"] == "message"
    assert sent["data"]["seq"] == "5"
    assert json.loads(sent["data"]["data"]) == {"msg_id": "m-1", "content": "Lunch at noon?"}
    assert sent["android"] == {
        "priority": "HIGH",
        "ttl": "3600s",
        "notification": {
            "channel_id": "ims_p1",
            "notification_priority": "PRIORITY_HIGH",
            "default_sound": True,
            "default_vibrate_timings": True,
        },
    }
    assert sent["webpush"] == {"headers": {"Urgency": "normal", "TTL": "3600"}}


@pytest.mark.parametrize("priority", PRIORITIES)
def test_each_priority_is_sent_as_the_docs_table_says(google, provider, priority):
    provider.send(target=_target(), message=_message(priority=priority))
    (sent,) = google.sent
    expected = documented("FCM", priority)
    assert observed(list(expected), headers={}, body=sent) == expected


@pytest.mark.parametrize(
    ("priority", "android", "channel", "sound"),
    [
        ("P0", "HIGH", "ims_p0", True),
        ("P1", "HIGH", "ims_p1", True),
        ("P2", "NORMAL", "ims_p2", False),
        ("P3", "NORMAL", "ims_p3", False),
    ],
)
def test_every_priority_shows_a_notification_and_only_p0_and_p1_make_a_sound(
    google, provider, priority, android, channel, sound
):
    provider.send(target=_target(), message=_message(priority=priority))
    (sent,) = google.sent
    assert sent["notification"] == {"title": "Bob", "body": "Lunch at noon?"}
    assert sent["data"]["type"] == "message"
    assert sent["android"]["priority"] == android
    notification = sent["android"]["notification"]
    assert notification["channel_id"] == channel
    assert notification["default_sound"] is sound
    assert notification["default_vibrate_timings"] is sound
    assert "sound" not in notification
    assert ("sound" in sent["apns"]["payload"]["aps"]) is sound


@pytest.mark.parametrize("priority", PRIORITIES)
def test_ios_clients_of_fcm_get_what_the_apns_provider_sends(google, provider, priority):
    message = _message(priority=priority, collapse_key="ims:1:news")
    provider.send(target=_target(), message=message)
    apns = google.sent[0]["apns"]
    expected_headers = apns_headers(message)
    # apns-expiration is a time: the same to within the second the two calls straddle.
    assert int(apns["headers"].pop("apns-expiration")) - int(expected_headers.pop("apns-expiration")) in (
        0,
        -1,
    )
    assert apns["headers"] == expected_headers
    assert apns["payload"] == {"aps": aps_presentation(message)}


def test_merged_low_priority_push_has_a_collapse_key(google, provider):
    provider.send(target=_target(), message=_message(priority="P3", collapse_key="announcements"))
    assert google.sent[0]["android"]["collapse_key"] == "announcements"


def test_one_access_token_serves_several_sends(google, provider):
    for token in ("device-1", "device-2", "device-3"):
        provider.send(target=_target(token), message=_message())
    assert len(google.issued) == 1
    assert len(google.sent) == 3


def test_unregistered_token_is_a_permanent_error(google, provider):
    google.answers["stale-token"] = _error(
        404, "UNREGISTERED", "Requested entity was not found.", status="NOT_FOUND"
    )
    with pytest.raises(PushError) as caught:
        provider.send(target=_target("stale-token"), message=_message())
    assert caught.value.permanent
    assert caught.value.status_code == 404


def test_invalid_registration_token_is_a_permanent_error(google, provider):
    google.answers["garbage"] = _error(
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}],
            }
        ],
    )
    with pytest.raises(PushError) as caught:
        provider.send(target=_target("garbage"), message=_message())
    assert caught.value.permanent


def test_invalid_argument_about_the_message_keeps_the_token(google, provider):
    google.answers["device-1"] = _error(400, "INVALID_ARGUMENT", "Invalid value at 'message.android.ttl'")
    with pytest.raises(PushError) as caught:
        provider.send(target=_target("device-1"), message=_message())
    assert not caught.value.permanent
    assert not caught.value.retryable


def test_unavailable_is_a_temporary_error_with_retry_after(google, provider):
    unavailable = _error(503, "UNAVAILABLE", "The service is currently unavailable.")
    unavailable.headers["Retry-After"] = "30"
    google.answers["device-1"] = unavailable
    with pytest.raises(PushError) as caught:
        provider.send(target=_target("device-1"), message=_message())
    assert not caught.value.permanent
    assert caught.value.retryable
    assert caught.value.retry_after_seconds == 30


def test_quota_exceeded_is_a_temporary_error(google, provider):
    google.answers["device-1"] = _error(429, "QUOTA_EXCEEDED", "Quota exceeded.", status="RESOURCE_EXHAUSTED")
    with pytest.raises(PushError) as caught:
        provider.send(target=_target("device-1"), message=_message())
    assert caught.value.retryable


def test_a_rejected_access_token_is_replaced_on_the_next_send(google, provider):
    provider.send(target=_target(), message=_message())
    google.issued.clear()  # the server forgets (revokes) the token it issued
    with pytest.raises(PushError) as caught:
        provider.send(target=_target(), message=_message())
    assert caught.value.status_code == 401
    assert caught.value.retryable
    provider.send(target=_target(), message=_message())
    assert google.issued == ["ya29.local-2"]


def test_expired_access_token_is_refreshed(google, provider):
    provider.send(target=_target(), message=_message())
    # google-auth refreshes ahead of expiry; move the expiry into that window.
    provider._credentials.expiry = provider._credentials.expiry.replace(year=2000)
    provider.send(target=_target(), message=_message())
    assert len(google.issued) == 2


def test_large_items_are_shortened_to_fit_fcm_data(google, provider):
    payload = {"type": "message", "seq": 6, "data": {"msg_id": "m-2", "content": "word " * 2000}}
    provider.send(target=_target(), message=_message(payload=payload))
    data = google.sent[0]["data"]
    assert sum(len(key.encode()) + len(value.encode()) for key, value in data.items()) <= 4000
    assert json.loads(data["data"])["content"].endswith("…")
    assert data["truncated"] == "true"


def test_without_a_service_account_fcm_is_off_and_says_what_is_missing():
    provider = get_provider("fcm")
    assert not provider.is_configured()
    assert "IMS_FCM_SERVICE_ACCOUNT_FILE" in provider.describe_configuration()


def test_an_unreadable_service_account_turns_fcm_off_without_quoting_it(settings, tmp_path: Path):
    path = tmp_path / "broken.json"
    path.write_text('{"private_key": "-----BEGIN PRIVATE KEY-----\\nsecret-material", "client_email": "x"}')
    settings.IMS_FCM_SERVICE_ACCOUNT_FILE = str(path)
    provider = get_provider("fcm")
    assert not provider.is_configured()
    assert str(path) in provider.describe_configuration()
    assert "secret-material" not in provider.describe_configuration()


def test_token_lifetime_is_honoured(google, provider):
    provider.send(target=_target(), message=_message())
    assert provider._credentials.expiry.timestamp() > time.time() + 3000
