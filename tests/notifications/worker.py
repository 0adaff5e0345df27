"""A real Celery worker process for the integration tests, on the suite's broker and database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.harness import BASE_DIR, database_url

CELERY = Path(sys.executable).with_name("celery")
START_TIMEOUT_SECONDS = 60.0


class CeleryWorker:
    """`celery -A imsproject worker` on its own queue; kill() is kill -9 of the whole worker."""

    def __init__(self, *, queue: str, env: dict[str, str], log_file: Path) -> None:
        self.queue = queue
        self.env = {**os.environ, "DATABASE_URL": database_url(), **env}
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> CeleryWorker:
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        command = [
            str(CELERY), "-A", "imsproject", "worker", "-Q", self.queue, "-c", "1", "-P", "prefork",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info",
        ]  # fmt: skip
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=BASE_DIR, env=self.env, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"celery worker exited with {self.process.returncode}:\n{self.log()}")
            if " ready." in self.log()[offset:]:
                return self
            time.sleep(0.1)
        self.kill()
        pytest.fail(f"celery worker not ready within {START_TIMEOUT_SECONDS:g} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL to the main process and its pool children: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=START_TIMEOUT_SECONDS)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
