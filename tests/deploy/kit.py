"""The deploy kit (deploy/) as the tests run it: its environment file, its systemd units'
command lines and its nginx site, with only ports and paths changed for a test machine."""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_server
from tests.e2e.harness import BASE_DIR, free_port, wait_until

DEPLOY = BASE_DIR / "deploy"
ENV_FILE = DEPLOY / "ims.env.example"
SITE_FILE = DEPLOY / "nginx" / "ims.conf"
UNITS = DEPLOY / "systemd"
# Where the units expect the checkout (WorkingDirectory, ExecStart).
INSTALLED_VENV_BIN = "/srv/ims/.venv/bin/"
NGINX = "/usr/sbin/nginx"
SITE_NAME = "chat.example.com"


def env_file_values() -> dict[str, str]:
    """deploy/ims.env.example as systemd's EnvironmentFile= reads it (KEY=VALUE lines)."""
    values = {}
    for line in ENV_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def new_secret_key() -> str:
    """As the environment file's comment tells the operator to make one."""
    return secrets.token_urlsafe(50)


def production_env(**overrides: str) -> dict[str, str]:
    """This machine's environment (PATH, ...) with the kit's environment file over it, a
    fresh secret key, and `overrides` (the test's database, Redis, state folder) last."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "IMS_", "CELERY_")) and name not in ("DATABASE_URL", "REDIS_URL")
    }
    return {**env, **env_file_values(), "DJANGO_SECRET_KEY": new_secret_key(), **overrides}


def unit_command(unit: str, *, instance: str = "") -> list[str]:
    """The ExecStart= of a unit in deploy/systemd, run from this checkout's .venv."""
    lines = [line for line in (UNITS / unit).read_text().splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, f"{unit}: one ExecStart= expected"
    command = lines[0].removeprefix("ExecStart=").replace("%i", instance)
    words = shlex.split(command)
    assert words[0].startswith(INSTALLED_VENV_BIN), words[0]
    return [str(Path(sys.executable).with_name(words[0].removeprefix(INSTALLED_VENV_BIN))), *words[1:]]


def render_site(replacements: dict[str, str]) -> str:
    """deploy/nginx/ims.conf with each of `replacements` made: each must be there, so the
    test fails rather than run a config that drifted from what it checks."""
    text = SITE_FILE.read_text()
    for old, new in replacements.items():
        assert old in text, f"{SITE_FILE.name} no longer contains {old!r}"
        text = text.replace(old, new)
    return text


class Nginx:
    """Debian's nginx as a private instance: its own prefix, config and pid in a folder,
    spare ports, nothing installed or changed system-wide."""

    def __init__(self, folder: Path, site: str) -> None:
        require_server("nginx", Path(NGINX).exists(), NGINX + " (apt-get install nginx)")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "ims.conf").write_text(site)
        # Running as root, nginx would hand its workers to `nobody`, who cannot read the
        # test's private temporary folders.
        user = "user root;" if os.geteuid() == 0 else ""
        temp_paths = "\n".join(
            f"    {kind}_temp_path {folder / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (folder / "nginx.conf").write_text(
            f"""{user}
worker_processes 1;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {folder / "access.log"};
{temp_paths}
    include {folder / "ims.conf"};
}}
"""
        )
        self.log = folder / "nginx.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, ports: list[int]) -> None:
        command = [
            NGINX, "-e", "stderr", "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"),
            "-g", f"daemon off; pid {self.folder / 'nginx.pid'}; error_log stderr;",
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        wait_until(lambda: self._listening(ports), timeout=10, what=f"nginx to listen\n{self.errors()}")

    def _listening(self, ports: list[int]) -> bool:
        if self.process is not None and self.process.poll() is not None:
            pytest.fail(f"nginx exited with {self.process.returncode}:\n{self.errors()}")
        for port in ports:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return False
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # nginx's graceful stop
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def errors(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class UnitProcess:
    """A deploy/systemd unit's command, run as systemd would (KillMode=mixed: SIGTERM to
    the main process only)."""

    def __init__(self, command: list[str], *, env: dict[str, str], log: Path, ready: str) -> None:
        self.command = command
        self.env = env
        self.log = log
        self.ready = ready
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 60) -> UnitProcess:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, cwd=BASE_DIR, env=self.env, stdout=log, stderr=log, start_new_session=True
            )

        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"{self.command[:3]} exited with {self.process.returncode}:\n{self.output()}")
            return self.ready in self.output()[offset:]

        wait_until(ready, timeout=timeout, what=f"{self.command[:3]} to be ready")
        return self

    def terminate(self, *, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def collect_static(env: dict[str, str]) -> None:
    """`manage.py collectstatic`, as docs/deploy.md has the operator run it."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
        timeout=120,
    )


def spare_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports
