"""On the Redis channel layer: an idle connection keeps receiving (DESIGN.md, Known traps).

redis-py 8 gives every connection a 5 s read timeout; channels-redis blocks 5 s in
BZPOPMIN, so without `socket_timeout: None` an idle consumer's receive dies after ~5 s
and the socket closes with 1011. Runs on the Redis layer of the settings, also when the
suite otherwise runs on the in-memory one.
"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from imsproject.channel_layers import redis_channel_layer
from messaging.services.messages import message_send
from tests.messaging.wsclient import ws_connect, ws_isolation  # noqa: F401  (fixture)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("ws_isolation"),
    pytest.mark.redis,
]

# Longer than redis-py's default read timeout plus channels-redis's 5 s blocking pop.
IDLE_SECONDS = 6


@pytest.fixture(autouse=True)
def redis_layer(settings, redis_url) -> None:
    settings.CHANNEL_LAYERS = {
        "default": redis_channel_layer(redis_url, max_connections=settings.IMS_REDIS_MAX_CONNECTIONS)
    }


async def test_an_idle_connection_still_receives_on_redis(alice, bob):
    async with ws_connect(bob) as ws:
        await ws.assert_nothing(IDLE_SECONDS)
        await database_sync_to_async(message_send)(
            sender_id=alice.pk, to=bob.pk, content="still there?", client_msg_id="idle"
        )
        message = await ws.receive_type("message")
        assert message["data"]["content"] == "still there?"
        await ws.assert_alive()
