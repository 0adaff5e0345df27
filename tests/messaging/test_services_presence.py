"""Presence from heartbeats: who is told when a user comes online or goes offline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from messaging import delivery, frames
from messaging.models import Connection, User
from messaging.services.conversations import conversation_create_group, conversation_get_or_create_direct
from messaging.services.presence import (
    connection_close,
    connection_open,
    connections_heartbeat,
    connections_reap_stale,
    presence_peers,
)
from tests.factories import UserFactory


@pytest.fixture
def peers_of_alice(alice, bob, carol) -> list[User]:
    """Bob shares a direct conversation with Alice, Carol a group; Dave shares nothing."""
    UserFactory(username="dave")
    conversation_get_or_create_direct(user_id=alice.pk, peer_id=bob.pk)
    conversation_create_group(creator_id=carol.pk, title="T", member_ids=[alice.pk])
    return [bob, carol]


def stale_time() -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=2 * settings.IMS_HEARTBEAT_SECONDS + 1)


def ids(users: Iterable[User]) -> list[int]:
    return sorted(user.pk for user in users)


@pytest.mark.django_db
def test_peers_are_the_users_sharing_a_conversation(alice, peers_of_alice):
    assert presence_peers(user_id=alice.pk) == ids(peers_of_alice)


@pytest.mark.django_db
@override_settings(IMS_PRESENCE_MAX_GROUP_SIZE=2)
def test_members_of_big_groups_are_not_peers(alice, bob, carol):
    conversation_get_or_create_direct(user_id=alice.pk, peer_id=bob.pk)
    conversation_create_group(creator_id=alice.pk, title="big", member_ids=[bob.pk, carol.pk])

    assert presence_peers(user_id=alice.pk) == [bob.pk]


@pytest.mark.django_db
def test_the_first_connection_tells_the_peers_and_the_second_does_not(alice, peers_of_alice):
    assert connection_open(user_id=alice.pk, channel_name="phone") == ids(peers_of_alice)
    assert connection_open(user_id=alice.pk, channel_name="laptop") == []

    assert Connection.objects.filter(user=alice).count() == 2


@pytest.mark.django_db
def test_a_stale_connection_does_not_count_as_online(alice, peers_of_alice):
    Connection.objects.create(user=alice, channel_name="dead", last_seen_at=stale_time())

    assert connection_open(user_id=alice.pk, channel_name="fresh") == ids(peers_of_alice)


@pytest.mark.django_db
def test_only_closing_the_last_connection_tells_the_peers(alice, peers_of_alice):
    connection_open(user_id=alice.pk, channel_name="phone")
    connection_open(user_id=alice.pk, channel_name="laptop")

    assert connection_close(user_id=alice.pk, channel_name="phone") == []
    assert connection_close(user_id=alice.pk, channel_name="laptop") == ids(peers_of_alice)
    assert not Connection.objects.exists()


@pytest.mark.django_db
def test_reopening_a_known_channel_name_keeps_one_row(alice, bob):
    connection_open(user_id=alice.pk, channel_name="c")
    connection_open(user_id=alice.pk, channel_name="c")

    assert Connection.objects.count() == 1


@pytest.mark.django_db
def test_a_heartbeat_keeps_a_connection_fresh(alice, peers_of_alice):
    connection_open(user_id=alice.pk, channel_name="phone")
    Connection.objects.update(last_seen_at=stale_time())

    connections_heartbeat(channel_names=["phone"])

    assert connection_open(user_id=alice.pk, channel_name="laptop") == []


@pytest.mark.django_db
def test_heartbeats_of_many_connections_refresh_exactly_those(alice, bob):
    for user, channel in ((alice, "alice-phone"), (bob, "bob-phone"), (bob, "bob-laptop")):
        connection_open(user_id=user.pk, channel_name=channel)
    Connection.objects.update(last_seen_at=stale_time())

    connections_heartbeat(channel_names=["alice-phone", "bob-laptop", "gone-already"])

    fresh = Connection.objects.filter(last_seen_at__gt=stale_time())
    assert sorted(fresh.values_list("channel_name", flat=True)) == ["alice-phone", "bob-laptop"]


@pytest.mark.django_db
def test_reaping_drops_silent_connections_and_tells_the_peers_of_who_went_offline(
    alice, bob, carol, peers_of_alice, published, django_capture_on_commit_callbacks
):
    Connection.objects.create(user=alice, channel_name="alice-dead", last_seen_at=stale_time())
    Connection.objects.create(user=bob, channel_name="bob-dead", last_seen_at=stale_time())
    Connection.objects.create(user=bob, channel_name="bob-alive", last_seen_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        assert connections_reap_stale() == 1  # only Alice went offline: Bob has another one

    assert set(Connection.objects.values_list("channel_name", flat=True)) == {"bob-alive"}
    assert sorted(published, key=lambda pair: pair[0]) == sorted(
        [
            (peer, delivery.frame_event(frames.presence(user_id=alice.pk, online=False)))
            for peer in ids([bob, carol])
        ],
        key=lambda pair: pair[0],
    )


@pytest.mark.django_db
def test_reaping_with_nothing_stale_does_nothing(alice, published, django_capture_on_commit_callbacks):
    connection_open(user_id=alice.pk, channel_name="fresh")

    with django_capture_on_commit_callbacks(execute=True):
        assert connections_reap_stale() == 0

    assert Connection.objects.count() == 1
    assert published == []
