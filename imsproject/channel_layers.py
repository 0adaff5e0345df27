"""Channel layer configurations (settings.CHANNEL_LAYERS entries)."""

from __future__ import annotations

from typing import Any

FANOUT_LAYER = "imsproject.fanout_layer.FanoutChannelLayer"
# Events queued for one consumer that has not taken them yet; past it they are dropped
# (hints only: the consumer's gap fill and the stream poll read the database).
CAPACITY = 1000


def redis_channel_layer(url: str, *, max_connections: int) -> dict[str, Any]:
    """One pub/sub subscription per server process on `url` (imsproject.fanout_layer)."""
    return {
        "BACKEND": FANOUT_LAYER,
        "CONFIG": {"hosts": url, "capacity": CAPACITY, "max_connections": max_connections},
    }


def local_channel_layer() -> dict[str, Any]:
    """The embedded default: one server process, nothing shared with others."""
    return {"BACKEND": FANOUT_LAYER, "CONFIG": {"capacity": CAPACITY}}
