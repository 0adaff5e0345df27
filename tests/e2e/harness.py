"""The end-to-end harness: a daphne subprocess and a synchronous protocol client."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import redis
from django.db import connection
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from messaging.models import User

BASE_DIR = Path(__file__).resolve().parents[2]
DAPHNE = Path(sys.executable).with_name("daphne")
# The machine is shared with other test runs: be patient, but never wait forever.
START_TIMEOUT_SECONDS = 30.0
RECV_TIMEOUT_SECONDS = 15.0
# Frames that arrive on their own schedule; tests that do not ask for them skip them.
NOISE = frozenset({"ping", "pong", "presence", "typing", "receipt"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    condition: Callable[[], Any], *, timeout: float = RECV_TIMEOUT_SECONDS, what: str = "condition"
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def database_url() -> str:
    """The URL of the database this test runs on, for the server subprocess."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    if db["ENGINE"] == "django.db.backends.postgresql":
        auth = quote(db["USER"] or "", safe="")
        if db["PASSWORD"]:
            auth += ":" + quote(db["PASSWORD"], safe="")
        host = db["HOST"] or "127.0.0.1"
        port = f":{db['PORT']}" if db["PORT"] else ""
        return f"postgres://{auth}@{host}{port}/{quote(db['NAME'], safe='')}"
    raise ValueError(f"no URL for database engine {db['ENGINE']}")


class DaphneServer:
    """One daphne process on a fixed port: kill() then start() is a crash and a restart."""

    def __init__(
        self,
        *,
        port: int,
        env: dict[str, str],
        log_dir: Path,
        name: str,
        verbosity: int = 1,
        command: list[str] | None = None,
    ) -> None:
        """`command` replaces the usual daphne command line (the deploy kit's own)."""
        self.port = port
        self.command = command
        self.env = env
        self.name = name
        self.verbosity = verbosity
        self.access_log = log_dir / f"{name}-access.log"
        self.stderr_log = log_dir / f"{name}-stderr.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, **params: Any) -> str:
        query = urlencode({name: value for name, value in params.items() if value is not None})
        return f"ws://127.0.0.1:{self.port}/ws/" + (f"?{query}" if query else "")

    def start(self) -> DaphneServer:
        assert self.process is None or self.process.poll() is not None, "already running"
        command = self.command or [
            str(DAPHNE),
            "-b", "127.0.0.1",
            "-p", str(self.port),
            "-v", str(self.verbosity),
            "--access-log", str(self.access_log),
            "imsproject.asgi:application",
        ]  # fmt: skip
        with self.stderr_log.open("ab") as stderr:
            self.process = subprocess.Popen(
                command, cwd=BASE_DIR, env=self.env, stdout=stderr, stderr=stderr, start_new_session=True
            )
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"daphne {self.name} exited with {self.process.returncode}:\n{self.stderr()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"daphne {self.name} did not listen on {self.port} within {START_TIMEOUT_SECONDS:g} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as on a crash or power loss."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=START_TIMEOUT_SECONDS)

    def terminate(self, *, timeout: float = START_TIMEOUT_SECONDS) -> int:
        """SIGTERM, as a process manager stops a server; its exit status."""
        assert self.process is not None, "never started"
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stderr(self) -> str:
        return self.stderr_log.read_text(errors="replace") if self.stderr_log.exists() else ""

    def access(self) -> str:
        return self.access_log.read_text(errors="replace") if self.access_log.exists() else ""


class RedisProcess:
    """A redis-server of the test's own, on a free port: kill() then start() is a crash
    and a restart that other tests never see, and no other test run on this machine
    publishes into it (pub/sub channels ignore the database number)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_until(lambda: self._answers(client), what="redis-server to answer")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    @staticmethod
    def _answers(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False


class WsClient:
    """A synchronous protocol client: JSON frames in and out, waits always bounded."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    def send(self, frame: dict[str, Any]) -> None:
        self.ws.send(json.dumps(frame))

    def send_raw(self, data: str | bytes) -> None:
        self.ws.send(data)

    def recv(self, *, timeout: float = RECV_TIMEOUT_SECONDS, skip: frozenset[str] = NOISE) -> dict[str, Any]:
        """The next frame whose type is not in `skip`."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no frame within {timeout:g} s")
            frame = json.loads(self.ws.recv(timeout=remaining))
            if frame["type"] not in skip:
                return frame

    def recv_type(self, kind: str, *, timeout: float = RECV_TIMEOUT_SECONDS) -> dict[str, Any]:
        """The next frame of this type; fails on any other frame that is not noise."""
        frame = self.recv(timeout=timeout, skip=NOISE - {kind})
        assert frame["type"] == kind, f"expected {kind}, got {frame}"
        return frame

    def assert_silent(self, *, for_seconds: float) -> None:
        """Nothing but noise arrives for `for_seconds` seconds (proving an absence takes a wait)."""
        with contextlib.suppress(TimeoutError):
            frame = self.recv(timeout=for_seconds)
            pytest.fail(f"expected no frame, got {frame}")

    def handshake(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """hello and the first offline_messages frame."""
        hello = self.recv_type("hello")
        return hello, self.recv_type("offline_messages")

    def replay_all(self, *, ack: bool = True) -> list[dict[str, Any]]:
        """Every item of the replay in progress, acking each frame so the next one comes."""
        items: list[dict[str, Any]] = []
        while True:
            frame = self.recv_type("offline_messages")
            items += frame["items"]
            if ack and frame["items"]:
                self.send({"type": "ack", "seqs": [item["seq"] for item in frame["items"]]})
            if not frame["more"]:
                return items

    def roundtrip(self) -> list[dict[str, Any]]:
        """Send ping and return every non-noise frame that arrived before the pong."""
        self.send({"type": "ping"})
        seen = []
        while (frame := self.recv(skip=NOISE - {"pong"}))["type"] != "pong":
            seen.append(frame)
        return seen

    def close_code(self, *, timeout: float = RECV_TIMEOUT_SECONDS) -> int | None:
        """Wait for the server to close the connection; the close code it sent."""
        deadline = time.monotonic() + timeout
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                self.ws.recv(timeout=remaining)
        except TimeoutError:
            pass
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        pytest.fail(f"the server did not close the connection within {timeout:g} s")

    def close(self) -> None:
        self.ws.close()


def send_text(client: WsClient, *, to: User, content: str, client_msg_id: str | None = None) -> None:
    client.send(
        {
            "type": "send",
            "client_msg_id": client_msg_id or content,
            "to": to.pk,
            "msg_type": "text",
            "content": content,
        }
    )
