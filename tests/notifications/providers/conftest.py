"""Every provider test starts from no provider settings at all, a private var dir, and
providers built afresh, whatever the environment of the test run holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifications.providers import reset_providers

PROVIDER_SETTINGS = (
    "IMS_PUSH_CA_FILE",
    "IMS_VAPID_PRIVATE_KEY",
    "IMS_VAPID_PUBLIC_KEY",
    "IMS_FCM_SERVICE_ACCOUNT_FILE",
    "IMS_APNS_KEY_FILE",
    "IMS_APNS_KEY_ID",
    "IMS_APNS_TEAM_ID",
    "IMS_APNS_TOPIC",
    "IMS_SMS_BASE_URL",
    "IMS_SMS_API_KEY",
    "IMS_SMS_SENDER",
)


@pytest.fixture(autouse=True)
def no_provider_settings(settings, tmp_path: Path) -> None:
    for name in PROVIDER_SETTINGS:
        setattr(settings, name, "")
    settings.VAR_DIR = tmp_path / "var"
    settings.IMS_VAPID_SUBJECT = "mailto:ops@example.com"
    settings.IMS_SMS_PRIORITIES = ["P0"]
    # The endpoint policy as deployed; tests that push to a local server allow it themselves.
    settings.IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS = False
    # A dead local server must fail a test in seconds, not after the 10 s default.
    settings.IMS_PUSH_TIMEOUT_SECONDS = 3
    reset_providers()
