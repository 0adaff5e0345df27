"""Reads of presence: a user is online while one of its connections is fresh."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from messaging.models import Connection, ConversationMember


def connection_stale_before(now: dt.datetime | None = None) -> dt.datetime:
    """Connections last seen at or before this moment belong to dead peers: two heartbeats
    without a sign of life (power loss never runs disconnect())."""
    return (now or timezone.now()) - dt.timedelta(seconds=2 * settings.IMS_HEARTBEAT_SECONDS)


def user_is_online(*, user_id: int, now: dt.datetime | None = None) -> bool:
    return Connection.objects.filter(user_id=user_id, last_seen_at__gt=connection_stale_before(now)).exists()


def online_user_ids(*, user_ids: list[int]) -> set[int]:
    fresh = Connection.objects.filter(user_id__in=user_ids, last_seen_at__gt=connection_stale_before())
    return set(fresh.values_list("user_id", flat=True))


def presence_peers(*, user_id: int) -> list[int]:
    """Users who share a conversation with this one, skipping big groups (presence there
    would cost a fan-out to every member on every connect)."""
    small = (
        ConversationMember.objects.filter(conversation__memberships__user_id=user_id)
        .values("conversation_id")
        .annotate(size=Count("id"))
        .filter(size__lte=settings.IMS_PRESENCE_MAX_GROUP_SIZE)
        .values("conversation_id")
    )
    peers = ConversationMember.objects.filter(conversation_id__in=small).exclude(user_id=user_id)
    return sorted(set(peers.values_list("user_id", flat=True)))
