"""Sign-in against real daphne processes: failures counted by one process hold in every
other, and a token revoked over HTTP closes its user's sockets."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest
from django.test import Client
from websockets.exceptions import InvalidStatus

from tests.conftest import token_of
from tests.e2e.harness import START_TIMEOUT_SECONDS, DaphneServer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

URL = "/api/auth/token/"


def call(
    server: DaphneServer, method: str, body: dict[str, Any] | None = None, *, token: str | None = None
) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body or None) of one request to the token endpoint."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Token {token}"
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=START_TIMEOUT_SECONDS)
    try:
        connection.request(method, URL, body=None if body is None else json.dumps(body), headers=headers)
        response = connection.getresponse()
        raw = response.read()
        return response.status, dict(response.getheaders()), json.loads(raw) if raw else None
    finally:
        connection.close()


def test_failures_counted_by_one_server_process_lock_the_account_in_every_other_and_here(start_server, alice):
    # No waits between guesses, so the test need not wait them out; the lock still comes at
    # the tenth failure and lasts the default 15 minutes.
    first = start_server(IMS_SIGNIN_DELAY_SECONDS="0")
    second = start_server(IMS_SIGNIN_DELAY_SECONDS="0")

    guesses = [call(first, "POST", {"username": "alice", "password": f"guess-{n}"}) for n in range(10)]
    assert [status for status, _, _ in guesses] == [400] * 10

    status, headers, body = call(second, "POST", {"username": "alice", "password": "correct-horse-battery"})
    assert status == 429
    assert body["code"] == "rate_limited"
    assert int(headers["Retry-After"]) > 800

    page = Client().post("/login/", {"username": "alice", "password": "correct-horse-battery"})
    assert page.status_code == 200
    assert "Too many sign-in attempts. Try again in" in page.content.decode()


def test_revoking_the_token_over_http_closes_the_users_websockets_with_4403(server, ws_connect, bob):
    token = token_of(bob)
    client = ws_connect(server, bob)
    client.handshake()

    status, _, body = call(server, "DELETE", token=token)

    assert (status, body) == (204, None)
    assert client.close_code(timeout=10) == 4403
    with pytest.raises(InvalidStatus):
        ws_connect(server, token=token)


@pytest.mark.redis
def test_revoking_through_one_process_closes_the_users_websockets_on_another(
    start_server, ws_connect, bob, redis_url
):
    token = token_of(bob)
    first = start_server(REDIS_URL=redis_url)
    second = start_server(REDIS_URL=redis_url)
    client = ws_connect(second, bob)
    client.handshake()

    assert call(first, "DELETE", token=token)[0] == 204

    assert client.close_code(timeout=10) == 4403
