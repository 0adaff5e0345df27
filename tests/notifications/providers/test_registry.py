"""The registry: one provider per kind, built from the settings of the moment."""

from __future__ import annotations

import pytest

from notifications import vapid
from notifications.providers import configured_providers, get_provider
from notifications.providers.base import Provider
from notifications.providers.registry import UnknownProviderKind, all_providers


def test_every_kind_has_a_provider_that_implements_the_interface():
    providers = all_providers()
    assert [provider.kind for provider in providers] == ["webpush", "fcm", "apns", "sms"]
    assert all(isinstance(provider, Provider) for provider in providers)


def test_the_same_provider_serves_every_call():
    assert get_provider("fcm") is get_provider("fcm")


def test_nothing_is_configured_without_settings():
    assert configured_providers() == []
    for provider in all_providers():
        assert not provider.is_configured()
        assert " is off: " in provider.describe_configuration()


def test_a_settings_change_builds_a_fresh_provider(settings):
    before = get_provider("sms")
    settings.IMS_SMS_BASE_URL = "https://sms.example.com"
    settings.IMS_SMS_API_KEY = "k"
    settings.IMS_SMS_SENDER = "IMS"
    after = get_provider("sms")
    assert after is not before
    assert after.is_configured()
    assert [provider.kind for provider in configured_providers()] == ["sms"]


def test_configured_providers_keep_the_dispatch_order(settings):
    settings.IMS_SMS_BASE_URL = "https://sms.example.com"
    settings.IMS_SMS_API_KEY = "k"
    settings.IMS_SMS_SENDER = "IMS"
    settings.IMS_VAPID_PRIVATE_KEY = vapid.private_key_b64url(vapid.generate_private_key())
    assert [provider.kind for provider in configured_providers()] == ["webpush", "sms"]


def test_an_unknown_kind_is_an_error():
    with pytest.raises(UnknownProviderKind):
        get_provider("pager")
