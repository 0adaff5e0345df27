"""A user's push preferences: time zone, quiet hours, muted conversations."""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from typing import Any

from django.db import transaction

from messaging.errors import BadRequest, Forbidden, NotFound
from messaging.models import Conversation, ConversationMember, User
from notifications.models import ConversationMute, PushPreference
from notifications.services.devices import MAX_ID

_UNSET: Any = object()


@functools.cache
def known_time_zones() -> frozenset[str]:
    """The IANA zones this machine knows (a walk of the tzdata folders: once, not per call)."""
    return frozenset(zoneinfo.available_timezones())


# HH:MM, 00:00 to 23:59 (time.fromisoformat alone also reads "T1230").
QUIET_TIME_PATTERN = "^([01][0-9]|2[0-3]):[0-5][0-9]$"
_QUIET_TIME = re.compile(QUIET_TIME_PATTERN)


def _parse_time(value: Any, *, name: str) -> dt.time:
    if not isinstance(value, str) or not _QUIET_TIME.fullmatch(value):
        raise BadRequest(f"`quiet_hours.{name}` must be a time as HH:MM", field="quiet_hours")
    return dt.time.fromisoformat(value)


def _quiet_hours(value: Any) -> tuple[dt.time | None, dt.time | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict) or set(value) != {"start", "end"}:
        raise BadRequest(
            '`quiet_hours` must be {"start": "HH:MM", "end": "HH:MM"} or null', field="quiet_hours"
        )
    start, end = _parse_time(value["start"], name="start"), _parse_time(value["end"], name="end")
    if start == end:
        raise BadRequest("`quiet_hours` must not start and end at the same time", field="quiet_hours")
    return start, end


def preferences_update(*, user_id: int, time_zone: Any = _UNSET, quiet_hours: Any = _UNSET) -> None:
    """Change what is given; leave the rest. Bad input raises BadRequest, changes nothing."""
    if time_zone is not _UNSET and (not isinstance(time_zone, str) or time_zone not in known_time_zones()):
        raise BadRequest("`time_zone` must be an IANA time zone such as Europe/Berlin", field="time_zone")
    quiet = _quiet_hours(quiet_hours) if quiet_hours is not _UNSET else None
    with transaction.atomic():
        if time_zone is not _UNSET:
            User.objects.filter(pk=user_id).update(time_zone=time_zone)
        if quiet is not None:
            PushPreference.objects.update_or_create(
                user_id=user_id, defaults={"quiet_start": quiet[0], "quiet_end": quiet[1]}
            )


def _require_member(*, user_id: int, conversation_id: int) -> None:
    if conversation_id > MAX_ID or not Conversation.objects.filter(pk=conversation_id).exists():
        raise NotFound("no such conversation")
    if not ConversationMember.objects.filter(conversation_id=conversation_id, user_id=user_id).exists():
        raise Forbidden("you are not a member of this conversation")


def conversation_mute(*, user_id: int, conversation_id: int) -> None:
    """No third-party push for this conversation's messages to this user (members only)."""
    _require_member(user_id=user_id, conversation_id=conversation_id)
    ConversationMute.objects.get_or_create(user_id=user_id, conversation_id=conversation_id)


def conversation_unmute(*, user_id: int, conversation_id: int) -> None:
    _require_member(user_id=user_id, conversation_id=conversation_id)
    ConversationMute.objects.filter(user_id=user_id, conversation_id=conversation_id).delete()
