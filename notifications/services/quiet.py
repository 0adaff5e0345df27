"""Quiet hours: whether a moment falls inside a user's quiet hours, and when they end."""

from __future__ import annotations

import datetime as dt
import zoneinfo


def quiet_hours_end(
    *, now: dt.datetime, time_zone: str, start: dt.time | None, end: dt.time | None
) -> dt.datetime | None:
    """The end (aware, UTC) of the quiet hours `now` falls in, or None outside them.

    Times are wall-clock times in the user's zone; an `end` before `start` means the next
    day (22:00 to 07:00).
    """
    if start is None or end is None or start == end:
        return None
    zone: dt.tzinfo
    try:
        zone = zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= clock < end
        end_day = local.date()
    else:
        inside = clock >= start or clock < end
        end_day = local.date() + dt.timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    return dt.datetime.combine(end_day, end, tzinfo=zone).astimezone(dt.UTC)
