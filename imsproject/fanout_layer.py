"""The channel layer of IMS: one subscription per server process, events handed to the
process's own consumers.

Stock layers pay per connection: channels-redis's core layer runs a Lua script and a list
push per group member and a blocking pop per receive; the in-memory layer deep-copies each
event per member and scans every group on every receive (7 % of the server's CPU in a
profile of the 1:1 closed loop with 100 connections, growing with the number of groups).
This layer keeps channels and groups of this process in memory, and with a Redis URL it
subscribes once per process to each user group that has a local member (one pub/sub
connection, PUBLISH per group, pipelined for many). An event for a group is handed to each
local member's sink, a plain function the consumer registered (`attach`), which writes the
frame to the socket at once when it can; otherwise, and for channels without a sink, it is
queued for the consumer's ordinary receive. Queues are bounded (`capacity`) and drop when
full: events are hints, the database is the truth (DESIGN.md, delivery pipeline).

Process-local channels only: `send` to a channel of another process does not reach it
(IMS addresses users through groups, never channels of another process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

Sink = Callable[[dict[str, Any]], bool]  # True: handled; False: queue it for receive()
ORIGIN_BYTES = 16  # a process's id in front of each published event (uuid4 bytes)
# From this many events on, one publish carries them all to every process, which keeps
# those of its local groups: a broadcast to 10,000 users was 10,000 messages for each
# server to read one by one (about 1 s of its event loop in redis-py), now it is one.
BULK_EVENTS = 64
# What Redis going away raises (a restart, a failover, the network).
REDIS_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError, asyncio.TimeoutError)


class FanoutChannelLayer(BaseChannelLayer):
    extensions = ["groups", "flush"]

    def __init__(
        self,
        hosts: str | None = None,
        *,
        prefix: str = "ims",
        capacity: int = 1000,
        expiry: int = 60,
        max_connections: int = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, **kwargs)
        self.url = hosts
        self.prefix = prefix
        self.max_connections = max_connections
        self.origin = uuid.uuid4().bytes
        self.channels: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.groups: dict[str, set[str]] = {}
        self.sinks: dict[str, Sink] = {}
        self._redis: Any = None
        self._home: asyncio.AbstractEventLoop | None = None  # the loop _redis belongs to
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._subscribe_lock = asyncio.Lock()
        # "publishing" and/or "subscription" while Redis is away: logged once per outage.
        self._redis_down: set[str] = set()

    # --- channels ---------------------------------------------------------------------------

    async def new_channel(self, prefix: str = "specific.") -> str:
        return f"{prefix}fanout!{uuid.uuid4().hex}"

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        if not isinstance(message, dict):
            raise TypeError("message is not a dict")
        self.require_valid_channel_name(channel)
        if not self._queue(channel, message):
            raise ChannelFull(channel)

    async def receive(self, channel: str) -> dict[str, Any]:
        self.require_valid_channel_name(channel)
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        return await queue.get()

    def attach(self, channel: str, sink: Sink) -> None:
        """Hand this channel's group events to `sink` first (see the module docstring)."""
        self.sinks[channel] = sink

    def forget(self, channel: str) -> None:
        """The consumer of `channel` is gone: drop its sink and queue (its groups are left
        by group_discard)."""
        self.sinks.pop(channel, None)
        self.channels.pop(channel, None)

    def _queue(self, channel: str, message: dict[str, Any]) -> bool:
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        try:
            queue.put_nowait(message)
        except asyncio.QueueFull:
            return False
        return True

    # --- groups -------------------------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        members = self.groups.get(group)
        if members is None:
            members = self.groups[group] = set()
        first = not members
        members.add(channel)
        if first and self.url:
            await self._subscription("subscribe", group)

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        members = self.groups.get(group)
        if members is None or channel not in members:
            return
        members.discard(channel)
        if not members:
            del self.groups[group]
            if self.url:
                await self._subscription("unsubscribe", group)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await self.group_send_many([(group, message)])

    async def group_send_many(self, events: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Each (group, message): local members at once, other processes in one pipeline."""
        events = list(events)
        for group, message in events:
            self.deliver_local(group, message)
        if self.url and events:
            try:
                await self._publish(events)
            except REDIS_UNREACHABLE as error:
                self._note_redis_down(error)
            else:
                self._note_redis_up()

    async def _publish(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        redis, borrowed = self._client()
        try:
            if len(events) >= BULK_EVENTS:
                await redis.publish(self._bulk_channel(), self.origin + orjson.dumps(events))
                return
            async with redis.pipeline(transaction=False) as pipe:
                for group, message in events:
                    pipe.publish(self._redis_channel(group), self.origin + orjson.dumps(message))
                await pipe.execute()
        finally:
            if borrowed:
                await redis.aclose()

    def _note_redis_down(self, error: BaseException, *, path: str = "publishing") -> None:
        if path not in self._redis_down:
            self._redis_down.add(path)
            logger.warning(
                "Redis is unreachable for %s (%s): events between processes are dropped until "
                "it is back; their items reach those connections through the stream poll",
                path,
                error,
            )

    def _note_redis_up(self, *, path: str = "publishing") -> None:
        if path in self._redis_down:
            self._redis_down.discard(path)
            logger.warning("Redis is reachable again for %s", path)

    def deliver_local(self, group: str, message: dict[str, Any]) -> None:
        members = self.groups.get(group)
        if not members:
            return
        for channel in tuple(members):
            sink = self.sinks.get(channel)
            try:
                if sink is not None and sink(message):
                    continue
            except Exception:
                logger.exception("a sink of group %s failed; queueing the event", group)
            if not self._queue(channel, message):
                logger.debug("channel %s is full; event dropped", channel)

    async def flush(self) -> None:
        self.channels, self.groups, self.sinks = {}, {}, {}
        await self.close()

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
        pubsub, self._pubsub = self._pubsub, None
        redis, self._redis = self._redis, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
        if redis is not None:
            with contextlib.suppress(Exception):
                await redis.aclose()

    # --- Redis --------------------------------------------------------------------------------

    def _bulk_channel(self) -> str:
        return f"{self.prefix}!bulk"  # "!" is in no group name

    def _redis_channel(self, group: str) -> str:
        return f"{self.prefix}.{group}"

    def _new_redis(self) -> Any:
        from redis import asyncio as aioredis

        # socket_timeout None: redis-py 8's 5 s default kills an idle subscription
        # (channels_redis#422). max_connections: redis-py 8.1 caps a pool at 100.
        return aioredis.Redis.from_url(self.url, socket_timeout=None, max_connections=self.max_connections)

    def _connection(self) -> Any:
        """The client of this process's event loop (a server has one loop for its life)."""
        loop = asyncio.get_running_loop()
        if self._home is not loop and (self._home is None or self._home.is_closed()):
            # The first loop, or the last one ended (async_to_sync makes one per call):
            # its sockets went with it.
            self._home, self._redis, self._pubsub, self._reader = loop, None, None, None
            self._subscribe_lock = asyncio.Lock()
        if self._redis is None:
            self._redis = self._new_redis()
        return self._redis

    def _client(self) -> tuple[Any, bool]:
        """(client, borrowed): the home loop's client, or a fresh one for a caller on another
        loop (a Celery task publishing through async_to_sync), to be closed after use."""
        connection = self._connection()
        if asyncio.get_running_loop() is self._home:
            return connection, False
        return self._new_redis(), True

    async def _subscription(self, command: str, group: str) -> None:
        """(Un)subscribe this process to a group's Redis channel. Not awaited by Redis's
        reply: an event published meanwhile may be missed, as any event may."""
        redis = self._connection()
        if self._pubsub is None:
            self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
            async with self._subscribe_lock:
                await self._pubsub.subscribe(self._bulk_channel())
        async with self._subscribe_lock:
            await getattr(self._pubsub, command)(self._redis_channel(group))
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        """The process's one subscription: each event to the local members of its group."""
        skip = len(self.prefix) + 1
        bulk = self._bulk_channel()
        while True:
            pubsub = self._pubsub
            try:
                if pubsub is None or not pubsub.subscribed:
                    await asyncio.sleep(0.1)
                    continue
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                self._note_redis_up(path="subscription")
                data: bytes = message["data"]
                if data[:ORIGIN_BYTES] == self.origin:
                    continue  # published here, and delivered here already
                name = message["channel"]
                name = name.decode() if isinstance(name, bytes) else name
                if name == bulk:
                    for group, event in orjson.loads(data[ORIGIN_BYTES:]):
                        self.deliver_local(group, event)
                else:
                    self.deliver_local(name[skip:], orjson.loads(data[ORIGIN_BYTES:]))
            except asyncio.CancelledError:
                raise
            except REDIS_UNREACHABLE as error:
                # Redis restarting: redis-py reconnects and subscribes again on next use.
                self._note_redis_down(error, path="subscription")
                await asyncio.sleep(1)
            except Exception:
                logger.exception("reading the channel layer's subscription failed; retrying")
                await asyncio.sleep(1)
