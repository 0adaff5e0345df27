"""Third-party push providers (Web Push, FCM, APNs, SMS) behind one interface (base.Provider).

Dispatch code imports from here: `get_provider(kind)`, `configured_providers()`, and the
values `PushTarget`, `PushMessage`, `PushResult`, `PushError`.
"""

from __future__ import annotations

from notifications.providers.base import PushError, PushMessage, PushResult, PushTarget
from notifications.providers.registry import (
    all_providers,
    configured_providers,
    get_provider,
    reset_providers,
)

__all__ = [
    "PushError",
    "PushMessage",
    "PushResult",
    "PushTarget",
    "all_providers",
    "configured_providers",
    "get_provider",
    "reset_providers",
]
