"""Which provider serves each target kind: built from settings on first use, one per process.

Providers hold open connections and cached tokens, so they live as long as the (Celery
worker) process. They are built lazily, after a worker forks, never at import; any change
of a setting (pytest-django's `settings` fixture, override_settings) drops them, so the
next call builds them again from the new settings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.test.signals import setting_changed

from notifications.providers.apns import ApnsProvider
from notifications.providers.base import Provider
from notifications.providers.fcm import FcmProvider
from notifications.providers.sms import SmsProvider
from notifications.providers.webpush import WebPushProvider

# In the order dispatch should try them: the users are in browsers (DESIGN.md).
PROVIDER_CLASSES: dict[str, Callable[[], Provider]] = {
    "webpush": WebPushProvider,
    "fcm": FcmProvider,
    "apns": ApnsProvider,
    "sms": SmsProvider,
}

_providers: dict[str, Provider] = {}
_lock = threading.Lock()


class UnknownProviderKind(KeyError):
    pass


def get_provider(kind: str) -> Provider:
    """The provider for a target kind (configured or not: ask `is_configured()`)."""
    with _lock:
        provider = _providers.get(kind)
        if provider is None:
            try:
                factory = PROVIDER_CLASSES[kind]
            except KeyError:
                raise UnknownProviderKind(kind) from None
            provider = _providers[kind] = factory()
        return provider


def all_providers() -> list[Provider]:
    return [get_provider(kind) for kind in PROVIDER_CLASSES]


def configured_providers() -> list[Provider]:
    return [provider for provider in all_providers() if provider.is_configured()]


def reset_providers() -> None:
    """Close and forget every provider; the next call builds them from the settings of that moment."""
    with _lock:
        dropped = list(_providers.values())
        _providers.clear()
    for provider in dropped:
        provider.close()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("IMS_") or setting == "VAR_DIR":
        reset_providers()


setting_changed.connect(_on_setting_changed, dispatch_uid="notifications.providers.registry")
