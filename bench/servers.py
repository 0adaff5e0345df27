"""Start and stop daphne processes for the benchmarks, and read their memory."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Twisted listens with a backlog of 50: 10,000 clients connecting at once overflowed it,
# and their SYNs were retried after 1, 3, 7, 15, ... s (handshakes timed out after 120 s).
# The kernel caps it at net.core.somaxconn (4096 here).
BACKLOG = 4096
CONNECT_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _raise_open_files_limit() -> None:
    """Up to the hard limit (20,000 here): a server holds a file per connection."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    """One daphne process serving `app` (an ASGI path) on a free port."""

    def __init__(self, app: str, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [
                str(BIN / "daphne"),
                "-e",
                f"tcp:port={self.port}:interface=127.0.0.1:backlog={BACKLOG}",
                # daphne drops a handshake the application has not accepted within 5 s by
                # default; in a storm of 10,000 the last ones wait longer than that.
                f"--websocket_connect_timeout={CONNECT_TIMEOUT_SECONDS}",
                app,
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=_raise_open_files_limit,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{app} exited; see {log}") from None
                time.sleep(0.1)
        raise RuntimeError(f"{app} did not listen within 30 s; see {log}")

    def url(self, query: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/?{query}"

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
