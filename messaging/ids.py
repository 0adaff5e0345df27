"""Time-ordered message ids made in process, without a database round trip."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def new_msg_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits.

    Ids made in one process are strictly increasing, also within one millisecond, so
    ordering by id is ordering by creation time; across processes they are ordered to
    the millisecond.
    """
    global _last_ms, _last_rand
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > _last_ms:
            _last_ms = now_ms
            # Keep the top bit clear so up to 2**73 increments fit in the same ms.
            _last_rand = int.from_bytes(os.urandom(10), "big") & ((1 << 73) - 1)
        else:
            _last_rand += 1
        unix_ms, rand = _last_ms, _last_rand
    rand_a = (rand >> 62) & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    value = (unix_ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value)
