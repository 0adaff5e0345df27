"""An HTTP/1.1 client on a plain socket, for tests of what a huge request body costs the server.

It streams the body from one reusable chunk (a 200 MiB body never exists in the test's
memory), with a Content-Length or chunked, and reads while it writes, as curl and browsers
do: as soon as the server answers, it stops sending. It reports how much of the body went
out before the answer, so a test can tell a refusal at the headers from one after the body.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

CHUNK_BYTES = 64 * 1024
_FILLER = b"x" * CHUNK_BYTES
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(frozen=True, kw_only=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # names lowercased
    body: bytes
    body_bytes_sent: int  # with chunk sizes: what matters is the order of magnitude
    seconds: float
    invited: bool  # the server sent 100 Continue first


def request(
    *,
    port: int,
    method: str = "POST",
    path: str,
    headers: dict[str, str] | None = None,
    body_bytes: int = 0,
    body: bytes | None = None,
    chunked: bool = False,
    expect_continue: bool = False,
    timeout: float = 60.0,
) -> RawResponse:
    """Send one request, its body `body` or else `body_bytes` of filler, and return the answer.

    With `expect_continue` the body waits for the server's 100 Continue, as curl's does.
    """
    started = time.monotonic()
    size = len(body) if body is not None else body_bytes
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    if expect_continue:
        head.append("Expect: 100-continue")
    pieces = _pieces(body, size, chunked=chunked)
    head_bytes = ("\r\n".join(head) + "\r\n\r\n").encode()
    pending = memoryview(head_bytes)
    sent = 0
    received = b""
    invited = False
    waiting = expect_continue  # for 100 Continue, once the head is out
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.setblocking(False)
        writing = True
        while True:
            if time.monotonic() > started + timeout:
                raise TimeoutError(f"no complete answer within {timeout:g} s ({sent} body bytes sent)")
            if writing and not pending and not waiting:
                pending = next(pieces, None)
                writing = pending is not None
            wants_write = writing and (bool(pending) or not waiting)
            readable, writable, _ = select.select([sock], [sock] if wants_write else [], [], 0.5)
            if readable:
                data = _recv(sock)
                received += data
                if received.startswith(_CONTINUE):
                    received = received[len(_CONTINUE) :]
                    invited, waiting = True, False
                if not data or _complete(received):
                    break
                if received:
                    writing = False  # the server answered: a client stops sending its body
            if writable and pending:
                try:
                    count = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    writing = False
                    continue
                sent += count
                pending = pending[count:]
    status, response_headers, response_body = _parse(received)
    return RawResponse(
        status=status,
        headers=response_headers,
        body=response_body,
        body_bytes_sent=max(0, sent - len(head_bytes)),
        seconds=time.monotonic() - started,
        invited=invited,
    )


def _pieces(body: bytes | None, size: int, *, chunked: bool) -> Iterator[memoryview]:
    """The body as it goes on the wire, a chunk at a time."""
    for offset in range(0, size, CHUNK_BYTES):
        count = min(CHUNK_BYTES, size - offset)
        data = body[offset : offset + count] if body is not None else _FILLER[:count]
        yield memoryview(f"{count:x}\r\n".encode() + data + b"\r\n" if chunked else data)
    if chunked:
        yield memoryview(b"0\r\n\r\n")


def _recv(sock: socket.socket) -> bytes:
    """What select() said is there; b"" when the server closed or reset the connection."""
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def _complete(received: bytes) -> bool:
    head, separator, body = received.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False  # no length: the answer ends when the server closes


def _parse(received: bytes) -> tuple[int, dict[str, str], bytes]:
    head, separator, body = received.partition(b"\r\n\r\n")
    if not separator:
        raise ConnectionError(f"the server closed the connection without an answer: {received[:200]!r}")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body
