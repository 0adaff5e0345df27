"""Third-party push providers (Web Push, FCM, APNs, SMS) behind one interface (base.Provider).

Dispatch code imports from here: `get_provider(kind)`, `configured_providers()`, and the
values `PushTarget`, `PushMessage`, `PushResult`, `PushError` (with its `Reason`).
"""

from __future__ import annotations

from notifications.providers.base import PushError, PushMessage, PushResult, PushTarget, Reason
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
    "Reason",
    "all_providers",
    "configured_providers",
    "get_provider",
    "reset_providers",
]
