"""Three daphne behaviours its command line cannot change, adjusted when it serves IMS.

- Its HTTP access log writes the full URI, query string included, so a plain
  `GET /ws/?token=KEY` (a proxy that strips Upgrade, a curious curl) would put an API
  token in the log. Every access-log line goes through imsproject.logging.redact.
- Its WebSocket layer drops the TCP connection on a frame over its size limit (autobahn's
  failByDrop). PROTOCOL.md promises close code 1009 instead, so the connection is closed
  with a proper closing handshake.
- Its WebSocket writes go to Twisted's transport buffer, which has no bound: four sockets
  of a user who never read grew the server by 56 MiB. A connection whose unsent output
  passes IMS_MAX_OUTPUT_BYTES is closed with 4429 (PROTOCOL.md); its items stay pending
  and its client catches up on reconnect. Sends after a close are dropped (autobahn
  raises on them), since the consumer learns of the close only a moment later.
- autobahn refuses to send the close codes 1001 and 1011 (it accepts only 1000 and
  3000-4999, stricter than RFC 6455), so a server-side close with 1011 raised instead of
  closing. Closes go out as the close frame itself.

- Twisted parses every POST body that says multipart/form-data into its own request
  arguments, which daphne never reads: a second in-memory copy of each upload, and a
  malformed body (a multipart with no part) answered with a bare 400 that no view wrote,
  outside the API's error bodies and its OpenAPI document. Django parses uploads alone now.

Other ASGI servers are unaffected; nothing happens when daphne is not installed.

- autobahn pretty-prints its configuration for a debug log line on every connection, logged
  or not (7 % of the server's CPU in a py-spy profile of a reconnect storm): the text is
  now made only when a log line is actually written.

- Twisted's TCP transport never writes at once: `write` buffers the bytes and asks the
  reactor to watch the socket, whose next turn sends them and stops watching (two
  epoll_ctl calls and a loop turn per frame; with a broadcast to 10,000 sockets, a
  fifth of the server's time). Now a write to a socket with nothing buffered goes to
  the kernel at once; only what the kernel does not take is buffered as before.

- daphne reads a whole request body before the application sees it; imsproject.daphne_bodies
  refuses bodies by imsproject.request_limits as soon as the headers are in.

Also `sync_writer`: daphne's ASGI `send` hands a frame to Twisted without ever waiting, so
a consumer may write from plain (non-async) code, as the channel layer's fan-out does. It
frames text itself when autobahn would do nothing more than frame it.
"""

from __future__ import annotations

import errno
import functools
import pprint
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from imsproject.logging import redact

CLOSE_SLOW_READER = 4429
# The 4429 close frame waits behind up to IMS_MAX_OUTPUT_BYTES of backlog: a client that
# starts reading again within this time still learns why it was closed. autobahn's default
# (1 s) drops the connection before a phone back from the background could read that much.
SLOW_READER_CLOSE_TIMEOUT_SECONDS = 10


def unsent_bytes(transport: Any) -> int:
    """What a Twisted TCP transport holds that the kernel has not taken yet (0 for any
    other kind of transport)."""
    buffered = len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
    return buffered + getattr(transport, "_tempDataLen", 0)


class _LazyPrettyText:
    """pprint.pformat(value), computed when formatted into a log line that is written."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return pprint.pformat(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def close_if_over_budget(protocol: Any) -> None:
    """Close with 4429 a connection whose unsent output passed IMS_MAX_OUTPUT_BYTES."""
    if unsent_bytes(protocol.transport) > settings.IMS_MAX_OUTPUT_BYTES:
        # The close frame queues behind the backlog, so a peer that never reads may not
        # see it: autobahn drops the TCP connection after its close timeout.
        protocol.closeHandshakeTimeout = SLOW_READER_CLOSE_TIMEOUT_SECONDS
        protocol.sendCloseFrame(code=CLOSE_SLOW_READER, reasonUtf8=b"the client does not read its frames")


def text_frame(text: str) -> bytes:
    """One unfragmented, unmasked WebSocket text frame (RFC 6455, 5.2): a server's."""
    payload = text.encode()
    size = len(payload)
    if size <= 125:
        return bytes((0x81, size)) + payload
    if size <= 0xFFFF:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload


def _writes_plain_frames(protocol: Any) -> bool:
    """Whether a frame may go to the transport as it is: autobahn would do nothing more
    than frame it (no compression, fragmentation, masking, queue, or frame logging)."""
    return (
        protocol.state == protocol.STATE_OPEN
        and protocol._perMessageCompress is None
        and not protocol.autoFragmentSize
        and not protocol.maskServerFrames
        and not protocol.send_queue
        and not protocol.logFrames
        and not protocol.logOctets
        and not protocol.trackedTimings
    )


def _patch_tcp_write() -> None:
    from twisted.internet import tcp
    from twisted.python.util import untilConcludes

    buffered_write = tcp.Connection.write

    def write_at_once(self: Any, data: bytes) -> None:
        if (
            self.TLS  # startTLS: the TLS layer writes through this method itself
            or not self.connected
            or self.disconnecting
            or self._writeDisconnected
            or self._tempDataBuffer
            or len(self.dataBuffer) > self.offset
            or not isinstance(data, bytes)
        ):
            buffered_write(self, data)
            return
        try:
            sent = untilConcludes(self.socket.send, data)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.ENOBUFS):
                # The reactor's turn finds the connection lost, as it would have.
                buffered_write(self, data)
                return
            sent = 0
        if sent < len(data):
            buffered_write(self, data[sent:])

    tcp.Connection.write = write_at_once  # type: ignore[method-assign]


def harden_daphne() -> None:
    try:
        from autobahn.websocket import protocol as autobahn_protocol
        from daphne import access, ws_protocol
    except ImportError:
        return
    if getattr(access.AccessLogGenerator, "_ims_hardened", False):
        return
    # Imported here: it reads the URLconf and the apps, which need Django set up.
    from imsproject.daphne_bodies import refuse_bodies_early

    refuse_bodies_early()
    write_entry = access.AccessLogGenerator.write_entry

    def write_redacted_entry(
        self: Any, host: Any, date: Any, request: str, *args: Any, **kwargs: Any
    ) -> None:
        write_entry(self, host, date, redact(request), *args, **kwargs)

    factory_init = ws_protocol.WebSocketFactory.__init__

    def init_closing_politely(self: Any, *args: Any, **kwargs: Any) -> None:
        factory_init(self, *args, **kwargs)
        self.setProtocolOptions(failByDrop=False)

    server_send = ws_protocol.WebSocketProtocol.serverSend

    def send_within_budget(self: Any, content: Any, binary: bool = False) -> None:
        if self.state != self.STATE_OPEN and self.state != self.STATE_CONNECTING:
            return  # closing or closed: the consumer's disconnect is on its way
        server_send(self, content, binary)
        close_if_over_budget(self)

    def close_with_any_code(self: Any, code: int | None = None) -> None:
        self.sendCloseFrame(code=1000 if code is None else code)

    _patch_tcp_write()
    _leave_form_bodies_to_django()
    access.AccessLogGenerator.write_entry = write_redacted_entry
    ws_protocol.WebSocketFactory.__init__ = init_closing_politely
    ws_protocol.WebSocketProtocol.serverSend = send_within_budget
    ws_protocol.WebSocketProtocol.serverClose = close_with_any_code
    # Patches of third-party code, as the rest of this function: mypy cannot follow them.
    autobahn_protocol.pformat = _LazyPrettyText  # type: ignore[assignment]
    autobahn_protocol.Timings.__str__ = lambda self: pprint.pformat(self._timings)  # type: ignore[method-assign]
    access.AccessLogGenerator._ims_hardened = True


def _leave_form_bodies_to_django() -> None:
    """daphne's requests with Twisted's own form parsing off (its public keyword
    `parsePOSTFormSubmission`, since Twisted 24.7; left alone on a Twisted without it)."""
    import inspect

    from daphne.http_protocol import WebRequest
    from twisted.web import http

    if "parsePOSTFormSubmission" not in inspect.signature(http.Request.__init__).parameters:
        return
    web_request_init = WebRequest.__init__

    @functools.wraps(web_request_init)  # start-up checks read the original through __wrapped__
    def init_without_form_parsing(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parsePOSTFormSubmission", False)
        web_request_init(self, *args, **kwargs)

    WebRequest.__init__ = init_without_form_parsing


def sync_writer(send: Any) -> Callable[[str], None] | None:
    """A function writing one text frame at once through daphne, given the ASGI `send` a
    consumer got; None for any other server (callers then await `send` as usual).

    daphne's send is `partial(Server.handle_reply, protocol)`, a coroutine that never
    suspends; Channels' session middleware wraps it without changing websocket frames.
    """
    try:
        from channels.sessions import InstanceSessionWrapper
        from daphne.server import Server
    except ImportError:
        return None
    owner = getattr(send, "__self__", None)
    if isinstance(owner, InstanceSessionWrapper):
        send = owner.real_send
    if not isinstance(send, functools.partial) or len(send.args) != 1 or send.keywords:
        return None
    server = getattr(send.func, "__self__", None)
    if not isinstance(server, Server) or getattr(send.func, "__func__", None) is not Server.handle_reply:
        return None
    protocol = send.args[0]

    def write(text: str) -> None:
        connection = server.connections.get(protocol)
        if connection is None or connection.get("disconnected"):
            return  # as Server.handle_reply
        if not _writes_plain_frames(protocol):
            protocol.handle_reply({"type": "websocket.send", "text": text})
            return
        # The frame as autobahn would write it, without its per-frame bookkeeping (type
        # assertions, traffic counters, a debug line formatted whether logged or not):
        # about half of the time of a frame written to 10,000 sockets.
        protocol.transport.write(text_frame(text))
        protocol.last_ping = time.time()  # as daphne's serverSend: no keepalive ping is due
        close_if_over_budget(protocol)

    return write
