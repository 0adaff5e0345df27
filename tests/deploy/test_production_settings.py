"""deploy/ims.env.example is a production configuration Django itself approves of
(`manage.py check --deploy`), while the defaults keep `make run` and the tests on plain
http working as before."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.db import connection

from tests.deploy.kit import env_file_values, production_env
from tests.e2e.harness import BASE_DIR, database_url


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_kits_environment_file(tmp_path):
    env = production_env(IMS_VAR_DIR=str(tmp_path))

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_kits_environment_file_without_a_secret_key_refuses_to_start(tmp_path):
    env = production_env(IMS_VAR_DIR=str(tmp_path), DJANGO_SECRET_KEY="")
    assert env_file_values()["DJANGO_SECRET_KEY"] == ""  # the operator makes one

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in production" in result.stderr


def test_the_defaults_stay_those_of_plain_http_development(settings):
    """What `make run` and the test servers get with none of the variables set."""
    assert (settings.IMS_HTTPS, settings.SECURE_SSL_REDIRECT) == (False, False)
    assert (settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE) == (False, False)
    assert settings.SECURE_PROXY_SSL_HEADER is None
    assert settings.SECURE_HSTS_SECONDS == 0
    assert [host for host in settings.ALLOWED_HOSTS if host != "testserver"] == [
        "127.0.0.1",
        "localhost",
        "[::1]",
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PgBouncer pools PostgreSQL connections")
def test_behind_a_transaction_pooler_no_prepared_statement_or_server_side_cursor_is_used(tmp_path):
    env = production_env(
        IMS_VAR_DIR=str(tmp_path), DATABASE_URL=database_url(), IMS_DB_TRANSACTION_POOLER="1"
    )
    probe = (
        "from django.db import connection; connection.ensure_connection(); "
        "settings = connection.settings_dict; "
        "print(connection.connection.prepare_threshold, settings['DISABLE_SERVER_SIDE_CURSORS'])"
    )

    result = manage("shell", "-c", probe, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["None", "True"], result.stdout
