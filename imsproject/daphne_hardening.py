"""Two daphne behaviours its command line cannot change, adjusted when it serves IMS.

- Its HTTP access log writes the full URI, query string included, so a plain
  `GET /ws/?token=KEY` (a proxy that strips Upgrade, a curious curl) would put an API
  token in the log. Every access-log line goes through imsproject.logging.redact.
- Its WebSocket layer drops the TCP connection on a frame over its size limit (autobahn's
  failByDrop). PROTOCOL.md promises close code 1009 instead, so the connection is closed
  with a proper closing handshake.

Other ASGI servers are unaffected; nothing happens when daphne is not installed.
"""

from __future__ import annotations

from typing import Any

from imsproject.logging import redact


def harden_daphne() -> None:
    try:
        from daphne import access, ws_protocol
    except ImportError:
        return
    if getattr(access.AccessLogGenerator, "_ims_hardened", False):
        return
    write_entry = access.AccessLogGenerator.write_entry

    def write_redacted_entry(
        self: Any, host: Any, date: Any, request: str, *args: Any, **kwargs: Any
    ) -> None:
        write_entry(self, host, date, redact(request), *args, **kwargs)

    factory_init = ws_protocol.WebSocketFactory.__init__

    def init_closing_politely(self: Any, *args: Any, **kwargs: Any) -> None:
        factory_init(self, *args, **kwargs)
        self.setProtocolOptions(failByDrop=False)

    access.AccessLogGenerator.write_entry = write_redacted_entry
    ws_protocol.WebSocketFactory.__init__ = init_closing_politely
    access.AccessLogGenerator._ims_hardened = True
