"""A rolling restart and a crash of one of two servers on one Redis, under steady traffic:
clients move to the other server, nothing accepted is lost, nothing is shown twice."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from tests.conftest import token_of
from tests.e2e.harness import DaphneServer
from tests.e2e.traffic import Pair, Peer, assert_each_message_once, run_traffic
from tests.factories import UserFactory

# A Redis of the test's own: other test runs on this machine publish to user.<id> too.
pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

UNLIMITED = {"IMS_SEND_RATE_PER_SECOND": "100000", "IMS_SEND_BURST": "100000"}
# Four senders, 20 messages a second each, for about 4 s: the restarts fall inside it.
COUNT = 80
INTERVAL_SECONDS = 0.05
GOING_AWAY = 1001


def pairs_across(first: DaphneServer, second: DaphneServer) -> list[Pair]:
    """alice <-> bob and carol <-> dave, each pair split over the two servers."""
    peers = []
    for n, name in enumerate(("alice", "bob", "carol", "dave")):
        user = UserFactory(username=name)
        urls = [first.ws_url(), second.ws_url()]
        peers.append(Peer(name=name, user_id=user.pk, token=_token(user), urls=urls[n % 2 :] + urls[: n % 2]))
    alice, bob, carol, dave = peers
    return [Pair(alice, bob), Pair(bob, alice), Pair(carol, dave), Pair(dave, carol)]


def _token(user) -> str:
    from rest_framework.authtoken.models import Token

    Token.objects.get_or_create(user=user)
    return token_of(user)


def test_a_rolling_restart_of_two_servers_under_traffic_loses_and_repeats_nothing(
    start_server, private_redis
):
    one = start_server(REDIS_URL=private_redis.url, **UNLIMITED)
    two = start_server(REDIS_URL=private_redis.url, **UNLIMITED)
    pairs = pairs_across(one, two)

    def restart_each_in_turn() -> None:
        for server in (one, two):
            time.sleep(1)
            assert server.terminate(timeout=10) == 0, server.stderr()[-3000:]
            server.start()

    run_traffic(pairs, count=COUNT, interval_seconds=INTERVAL_SECONDS, during=restart_each_in_turn)

    assert_each_message_once(pairs, count=COUNT)
    peers = {pair.sender for pair in pairs}
    # Every client was moved at least once, and only ever by a close frame saying why.
    assert all(peer.connects >= 2 for peer in peers), [(peer.name, peer.connects) for peer in peers]
    assert {code for peer in peers for code in peer.close_codes} == {GOING_AWAY}
    for server in (one, two):
        assert "Traceback" not in server.stderr()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a fault of the PostgreSQL + Redis deployment")
def test_a_kill_9_of_one_of_two_servers_under_traffic_loses_and_repeats_nothing(start_server, private_redis):
    one = start_server(REDIS_URL=private_redis.url, **UNLIMITED)
    two = start_server(REDIS_URL=private_redis.url, **UNLIMITED)
    pairs = pairs_across(one, two)

    def crash_one() -> None:
        time.sleep(1.5)
        one.kill()  # messages in flight: sends being stored, frames on the wire

    run_traffic(pairs, count=COUNT, interval_seconds=INTERVAL_SECONDS, during=crash_one)

    assert_each_message_once(pairs, count=COUNT)
    moved = [peer for peer in {pair.sender for pair in pairs} if peer.close_codes]
    assert len(moved) == 2, "the clients of the killed server reconnected to the other one"
    assert "Traceback" not in two.stderr()
