"""Real local servers standing in for push services: HTTP/1.1, plain or over TLS (Web Push,
FCM, SMS) and HTTP/2 over TLS (APNs). Each records what it received and answers through a
function the test supplies, so tests check the wire, not our code's view of it. And a port
that only listens, to tell whether anything connected at all."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config

# Where these servers listen: private addresses, which Web Push endpoints may name only
# with IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS on and these hosts in IMS_WEBPUSH_ALLOWED_HOSTS.
LOCAL_HOSTS = ["127.0.0.1", "localhost"]
# What a server or worker subprocess needs in its environment to push to these local servers.
LOCAL_PUSH_ENV = {
    "IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS": "1",
    "IMS_WEBPUSH_ALLOWED_HOSTS": ",".join(LOCAL_HOSTS),
}


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    http_version: str = "1.1"

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        if isinstance(self.body, bytes):
            return self.body, self.headers
        return json.dumps(self.body).encode(), {"content-type": "application/json", **self.headers}


Responder = Callable[[Received], Reply]


class LocalServer:
    """What a server received (`received`) and how it answers (`respond`, replaceable)."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.received: list[Received] = []
        self.url = ""
        # Over TLS: the server name (SNI) each connection asked for.
        self.server_names: list[str | None] = []

    def handle(self, request: Received) -> Reply:
        self.received.append(request)
        return self.respond(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = Received(
            method="POST",
            path=self.path,
            headers={key.lower(): value for key, value in self.headers.items()},
            body=self.rfile.read(length),
        )
        reply = self.server.local.handle(request)  # type: ignore[attr-defined]
        body, headers = reply.encoded()
        self.send_response(reply.status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows what matters."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (the timeout tests) is expected; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def http_server(respond: Responder, *, tls: TlsFiles | None = None) -> Iterator[LocalServer]:
    """An HTTP/1.1 server on 127.0.0.1, a free port, in a thread; over TLS with `tls`."""
    local = LocalServer(respond)
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.local = local  # type: ignore[attr-defined]
    scheme = "http"
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls.cert_file, tls.key_file)
        context.sni_callback = lambda _socket, name, _context: local.server_names.append(name)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    local.url = f"{scheme}://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield local
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@dataclass
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def tls_files(directory: Path, *names: str) -> TlsFiles:
    """A throwaway CA and a certificate signed by it for `names` (127.0.0.1 and localhost
    when none are given)."""
    ca = trustme.CA()
    cert = ca.issue_cert(*(names or ("127.0.0.1", "localhost")))
    files = TlsFiles(
        ca_file=directory / "ca.pem", cert_file=directory / "cert.pem", key_file=directory / "key.pem"
    )
    ca.cert_pem.write_to_path(files.ca_file)
    cert.cert_chain_pems[0].write_to_path(files.cert_file)
    cert.private_key_pem.write_to_path(files.key_file)
    return files


@contextmanager
def http2_tls_server(respond: Responder, *, tls: TlsFiles) -> Iterator[LocalServer]:
    """hypercorn serving HTTP/2 (ALPN h2) over TLS on 127.0.0.1, a free port, in a thread."""
    local = LocalServer(respond)

    async def app(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        request = Received(
            method=scope["method"],
            path=scope["path"],
            headers={key.decode().lower(): value.decode() for key, value in scope["headers"]},
            body=body,
            http_version=scope["http_version"],
        )
        reply = local.handle(request)
        reply_body, headers = reply.encoded()
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(key.encode(), value.encode()) for key, value in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": reply_body})

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    # Listening before hypercorn starts: the first client may connect before it is ready.
    sock.listen(64)
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.certfile, config.keyfile = str(tls.cert_file), str(tls.key_file)
    config.accesslog = config.errorlog = None
    # Clients that keep their connection open (APNs clients should) must not stall teardown.
    config.graceful_timeout = 0.2
    local.url = f"https://127.0.0.1:{port}"

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        loop.run_until_complete(serve(app, config, shutdown_trigger=stop.wait))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(timeout=5)
    try:
        yield local
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()


class Listener:
    """A port on 127.0.0.1 that listens and never accepts: a connection would wait in its
    backlog, so `contacted()` says, without a race, whether anything connected."""

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock
        self.port: int = sock.getsockname()[1]

    def contacted(self) -> bool:
        self._socket.setblocking(False)
        try:
            connection, _ = self._socket.accept()
        except BlockingIOError:
            return False
        connection.close()
        return True


@contextmanager
def listener() -> Iterator[Listener]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield Listener(sock)
    finally:
        sock.close()
