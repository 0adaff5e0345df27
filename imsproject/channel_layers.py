"""Channel layer configurations (settings.CHANNEL_LAYERS entries)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

FANOUT_LAYER = "imsproject.fanout_layer.FanoutChannelLayer"
# Events queued for one consumer that has not taken them yet; past it they are dropped
# (hints only: the consumer's gap fill and the stream poll read the database).
CAPACITY = 1000


def redis_channel_layer(url: str, *, max_connections: int) -> dict[str, Any]:
    """One pub/sub subscription per server process on `url` (imsproject.fanout_layer).

    Redis pub/sub channels ignore the database number: two deployments (or two test runs)
    on databases 3 and 8 of one server would hear each other's events for user.<id>. The
    prefix carries the database number, so each database is its own namespace.
    """
    database = urlparse(url).path.strip("/") or "0"
    return {
        "BACKEND": FANOUT_LAYER,
        "CONFIG": {
            "hosts": url,
            "prefix": f"ims:{database}",
            "capacity": CAPACITY,
            "max_connections": max_connections,
        },
    }


def local_channel_layer() -> dict[str, Any]:
    """The embedded default: one server process, nothing shared with others."""
    return {"BACKEND": FANOUT_LAYER, "CONFIG": {"capacity": CAPACITY}}
