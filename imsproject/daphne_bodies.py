"""daphne applies imsproject.request_limits as soon as a request's headers are in.

daphne hands a request to the application only after Twisted has read its whole body (into
a temporary file past 100 kB), and then queues all of it at once: an unauthenticated
200 MiB POST grew the server by about 200 MiB before Django could answer 401. Now, when
Twisted learns the body's length (Request.gotLength), before it stores a byte of it:

- a route that needs credentials and got none, or a Content-Length over the route's limit,
  is answered (401, 413) at once, and the body is never stored;
- a larger body (over CHECK_CREDENTIALS_ABOVE_BYTES, or chunked) for a route that needs
  credentials waits, its socket unread, until its token or session is checked;
- a chunked body is counted as it arrives and answered 413 once it passes the limit.

A refused connection answers, closes its sending side, and reads and drops whatever the
client still sends for up to LINGER_SECONDS before it closes. Closing at once with unread
data would reset the connection, and a client still sending could lose the answer (nginx's
lingering close exists for the same reason). Requests without a body are left to the ASGI
middleware, which answers them the same way.

These are patches of daphne's and Twisted's private parts: check_hooks() fails at start-up,
naming the installed versions, when one of them has changed.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import unquote

from imsproject.request_limits import (
    Refusal,
    RequestHead,
    RouteRules,
    app_path,
    body_too_large,
    credentials_checked_first,
    refusal_at_headers,
    refusal_of_credentials,
    route_rules,
)

logger = logging.getLogger(__name__)

# nginx's lingering_timeout: long enough for a client to read the answer and stop sending.
LINGER_SECONDS = 5.0
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# Instance attributes we read or replace: (module, class, the method that sets it, name).
_INSTANCE_ATTRIBUTES = (
    ("twisted.web.http", "HTTPChannel", "lineReceived", "_command"),
    ("twisted.web.http", "HTTPChannel", "lineReceived", "_path"),
    ("twisted.web.http", "HTTPChannel", "__init__", "_transferDecoder"),
    ("twisted.web.http", "Request", "__init__", "client"),
    ("daphne.http_protocol", "WebRequest", "__init__", "server"),
    ("daphne.server", "Server", "__init__", "root_path"),
)
# Class attributes we read or replace.
_CLASS_ATTRIBUTES = (
    ("twisted.web.http", "HTTPChannel", "persistent"),
    ("daphne.server", "Server", "log_action"),
)


@dataclass(kw_only=True)
class _Intake:
    """How far one request's body has come, on the request while its body arrives."""

    rules: RouteRules
    method: bytes
    target: bytes
    received_bytes: int = 0
    refused: bool = False
    checking: asyncio.Future[Refusal | None] | None = None  # the credentials check under way
    held: tuple[bytes, bytes, bytes] | None = None  # requestReceived's arguments, during it
    expect_continue: bool = False


class _Discard:
    """A transfer decoder for the rest of a refused body: it drops everything."""

    def dataReceived(self, data: bytes) -> None:
        return None

    def noMoreData(self) -> None:
        return None


def check_hooks() -> None:
    """Raise unless daphne and Twisted still have every part the patch replaces or reads."""
    import daphne
    import twisted
    from daphne.http_protocol import WebRequest
    from twisted.web import http

    missing = [f"twisted.web.http.Request.{name}" for name in _HOOKS if not hasattr(http.Request, name)]
    missing += [
        f"daphne.http_protocol.WebRequest.{name} (daphne defines its own now)"
        for name in _HOOKS
        if vars(WebRequest).get(name, _HOOKS[name]) is not _HOOKS[name]
    ]
    missing += [
        f"{module}.{owner}.{name} (set in {method})"
        for module, owner, method, name in _INSTANCE_ATTRIBUTES
        if name
        not in inspect.unwrap(
            getattr(getattr(importlib.import_module(module), owner), method)
        ).__code__.co_names
    ]
    missing += [
        f"{module}.{owner}.{name}"
        for module, owner, name in _CLASS_ATTRIBUTES
        if not hasattr(getattr(importlib.import_module(module), owner), name)
    ]
    if missing:
        raise RuntimeError(
            f"imsproject.daphne_bodies does not fit daphne {daphne.__version__} with Twisted "
            f"{twisted.__version__}: {', '.join(missing)} changed. Adapt the patch to these "
            "versions or install the pinned ones (requirements.txt)."
        )


def refuse_bodies_early() -> None:
    """Install the patch on daphne's request class (once)."""
    from daphne.http_protocol import WebRequest

    if getattr(WebRequest, "_ims_bodies_refused_early", False):
        return
    check_hooks()
    for name, hook in _HOOKS.items():
        setattr(WebRequest, name, hook)
    WebRequest._ims_bodies_refused_early = True


def _got_length(request: Any, length: int | None) -> None:
    from twisted.web import http

    http.Request.gotLength(request, length)
    if length == 0 or not isinstance(request.channel, http.HTTPChannel):
        return  # no body to keep out; HTTP/2 streams are not patched
    channel: Any = request.channel  # its private parts are what this module reads
    head = _head(request, channel, length)
    rules = route_rules(head.path, channel._command.decode("latin-1"))
    request._ims_intake = intake = _Intake(rules=rules, method=channel._command, target=channel._path)
    refusal = refusal_at_headers(head, rules)
    if refusal is not None:
        _refuse(request, refusal)
    elif credentials_checked_first(head, rules):
        intake.expect_continue = _take_expect_continue(request)
        channel.transport.pauseProducing()
        intake.checking = asyncio.ensure_future(refusal_of_credentials(head))
        intake.checking.add_done_callback(lambda check: _credentials_checked(request, check))


def _head(request: Any, channel: Any, length: int | None) -> RequestHead:
    target = channel._path.split(b"?", 1)[0]
    headers = request.requestHeaders
    authorization = headers.getRawHeaders(b"authorization")
    return RequestHead(
        # daphne answers 400 to a path that is not ASCII; latin-1 only keeps this from failing.
        path=app_path(unquote(target.decode("latin-1")), request.server.root_path),
        body_bytes=length,
        authorization=authorization[0].decode("latin-1") if authorization else None,
        cookies="; ".join(value.decode("latin-1") for value in headers.getRawHeaders(b"cookie", [])),
    )


def _take_expect_continue(request: Any) -> bool:
    """Remove `Expect: 100-continue`, so Twisted does not invite the body; whether it was there."""
    expect = request.requestHeaders.getRawHeaders(b"expect")
    request.requestHeaders.removeHeader(b"expect")
    return bool(expect) and expect[0].lower() == b"100-continue"


def _handle_content_chunk(request: Any, data: bytes) -> None:
    from twisted.web import http

    intake: _Intake | None = getattr(request, "_ims_intake", None)
    if intake is None:
        http.Request.handleContentChunk(request, data)
        return
    if intake.refused:
        return
    intake.received_bytes += len(data)
    if intake.received_bytes > intake.rules.max_body_bytes:
        _refuse(request, body_too_large(intake.rules))
        return
    http.Request.handleContentChunk(request, data)


def _request_received(request: Any, command: bytes, path: bytes, version: bytes) -> None:
    from twisted.web import http

    intake: _Intake | None = getattr(request, "_ims_intake", None)
    if intake is not None and intake.refused:
        return  # answered already: the application never sees it
    if intake is not None and intake.checking is not None:
        intake.held = (command, path, version)  # a small body, all in before the check ended
        return
    http.Request.requestReceived(request, command, path, version)


# Methods of twisted.web.http.Request that daphne's WebRequest inherits, and their replacements.
_HOOKS = {
    "gotLength": _got_length,
    "handleContentChunk": _handle_content_chunk,
    "requestReceived": _request_received,
}


def _credentials_checked(request: Any, check: asyncio.Future[Refusal | None]) -> None:
    from twisted.web import http

    intake: _Intake = request._ims_intake
    intake.checking = None
    if request.channel is None or check.cancelled():
        return  # the client went away meanwhile
    transport = request.channel.transport
    if check.exception() is not None:
        # The application checks the credentials again and answers for itself.
        logger.error("checking credentials before a request body failed", exc_info=check.exception())
        refusal = None
    else:
        refusal = check.result()
    transport.resumeProducing()
    if refusal is not None:
        _refuse(request, refusal)
    elif intake.held is not None:
        http.Request.requestReceived(request, *intake.held)
    elif intake.expect_continue:
        transport.write(_CONTINUE)


def _refuse(request: Any, refusal: Refusal) -> None:
    """Answer instead of the application, drop the rest of the body, close after a linger."""
    from twisted.internet import reactor

    request._ims_intake.refused = True
    request.requestHeaders.removeHeader(b"expect")  # Twisted would send 100 Continue after this
    channel = request.channel
    channel.persistent = False
    channel._transferDecoder = _Discard()
    transport = channel.transport
    transport.write(_response_bytes(refusal))
    if hasattr(transport, "loseWriteConnection"):
        transport.loseWriteConnection()
    else:
        transport.loseConnection()
    # Twisted's type hints see the global reactor as a module.
    linger = cast(Any, reactor).callLater(LINGER_SECONDS, transport.abortConnection)
    # A client that closes first frees the connection at once, not after the linger.
    request.notifyFinish().addBoth(lambda _: linger.cancel() if linger.active() else None)
    _log_access(request, refusal)


def _response_bytes(refusal: Refusal) -> bytes:
    lines = [f"HTTP/1.1 {refusal.status} {HTTPStatus(refusal.status).phrase}".encode()]
    lines += [name + b": " + value for name, value in refusal.headers]
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + refusal.body


def _log_access(request: Any, refusal: Refusal) -> None:
    """The access-log line daphne writes for every answer it gives."""
    intake: _Intake = request._ims_intake
    client = request.client
    request.server.log_action(
        "http",
        "complete",
        {
            "path": intake.target.decode("latin-1"),
            "status": refusal.status,
            "method": intake.method.decode("latin-1"),
            "client": f"{client.host}:{client.port}" if hasattr(client, "port") else None,
            "time_taken": 0,
            "size": len(refusal.body),
        },
    )
