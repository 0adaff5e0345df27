"""Presence from heartbeats: recording connections and telling peers who came and went."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from messaging import delivery, frames
from messaging.models import Connection
from messaging.selectors.presence import connection_stale_before, presence_peers, user_is_online


def connection_open(*, user_id: int, channel_name: str) -> list[int]:
    """Record a new connection. Returns the peers to tell, if the user just came online."""
    now = timezone.now()
    was_online = user_is_online(user_id=user_id, now=now)
    Connection.objects.update_or_create(
        channel_name=channel_name, defaults={"user_id": user_id, "last_seen_at": now}
    )
    return [] if was_online else presence_peers(user_id=user_id)


def connection_heartbeat(*, channel_name: str) -> None:
    Connection.objects.filter(channel_name=channel_name).update(last_seen_at=timezone.now())


def connection_close(*, user_id: int, channel_name: str) -> list[int]:
    """Forget a connection. Returns the peers to tell, if that was the user's last one."""
    Connection.objects.filter(channel_name=channel_name).delete()
    return [] if user_is_online(user_id=user_id) else presence_peers(user_id=user_id)


def connections_reap_stale() -> int:
    """Drop connections silent for two heartbeats (a server died without disconnect()) and
    tell the peers of users who went offline with them. Returns users gone offline."""
    now = timezone.now()
    with transaction.atomic():
        stale = Connection.objects.filter(last_seen_at__lte=connection_stale_before(now))
        user_ids = set(stale.values_list("user_id", flat=True))
        stale.delete()
        gone = [uid for uid in sorted(user_ids) if not user_is_online(user_id=uid, now=now)]
        delivery.publish_frames_on_commit(
            (peer, frames.presence(user_id=uid, online=False))
            for uid in gone
            for peer in presence_peers(user_id=uid)
        )
    return len(gone)
