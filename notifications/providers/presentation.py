"""How each channel presents a push of each priority: the one table every provider reads.

PROTOCOL.md ("Priorities and merging") gives the priorities: P0 a forced push that wakes the
screen, P1 real time with sound and vibration, P2 real time but silent, P3 merged (and
silent). "Silent" means shown without sound or vibration, never hidden: every priority is a
visible notification on every channel. docs/push-providers.md shows this table as readers
need it, and the provider tests hold each provider's request to that page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from notifications.providers.base import Priority


@dataclass(frozen=True, kw_only=True)
class Presentation:
    """One priority, as each channel shows it. Values are spelled as each service spells them."""

    # Shown without sound or vibration.
    silent: bool
    # Web Push: the RFC 8030 Urgency header (PROTOCOL.md), and the options the service worker
    # passes to showNotification(), carried in the push document.
    urgency: Literal["very-low", "low", "normal", "high"]
    require_interaction: bool
    renotify: bool
    vibrate_ms: tuple[int, ...]
    # APNs: Apple allows priority 10 only for a push that alerts, sounds or badges, and asks
    # for 5 for one that need not arrive at once.
    apns_priority: Literal["10", "5"]
    # `critical` would bypass the mute switch but needs an entitlement Apple grants on
    # request; `time-sensitive` breaks through Focus with only the app's capability.
    interruption_level: Literal["passive", "active", "time-sensitive"]
    # FCM on Android: delivery priority (HIGH wakes a dozing device), the notification's
    # priority (Android 7 and older), and the channel that decides it on Android 8 and newer.
    android_priority: Literal["HIGH", "NORMAL"]
    notification_priority: Literal["PRIORITY_MAX", "PRIORITY_HIGH", "PRIORITY_LOW", "PRIORITY_MIN"]
    channel_id: str


PRESENTATIONS: dict[Priority, Presentation] = {
    "P0": Presentation(
        silent=False,
        urgency="high",
        require_interaction=True,
        # A later push of the same P0 replaces the earlier one (same tag) and must alert again.
        renotify=True,
        vibrate_ms=(300, 100, 300, 100, 300),
        apns_priority="10",
        interruption_level="time-sensitive",
        android_priority="HIGH",
        notification_priority="PRIORITY_MAX",
        channel_id="ims_p0",
    ),
    "P1": Presentation(
        silent=False,
        urgency="normal",
        require_interaction=False,
        renotify=False,
        vibrate_ms=(200, 100, 200),
        apns_priority="10",
        interruption_level="active",
        android_priority="HIGH",
        notification_priority="PRIORITY_HIGH",
        channel_id="ims_p1",
    ),
    "P2": Presentation(
        silent=True,
        urgency="normal",
        require_interaction=False,
        renotify=False,
        vibrate_ms=(),
        apns_priority="5",
        interruption_level="passive",
        android_priority="NORMAL",
        notification_priority="PRIORITY_LOW",
        channel_id="ims_p2",
    ),
    "P3": Presentation(
        silent=True,
        urgency="low",
        require_interaction=False,
        renotify=False,
        vibrate_ms=(),
        apns_priority="5",
        interruption_level="passive",
        android_priority="NORMAL",
        # Below P2: merged news may wait in the shade without a status-bar icon.
        notification_priority="PRIORITY_MIN",
        channel_id="ims_p3",
    ),
}
