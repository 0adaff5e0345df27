"""Ids: the range every integer id lies in, and time-ordered message ids made in process,
without a database round trip."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from messaging.errors import BadRequest

# Ids (and seqs) are 64-bit columns. A bigger integer is the caller's mistake, not a
# database error: SQLite raised OverflowError (a 500), PostgreSQL a DataError.
MAX_ID = 2**63 - 1


def is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def require_ids(values: Iterable[Any], *, field: str) -> None:
    """BadRequest unless every value is an id: an integer from 1 to MAX_ID."""
    if not all(is_id(value) for value in values):
        raise BadRequest(f"`{field}` takes ids: integers from 1 to {MAX_ID}", field=field)


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
