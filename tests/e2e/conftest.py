"""End-to-end fixtures: a real daphne process and real WebSocket clients.

The server runs as a subprocess on the test database (committed data, so tests here use
`django_db(transaction=True)`); the test process creates users with the ORM and talks to the
server only over sockets. Each server writes its access log and stderr to files that tests
read (the token must never appear in them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from messaging.models import User
from tests.conftest import require_server, token_of
from tests.e2e.harness import (
    START_TIMEOUT_SECONDS,
    DaphneServer,
    RedisProcess,
    WsClient,
    database_url,
    free_port,
)

StartServer = Callable[..., DaphneServer]


@pytest.fixture
def start_server(transactional_db: None, tmp_path: Path) -> Iterator[StartServer]:
    """start_server(IMS_HEARTBEAT_SECONDS="1", REDIS_URL=..., verbosity=1) -> a running server.

    Keyword arguments become environment variables of the server (None removes one).
    REDIS_URL of the test run is passed through unless overridden.
    """
    servers: list[DaphneServer] = []
    db_url = database_url()

    def start(*, verbosity: int = 1, **env_overrides: str | None) -> DaphneServer:
        env = {**os.environ, "DATABASE_URL": db_url, "PYTHONUNBUFFERED": "1"}
        for name, value in env_overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = str(value)
        server = DaphneServer(
            port=free_port(), env=env, log_dir=tmp_path, name=f"daphne{len(servers) + 1}", verbosity=verbosity
        )
        servers.append(server)
        return server.start()

    yield start
    # SIGKILL: a test that wants the graceful stop asks for it (DaphneServer.terminate,
    # imsproject/shutdown.py); teardown only needs the process gone. Logs are unbuffered,
    # so nothing written is lost.
    for server in servers:
        server.kill()


@pytest.fixture
def server(start_server: StartServer) -> DaphneServer:
    """A server with the default settings of the test run."""
    return start_server()


Connect = Callable[..., WsClient]


@pytest.fixture
def ws_connect() -> Iterator[Connect]:
    """ws_connect(server, user, last_seq=None, **connect_kwargs) -> WsClient; closed at teardown.

    `user` may be None to connect with no credentials; pass token=... to override.
    """
    with contextlib.ExitStack() as clients:

        def open_client(
            server: DaphneServer,
            user: User | None = None,
            *,
            last_seq: int | None = None,
            token: str | None = None,
            **kwargs: Any,
        ) -> WsClient:
            if token is None and user is not None:
                token = token_of(user)
            kwargs.setdefault("open_timeout", START_TIMEOUT_SECONDS)
            kwargs.setdefault("max_size", 4 * 2**20)
            # Only the protocol's own heartbeat: tests decide when a client is silent.
            kwargs.setdefault("ping_interval", None)
            # Tests leave frames unread; a bounded queue would stop reading the socket and
            # miss the server's close frame at teardown.
            kwargs.setdefault("max_queue", None)
            kwargs.setdefault("close_timeout", 5)
            ws = clients.enter_context(connect(server.ws_url(token=token, last_seq=last_seq), **kwargs))
            return WsClient(ws)

        yield open_client


@pytest.fixture
def private_redis() -> Iterator[RedisProcess]:
    """A redis-server of this test's own (see RedisProcess)."""
    require_server("redis-server", shutil.which("redis-server") is not None, "PATH")
    server = RedisProcess()
    server.start()
    yield server
    server.kill()
