"""The baseline: a stock Channels consumer, as in the Channels tutorial.

One group per user, one `group_send` per message, no storage, no seq, no ack, on a stock
channel layer (channels-redis's RedisChannelLayer with REDIS_URL, else Channels'
InMemoryChannelLayer). It shows what Channels itself costs on this machine, so IMS's
figures can be read beside it. A `broadcast` frame makes it send one frame to each of
the given users, one `group_send` per user, as stock code would.
"""

import os
from urllib.parse import parse_qs

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imsproject.settings")
django_http = get_asgi_application()

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import path  # noqa: E402


def stock_channel_layers() -> dict:
    url = os.environ.get("REDIS_URL")
    if not url:
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}}
    host = {"address": url, "socket_timeout": None, "max_connections": settings.IMS_REDIS_MAX_CONNECTIONS}
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [host], "capacity": 1000, "prefix": "baseline"},
        }
    }


settings.CHANNEL_LAYERS = stock_channel_layers()


class StockChatConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        query = parse_qs(self.scope["query_string"].decode())
        # Its own group names: on Redis, IMS's events for user.<id> must not reach it.
        self.group = f"baseline.{int(query['user'][0])}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: dict) -> None:
        if content.get("type") == "broadcast":
            event = {"type": "chat.message", "frame": {"type": "notification", "data": content["data"]}}
            for user_id in content["to"]:
                await self.channel_layer.group_send(f"baseline.{user_id}", event)
            return
        if content.get("type") != "send":
            return
        frame = {
            "type": "message",
            "data": {"content": content["content"], "client_msg_id": content["client_msg_id"]},
        }
        event = {"type": "chat.message", "frame": frame}
        await self.channel_layer.group_send(f"baseline.{content['to']}", event)
        await self.send_json({"type": "sent", "client_msg_id": content["client_msg_id"]})

    async def chat_message(self, event: dict) -> None:
        await self.send_json(event["frame"])


application = ProtocolTypeRouter(
    {"http": django_http, "websocket": URLRouter([path("ws/", StockChatConsumer.as_asgi())])}
)
