"""System checks of the notifications app (`manage.py check`, `check --deploy`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def private_push_endpoints_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Private Web Push endpoints are for development and tests; in production they let any
    user point the push worker at the internal network."""
    if not settings.IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS:
        return []
    return [
        checks.Warning(
            "IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS is on: any user may register a Web Push "
            "endpoint on plain http or on a private, loopback or link-local address, and the "
            "push worker will send to it.",
            hint="Turn it off in production unless a push relay inside the network needs it, "
            "and then keep IMS_WEBPUSH_ALLOWED_HOSTS to the push services and that relay.",
            id="notifications.W001",
        )
    ]
