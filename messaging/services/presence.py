"""Presence from heartbeats: a user is online while one of its connections is fresh."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from messaging import delivery, frames
from messaging.models import Connection, ConversationMember


def _stale_before(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(seconds=2 * settings.IMS_HEARTBEAT_SECONDS)


def _is_online(user_id: int, now: dt.datetime) -> bool:
    return Connection.objects.filter(user_id=user_id, last_seen_at__gt=_stale_before(now)).exists()


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


def connection_open(*, user_id: int, channel_name: str) -> list[int]:
    """Record a new connection. Returns the peers to tell, if the user just came online."""
    now = timezone.now()
    was_online = _is_online(user_id, now)
    Connection.objects.update_or_create(
        channel_name=channel_name, defaults={"user_id": user_id, "last_seen_at": now}
    )
    return [] if was_online else presence_peers(user_id=user_id)


def connection_heartbeat(*, channel_name: str) -> None:
    Connection.objects.filter(channel_name=channel_name).update(last_seen_at=timezone.now())


def connection_close(*, user_id: int, channel_name: str) -> list[int]:
    """Forget a connection. Returns the peers to tell, if that was the user's last one."""
    Connection.objects.filter(channel_name=channel_name).delete()
    return [] if _is_online(user_id, timezone.now()) else presence_peers(user_id=user_id)


def connections_reap_stale() -> int:
    """Drop connections silent for two heartbeats (a server died without disconnect()) and
    tell the peers of users who went offline with them. Returns users gone offline."""
    now = timezone.now()
    with transaction.atomic():
        stale = Connection.objects.filter(last_seen_at__lte=_stale_before(now))
        user_ids = set(stale.values_list("user_id", flat=True))
        stale.delete()
        gone = [uid for uid in sorted(user_ids) if not _is_online(uid, now)]
        delivery.publish_frames_on_commit(
            (peer, frames.presence(user_id=uid, online=False))
            for uid in gone
            for peer in presence_peers(user_id=uid)
        )
    return len(gone)
