"""Presence from heartbeats: recording connections and telling peers who came and went."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from messaging import delivery, frames
from messaging.models import Connection
from messaging.selectors.presence import (
    connection_stale_before,
    online_user_ids,
    presence_peers,
    presence_peers_many,
    user_is_online,
)


def connection_open(*, user_id: int, channel_name: str) -> list[int]:
    """Record a new connection. Returns the peers to tell, if the user just came online."""
    now = timezone.now()
    was_online = user_is_online(user_id=user_id, now=now)
    Connection.objects.update_or_create(
        channel_name=channel_name, defaults={"user_id": user_id, "last_seen_at": now}
    )
    return [] if was_online else presence_peers(user_id=user_id)


def connections_open(*, opens: list[tuple[int, str]]) -> list[list[int]]:
    """connection_open for many (user_id, channel_name) at once, in a fixed number of
    statements: a reconnect storm records thousands of connections a second."""
    now = timezone.now()
    user_ids = sorted({user_id for user_id, _ in opens})
    were_online = online_user_ids(user_ids=user_ids)
    Connection.objects.bulk_create(
        [Connection(user_id=user_id, channel_name=channel, last_seen_at=now) for user_id, channel in opens],
        update_conflicts=True,
        unique_fields=["channel_name"],
        update_fields=["user_id", "last_seen_at"],
    )
    peers = presence_peers_many(user_ids=[uid for uid in user_ids if uid not in were_online])
    return [peers.pop(user_id, []) for user_id, _ in opens]  # each user's peers told once


def connections_close(*, closes: list[tuple[int, str]]) -> list[list[int]]:
    """connection_close for many (user_id, channel_name) at once."""
    Connection.objects.filter(channel_name__in=[channel for _, channel in closes]).delete()
    user_ids = sorted({user_id for user_id, _ in closes})
    still_online = online_user_ids(user_ids=user_ids)
    peers = presence_peers_many(user_ids=[uid for uid in user_ids if uid not in still_online])
    return [peers.pop(user_id, []) for user_id, _ in closes]


def connections_heartbeat(*, channel_names: list[str]) -> None:
    """The connections are alive now: one UPDATE for many (20,000 connections beat about
    670 times a second)."""
    Connection.objects.filter(channel_name__in=channel_names).update(last_seen_at=timezone.now())


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
