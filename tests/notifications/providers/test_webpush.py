"""Web Push against a local push service that checks VAPID and decrypts RFC 8291 bodies."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import certifi
import http_ece
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from notifications import vapid
from notifications.providers import PushError, PushMessage, PushTarget, Reason, get_provider
from notifications.providers.webpush import MAX_RECORD_BYTES, topic_for
from tests.notifications.providers.priority_table import PRIORITIES, documented, observed
from tests.notifications.providers.servers import (
    LocalServer,
    Received,
    Reply,
    http_server,
    listener,
    tls_files,
)

VAPID_KEY = vapid.generate_private_key()


class PushService:
    """A push service endpoint for one subscription: it holds the subscription's private
    key (as the browser would) and answers 201 only to a well-formed, decryptable push."""

    def __init__(self) -> None:
        self.subscription_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = os.urandom(16)
        self.documents: list[dict[str, Any]] = []
        self.server: LocalServer | None = None

    @property
    def keys(self) -> dict[str, str]:
        return {
            "p256dh": vapid.public_key_b64url(self.subscription_key),
            "auth": vapid.b64url_encode(self.auth_secret),
        }

    def __call__(self, request: Received) -> Reply:
        problem = self._problem(request)
        if problem:
            return Reply(400, {"problem": problem})
        plaintext = http_ece.decrypt(
            request.body, private_key=self.subscription_key, auth_secret=self.auth_secret, version="aes128gcm"
        )
        self.documents.append(json.loads(plaintext.decode()))
        return Reply(201, headers={"Location": f"{self.server.url}/messages/m-{len(self.documents)}"})

    def _problem(self, request: Received) -> str | None:
        scheme, _, params = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "vapid":
            return "no vapid authorization"
        fields = dict(part.split("=", 1) for part in params.split(","))
        if fields["k"] != vapid.public_key_b64url(VAPID_KEY):
            return "not the application server key"
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), vapid.b64url_decode(fields["k"])
        )
        try:
            claims = jwt.decode(fields["t"], public_key, algorithms=["ES256"], audience=self.server.url)
        except jwt.InvalidTokenError as exc:
            return f"bad vapid token: {exc}"
        if claims["sub"] != "mailto:ops@example.com" or claims["exp"] > time.time() + 24 * 3600:
            return "bad vapid claims"
        if request.headers.get("content-encoding") != "aes128gcm":
            return "not aes128gcm"
        if not request.headers.get("ttl", "").isdigit() or "urgency" not in request.headers:
            return "TTL or Urgency missing"
        if len(request.body) > MAX_RECORD_BYTES:
            return "payload too large"
        return None


@pytest.fixture
def push_service() -> Iterator[tuple[PushService, LocalServer]]:
    service = PushService()
    with http_server(service) as server:
        service.server = server
        yield service, server


@pytest.fixture
def provider(settings, local_push_endpoints):
    settings.IMS_VAPID_PRIVATE_KEY = vapid.private_key_b64url(VAPID_KEY)
    return get_provider("webpush")


def _target(service: PushService, server: LocalServer, path: str = "/push/sub-1") -> PushTarget:
    return PushTarget(kind="webpush", address=f"{server.url}{path}", keys=service.keys)


def _message(**overrides: Any) -> PushMessage:
    values: dict[str, Any] = {
        "title": "Server room",
        "body": "Temperature above 40 °C",
        "payload": {
            "type": "notification",
            "seq": 42,
            "data": {"id": 7, "title": "Server room", "content": "Temperature above 40 °C", "priority": "P0"},
        },
        "priority": "P0",
        "ttl_seconds": 600,
    }
    return PushMessage(**{**values, **overrides})


def test_push_is_vapid_signed_encrypted_and_decrypts_to_the_item_frame(push_service, provider):
    service, server = push_service
    result = provider.send(target=_target(service, server), message=_message())
    assert result.status_code == 201
    assert result.provider_id == "m-1"
    assert service.documents == [
        {
            "type": "notification",
            "seq": 42,
            "data": {"id": 7, "title": "Server room", "content": "Temperature above 40 °C", "priority": "P0"},
            "title": "Server room",
            "body": "Temperature above 40 °C",
            "priority": "P0",
            "silent": False,
            "require_interaction": True,
            "renotify": True,
            "vibrate": [300, 100, 300, 100, 300],
        }
    ]
    (request,) = server.received
    assert request.headers["ttl"] == "600"
    assert "topic" not in request.headers


@pytest.mark.parametrize(
    ("priority", "urgency"), [("P0", "high"), ("P1", "normal"), ("P2", "normal"), ("P3", "low")]
)
def test_urgency_follows_priority(push_service, provider, priority, urgency):
    service, server = push_service
    provider.send(target=_target(service, server), message=_message(priority=priority))
    assert server.received[0].headers["urgency"] == urgency


def test_collapse_key_becomes_a_short_base64url_topic(push_service, provider):
    service, server = push_service
    collapse_key = "announcements:user-1234567890:category-company-news"
    provider.send(target=_target(service, server), message=_message(priority="P3", collapse_key=collapse_key))
    topic = server.received[0].headers["topic"]
    assert topic == topic_for(collapse_key)
    assert len(topic) <= 32
    assert set(topic) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize("priority", PRIORITIES)
def test_each_priority_is_sent_as_the_docs_table_says(push_service, provider, priority):
    service, server = push_service
    provider.send(target=_target(service, server), message=_message(priority=priority))
    (request,) = server.received
    (document,) = service.documents
    expected = documented("Web Push", priority)
    assert observed(list(expected), headers=request.headers, body=document) == expected


@pytest.mark.parametrize(
    ("priority", "silent", "vibrate"),
    [
        ("P0", False, [300, 100, 300, 100, 300]),
        ("P1", False, [200, 100, 200]),
        ("P2", True, None),
        ("P3", True, None),
    ],
)
def test_p2_and_p3_are_shown_silently_and_p0_and_p1_vibrate(
    push_service, provider, priority, silent, vibrate
):
    service, server = push_service
    provider.send(target=_target(service, server), message=_message(priority=priority))
    (document,) = service.documents
    assert document["priority"] == priority
    assert document["silent"] is silent
    assert document.get("vibrate") == vibrate
    assert document["title"] == "Server room"


def test_only_p0_asks_to_stay_on_screen_and_to_alert_again(push_service, provider):
    service, server = push_service
    for priority in PRIORITIES:
        provider.send(target=_target(service, server), message=_message(priority=priority))
    assert [(d["require_interaction"], d["renotify"]) for d in service.documents] == [
        (True, True),
        (False, False),
        (False, False),
        (False, False),
    ]


def test_shortening_never_cuts_how_a_push_is_shown(push_service, provider):
    service, server = push_service
    mentions = list(range(1, 2000))
    payload = {
        "type": "message",
        "seq": 3,
        "data": {"msg_id": "m-3", "content": "x" * 5000, "mentions": mentions},
    }
    provider.send(target=_target(service, server), message=_message(priority="P0", payload=payload))
    (document,) = service.documents
    assert len(server.received[0].body) <= MAX_RECORD_BYTES
    assert document["truncated"] is True
    assert len(document["data"]["mentions"]) < len(mentions)
    assert document["vibrate"] == [300, 100, 300, 100, 300]
    assert (document["priority"], document["silent"], document["require_interaction"]) == ("P0", False, True)


def test_oversized_content_is_shortened_and_still_decrypts_as_json_under_4_kib(push_service, provider):
    service, server = push_service
    long_text = "Quarterly results: " + "revenue grew in every region 📈 " * 400
    message = _message(
        priority="P3",
        body=long_text,
        payload={"type": "notification", "seq": 9, "data": {"id": 3, "title": "Q3", "content": long_text}},
    )
    result = provider.send(target=_target(service, server), message=message)
    assert result.status_code == 201
    (document,) = service.documents
    assert len(server.received[0].body) <= MAX_RECORD_BYTES
    assert document["truncated"] is True
    assert document["seq"] == 9
    assert document["data"]["id"] == 3
    assert document["data"]["content"].startswith("Quarterly results: revenue grew")
    assert document["data"]["content"].endswith("…")


def test_batch_too_big_keeps_its_count_and_newest_item(push_service, provider):
    service, server = push_service
    items = [
        {"type": "notification", "seq": seq, "data": {"id": seq, "title": f"News {seq}", "content": "x" * 30}}
        for seq in range(1, 200)
    ]
    payload = {"type": "batch", "count": len(items), "items": items, "last": items[-1]}
    provider.send(target=_target(service, server), message=_message(priority="P3", payload=payload))
    (document,) = service.documents
    assert document["count"] == 199
    assert document["last"]["seq"] == 199
    assert 0 < len(document["items"]) < 199
    assert document["items"][-1]["seq"] == 199


def test_gone_subscription_is_a_permanent_error(push_service, provider):
    service, server = push_service
    server.respond = lambda request: Reply(410, b"")
    with pytest.raises(PushError) as caught:
        provider.send(target=_target(service, server), message=_message())
    assert caught.value.permanent
    assert caught.value.status_code == 410


def test_unavailable_push_service_is_retried_after_its_retry_after(push_service, provider):
    service, server = push_service
    server.respond = lambda request: Reply(503, b"", headers={"Retry-After": "120"})
    with pytest.raises(PushError) as caught:
        provider.send(target=_target(service, server), message=_message())
    assert not caught.value.permanent
    assert caught.value.retryable
    assert caught.value.retry_after_seconds == 120


def test_rejected_message_keeps_the_subscription_and_is_not_retried(push_service, provider):
    service, server = push_service
    server.respond = lambda request: Reply(413, b"")
    with pytest.raises(PushError) as caught:
        provider.send(target=_target(service, server), message=_message())
    assert not caught.value.permanent
    assert not caught.value.retryable


def test_timeout_is_a_temporary_error(push_service, provider, settings):
    service, server = push_service
    settings.IMS_VAPID_PRIVATE_KEY = vapid.private_key_b64url(VAPID_KEY)
    settings.IMS_PUSH_TIMEOUT_SECONDS = 0.2
    slow_provider = get_provider("webpush")

    def slow(request: Received) -> Reply:
        time.sleep(1)
        return Reply(201)

    server.respond = slow
    with pytest.raises(PushError) as caught:
        slow_provider.send(target=_target(service, server), message=_message())
    assert caught.value.retryable
    assert not caught.value.permanent


def test_subscription_with_malformed_keys_is_a_permanent_error(push_service, provider):
    _, server = push_service
    target = PushTarget(
        kind="webpush", address=f"{server.url}/push/x", keys={"p256dh": "not-a-key", "auth": "x"}
    )
    with pytest.raises(PushError) as caught:
        provider.send(target=target, message=_message())
    assert caught.value.permanent
    assert server.received == []


def test_vapid_token_is_reused_for_the_same_push_service(push_service, provider):
    service, server = push_service
    provider.send(target=_target(service, server), message=_message())
    provider.send(target=_target(service, server, "/push/sub-2"), message=_message())
    first, second = (request.headers["authorization"] for request in server.received)
    assert first == second


def test_without_a_key_web_push_is_off_and_says_what_is_missing():
    provider = get_provider("webpush")
    assert not provider.is_configured()
    assert "IMS_VAPID_PRIVATE_KEY" in provider.describe_configuration()
    with pytest.raises(PushError) as caught:
        provider.send(target=PushTarget(kind="webpush", address="http://127.0.0.1:9/x"), message=_message())
    assert not caught.value.retryable
    assert not caught.value.permanent


def test_a_public_key_that_does_not_match_turns_web_push_off(settings):
    settings.IMS_VAPID_PRIVATE_KEY = vapid.private_key_b64url(VAPID_KEY)
    settings.IMS_VAPID_PUBLIC_KEY = vapid.public_key_b64url(vapid.generate_private_key())
    provider = get_provider("webpush")
    assert not provider.is_configured()
    assert "IMS_VAPID_PUBLIC_KEY" in provider.describe_configuration()


def test_the_private_key_never_appears_in_the_description(settings, provider):
    assert provider.is_configured()
    assert settings.IMS_VAPID_PRIVATE_KEY not in provider.describe_configuration()


def test_an_endpoint_that_is_not_a_url_is_a_permanent_error(provider):
    target = PushTarget(kind="webpush", address="not a url", keys=PushService().keys)
    with pytest.raises(PushError) as caught:
        provider.send(target=target, message=_message())
    assert caught.value.permanent


def test_a_redirect_is_not_followed_and_fails_only_this_push(push_service, provider):
    service, server = push_service
    with http_server(lambda request: Reply(200, b"inside")) as inside:
        server.respond = lambda request: Reply(307, headers={"Location": f"{inside.url}/admin/"})
        with pytest.raises(PushError) as caught:
            provider.send(target=_target(service, server), message=_message())
        assert inside.received == []
    assert (caught.value.status_code, caught.value.permanent, caught.value.retryable) == (307, False, False)
    assert "not followed" in caught.value.message


def test_an_endpoint_the_policy_refuses_at_send_time_is_never_contacted(provider, settings):
    with listener() as inside:
        target = PushTarget(
            kind="webpush", address=f"https://localhost:{inside.port}/push/1", keys=PushService().keys
        )
        settings.IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS = False  # localhost stays on the host list
        with pytest.raises(PushError) as caught:
            get_provider("webpush").send(target=target, message=_message())
        assert not inside.contacted()
        socket.create_connection(("127.0.0.1", inside.port)).close()
        assert inside.contacted(), "the listener sees a connection when there is one"
    assert (caught.value.permanent, caught.value.reason) == (True, Reason.ENDPOINT_NOT_ALLOWED)
    assert "public addresses only" in caught.value.message


def test_tls_to_the_checked_address_still_names_the_host_and_verifies_its_certificate(
    provider, settings, tmp_path, monkeypatch
):
    tls = tls_files(tmp_path, "localhost")  # no address in it: only the name can verify
    settings.IMS_PUSH_CA_FILE = str(tls.ca_file)
    # Without our CA: IMS_PUSH_CA_FILE must win over requests' own variable.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    service = PushService()
    with http_server(service, tls=tls) as server:
        port = server.url.rsplit(":", 1)[1]
        server.url = f"https://localhost:{port}"  # the VAPID audience the service expects
        service.server = server
        result = get_provider("webpush").send(target=_target(service, server), message=_message())
    assert result.status_code == 201
    assert server.server_names == ["localhost"]
    assert server.received[0].headers["host"] == f"localhost:{port}"
    assert service.documents[0]["seq"] == 42
