"""APNs against a local HTTP/2 + TLS server that checks the ES256 provider token and headers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notifications.providers import PushError, PushMessage, PushTarget, get_provider, reset_providers
from tests.notifications.providers.priority_table import PRIORITIES, documented, observed
from tests.notifications.providers.servers import (
    LocalServer,
    Received,
    Reply,
    TlsFiles,
    http2_tls_server,
    tls_files,
)

TEAM_ID = "TEAM123456"
KEY_ID = "KEY1234567"
TOPIC = "com.example.ims"
AUTH_KEY = ec.generate_private_key(ec.SECP256R1())
DEVICE = "a" * 64


class FakeApns:
    """Accepts a push only over HTTP/2, with a valid provider token and the required headers."""

    def __init__(self) -> None:
        self.answers: dict[str, Reply] = {}
        self.accepted: list[Received] = []

    def __call__(self, request: Received) -> Reply:
        if request.http_version != "2":
            return Reply(400, {"reason": "BadRequest (HTTP/2 only)"})
        problem = self._problem(request)
        if problem:
            return Reply(403 if "token" in problem else 400, {"reason": problem})
        device = request.path.removeprefix("/3/device/")
        if device in self.answers:
            return self.answers[device]
        self.accepted.append(request)
        return Reply(200, headers={"apns-id": f"00000000-0000-0000-0000-{len(self.accepted):012d}"})

    def _problem(self, request: Received) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "bearer":
            return "MissingProviderToken"
        try:
            if jwt.get_unverified_header(token).get("kid") != KEY_ID:
                return "InvalidProviderToken"
            claims = jwt.decode(token, AUTH_KEY.public_key(), algorithms=["ES256"], issuer=TEAM_ID)
        except jwt.InvalidTokenError:
            return "InvalidProviderToken"
        if claims["iat"] < time.time() - 3600:
            return "ExpiredProviderToken"
        if request.headers.get("apns-topic") != TOPIC:
            return "BadTopic"
        if request.headers.get("apns-push-type") not in {"alert", "background"}:
            return "InvalidPushType"
        if request.headers.get("apns-priority") not in {"5", "10"}:
            return "BadPriority"
        aps = request.json().get("aps", {})
        # Apple: priority 10 only for a push that shows an alert, plays a sound or badges.
        if request.headers["apns-priority"] == "10" and not {"alert", "sound", "badge"} & set(aps):
            return "BadPriority"
        if not request.headers.get("apns-expiration", "").isdigit():
            return "BadExpirationDate"
        if len(request.body) > 4096:
            return "PayloadTooLarge"
        return None


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return tls_files(tmp_path_factory.mktemp("apns-tls"))


@pytest.fixture
def apns(tls: TlsFiles) -> Iterator[tuple[FakeApns, LocalServer]]:
    fake = FakeApns()
    with http2_tls_server(fake, tls=tls) as server:
        yield fake, server


@pytest.fixture
def provider(apns, tls: TlsFiles, settings, tmp_path: Path):
    _, server = apns
    key_file = tmp_path / f"AuthKey_{KEY_ID}.p8"
    key_file.write_bytes(
        AUTH_KEY.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    settings.IMS_APNS_KEY_FILE = str(key_file)
    settings.IMS_APNS_KEY_ID = KEY_ID
    settings.IMS_APNS_TEAM_ID = TEAM_ID
    settings.IMS_APNS_TOPIC = TOPIC
    settings.IMS_APNS_BASE_URL = server.url
    settings.IMS_PUSH_CA_FILE = str(tls.ca_file)
    yield get_provider("apns")
    # Before the server stops: APNs clients hold their connection open.
    reset_providers()


def _message(**overrides: Any) -> PushMessage:
    values: dict[str, Any] = {
        "title": "Security",
        "body": "New sign-in from Berlin",
        "payload": {
            "type": "notification",
            "seq": 11,
            "data": {"id": 4, "content": "New sign-in from Berlin"},
        },
        "priority": "P0",
        "ttl_seconds": 300,
    }
    return PushMessage(**{**values, **overrides})


def _target(token: str = DEVICE) -> PushTarget:
    return PushTarget(kind="apns", address=token)


def test_alert_goes_over_http2_with_a_valid_token_and_the_item(apns, provider):
    fake, _ = apns
    before = int(time.time())
    result = provider.send(target=_target(), message=_message())
    assert result.status_code == 200
    assert result.provider_id == "00000000-0000-0000-0000-000000000001"
    (request,) = fake.accepted
    assert request.path == f"/3/device/{DEVICE}"
    assert request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-priority"] == "10"
    assert before + 300 <= int(request.headers["apns-expiration"]) <= time.time() + 300
    assert "apns-collapse-id" not in request.headers
    assert request.json() == {
        "aps": {
            "alert": {"title": "Security", "body": "New sign-in from Berlin"},
            "interruption-level": "time-sensitive",
            "sound": "default",
        },
        "ims": {"type": "notification", "seq": 11, "data": {"id": 4, "content": "New sign-in from Berlin"}},
    }


@pytest.mark.parametrize("priority", PRIORITIES)
def test_each_priority_is_sent_as_the_docs_table_says(apns, provider, priority):
    fake, _ = apns
    provider.send(target=_target(), message=_message(priority=priority))
    (request,) = fake.accepted
    expected = documented("APNs", priority)
    assert observed(list(expected), headers=request.headers, body=request.json()) == expected


@pytest.mark.parametrize(
    ("priority", "apns_priority", "level", "sound"),
    [
        ("P0", "10", "time-sensitive", "default"),
        ("P1", "10", "active", "default"),
        ("P2", "5", "passive", None),
        ("P3", "5", "passive", None),
    ],
)
def test_every_priority_is_a_visible_alert_and_only_p0_and_p1_make_a_sound(
    apns, provider, priority, apns_priority, level, sound
):
    fake, _ = apns
    provider.send(target=_target(), message=_message(priority=priority))
    (request,) = fake.accepted
    assert request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-priority"] == apns_priority
    aps = request.json()["aps"]
    assert aps["alert"] == {"title": "Security", "body": "New sign-in from Berlin"}
    assert aps["interruption-level"] == level
    assert aps.get("sound") == sound
    assert "content-available" not in aps


def test_p0_breaks_through_focus_without_asking_for_critical_alerts(apns, provider):
    fake, _ = apns
    provider.send(target=_target(), message=_message(priority="P0"))
    aps = fake.accepted[0].json()["aps"]
    assert aps["interruption-level"] == "time-sensitive"
    # Critical alerts need an entitlement from Apple; a critical sound is a dictionary.
    assert aps["sound"] == "default"


def test_merged_low_priority_push_carries_a_collapse_id(apns, provider):
    fake, _ = apns
    provider.send(target=_target(), message=_message(priority="P3", collapse_key="announcements"))
    assert fake.accepted[0].headers["apns-collapse-id"] == "announcements"


def test_provider_token_is_reused_across_pushes_on_one_connection(apns, provider):
    fake, _ = apns
    for _ in range(3):
        provider.send(target=_target(), message=_message())
    tokens = {request.headers["authorization"] for request in fake.accepted}
    assert len(tokens) == 1


def test_unregistered_device_is_a_permanent_error(apns, provider):
    fake, _ = apns
    fake.answers["gone"] = Reply(410, {"reason": "Unregistered", "timestamp": int(time.time() * 1000)})
    with pytest.raises(PushError) as caught:
        provider.send(target=_target("gone"), message=_message())
    assert caught.value.permanent
    assert caught.value.status_code == 410


def test_bad_device_token_is_a_permanent_error(apns, provider):
    fake, _ = apns
    fake.answers["bad"] = Reply(400, {"reason": "BadDeviceToken"})
    with pytest.raises(PushError) as caught:
        provider.send(target=_target("bad"), message=_message())
    assert caught.value.permanent


def test_service_unavailable_is_a_temporary_error(apns, provider):
    fake, _ = apns
    fake.answers[DEVICE] = Reply(503, {"reason": "ServiceUnavailable"})
    with pytest.raises(PushError) as caught:
        provider.send(target=_target(), message=_message())
    assert not caught.value.permanent
    assert caught.value.retryable


def test_expired_provider_token_is_renewed_and_retried(apns, provider):
    fake, _ = apns
    provider.send(target=_target(), message=_message())
    fake.answers[DEVICE] = Reply(403, {"reason": "ExpiredProviderToken"})
    with pytest.raises(PushError) as caught:
        provider.send(target=_target(), message=_message())
    assert caught.value.retryable
    assert not caught.value.permanent
    del fake.answers[DEVICE]
    # A new token needs a new second: JWTs of the same iat and key are the same token.
    time.sleep(1)
    provider.send(target=_target(), message=_message())
    first, second = (request.headers["authorization"] for request in fake.accepted)
    assert first != second


def test_a_message_refusal_keeps_the_device(apns, provider):
    fake, _ = apns
    fake.answers[DEVICE] = Reply(400, {"reason": "BadCollapseId"})
    with pytest.raises(PushError) as caught:
        provider.send(target=_target(), message=_message())
    assert not caught.value.permanent
    assert not caught.value.retryable


def test_long_content_is_shortened_to_the_4_kib_limit(apns, provider):
    fake, _ = apns
    long_text = "Incident report: " + "database failover completed; " * 300
    message = _message(
        body=long_text, payload={"type": "notification", "seq": 12, "data": {"content": long_text}}
    )
    provider.send(target=_target(), message=message)
    (request,) = fake.accepted
    assert len(request.body) <= 4096
    document = request.json()
    assert document["ims"]["truncated"] is True
    assert document["ims"]["data"]["content"].endswith("…")


def test_without_settings_apns_is_off_and_names_each_missing_one(settings):
    settings.IMS_APNS_KEY_ID = KEY_ID
    provider = get_provider("apns")
    assert not provider.is_configured()
    description = provider.describe_configuration()
    assert "IMS_APNS_KEY_FILE" in description
    assert "IMS_APNS_TEAM_ID" in description
    assert "IMS_APNS_TOPIC" in description
    assert "IMS_APNS_KEY_ID" not in description
