"""Fixtures of the notification tests: push providers pointed at real local servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from messaging.models import User
from notifications import vapid
from notifications.models import Device
from notifications.providers import reset_providers
from notifications.services.devices import device_register
from tests.notifications.providers.servers import LocalServer, Received, Reply, http_server
from tests.notifications.providers.test_webpush import VAPID_KEY, PushService


@pytest.fixture
def push_settings(settings, tmp_path: Path, local_push_endpoints) -> None:
    """Web Push configured with a test VAPID key, nothing else, pushing to local servers;
    providers built afresh."""
    for name in ("IMS_PUSH_CA_FILE", "IMS_FCM_SERVICE_ACCOUNT_FILE", "IMS_APNS_KEY_FILE", "IMS_SMS_BASE_URL"):
        setattr(settings, name, "")
    settings.VAR_DIR = tmp_path / "var"
    settings.IMS_VAPID_PRIVATE_KEY = vapid.private_key_b64url(VAPID_KEY)
    settings.IMS_VAPID_PUBLIC_KEY = ""
    settings.IMS_VAPID_SUBJECT = "mailto:ops@example.com"
    settings.IMS_PUSH_TIMEOUT_SECONDS = 3
    settings.IMS_PUSH_GRACE_SECONDS = 10
    settings.IMS_P0_ESCALATE_SECONDS = 60
    reset_providers()
    yield
    reset_providers()


@pytest.fixture
def push_service() -> Iterator[PushService]:
    """A local Web Push service that checks VAPID and decrypts every push (RFC 8291)."""
    service = PushService()
    with http_server(service) as server:
        service.server = server
        yield service


@pytest.fixture
def browser(push_service: PushService) -> Callable[..., Device]:
    """Registers a browser subscription on the local push service for a user."""

    def register(user: User, *, path: str | None = None) -> Device:
        endpoint = f"{push_service.server.url}{path or f'/push/{user.username}'}"
        return device_register(
            user_id=user.pk, kind="webpush", subscription={"endpoint": endpoint, "keys": push_service.keys}
        )

    return register


@pytest.fixture
def sms_gateway(settings) -> Iterator[LocalServer]:
    """A local SMS gateway, configured for P0."""

    def accept(request: Received) -> Reply:
        return Reply(201, {"id": f"sms-{len(server.received)}"})

    with http_server(accept) as server:
        settings.IMS_SMS_BASE_URL = server.url
        settings.IMS_SMS_API_KEY = "test-sms-key"
        settings.IMS_SMS_SENDER = "IMS"
        settings.IMS_SMS_PRIORITIES = ["P0"]
        reset_providers()
        yield server


@pytest.fixture
def published_frames(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, dict]]:
    """(user_id, event) pairs handed to the channel layer after commit, recorded instead of
    sent (the same seam as tests/messaging's `published`)."""
    from messaging import delivery

    events: list[tuple[int, dict]] = []

    async def record(batch):
        events.extend(batch)

    monkeypatch.setattr(delivery, "publish", record)
    return events
