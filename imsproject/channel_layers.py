"""Channel layer configurations (settings.CHANNEL_LAYERS entries)."""

from __future__ import annotations

from typing import Any


def redis_channel_layer(url: str, *, max_connections: int) -> dict[str, Any]:
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": url,
                    # redis-py 8 defaults to a 5 s read timeout, which kills the layer's
                    # blocking receive on an idle socket (channels_redis#422).
                    "socket_timeout": None,
                    # redis-py 8.1 caps an async pool at 100; a reconnect storm needs more.
                    "max_connections": max_connections,
                }
            ],
            "capacity": 1000,
            "expiry": 60,
            "group_expiry": 86400,
        },
    }
