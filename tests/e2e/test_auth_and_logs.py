"""Handshake refusal, and credentials that never reach a log."""

from __future__ import annotations

import datetime as dt
import http.client
import json

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from messaging.models import WsTicket
from messaging.services.tickets import ws_ticket_issue
from tests.conftest import token_of
from tests.e2e.harness import START_TIMEOUT_SECONDS, send_text

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FORGED_TOKEN = "0123456789abcdef0123456789abcdef01234567"


def refused_status(url: str, **kwargs) -> int:
    """The HTTP status of a refused handshake; fails the test if the server says 101."""
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=START_TIMEOUT_SECONDS, **kwargs).close()
    return refused.value.response.status_code


def hello_user_id(ws) -> int:
    hello = json.loads(ws.recv(timeout=START_TIMEOUT_SECONDS))
    assert hello["type"] == "hello"
    return hello["user_id"]


def session_cookie_of(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def test_bad_credentials_are_refused_with_403_never_101(server, alice, bob):
    assert refused_status(server.ws_url(token=FORGED_TOKEN)) == 403
    assert refused_status(server.ws_url(token="")) == 403
    assert refused_status(server.ws_url()) == 403  # no credentials at all

    bob.is_active = False
    bob.save(update_fields=["is_active"])
    assert refused_status(server.ws_url(token=token_of(bob))) == 403

    revoked = token_of(alice)
    alice.auth_token.delete()
    assert refused_status(server.ws_url(token=revoked)) == 403


def test_a_ticket_works_once_and_not_after_it_expires(server, alice):
    ticket = ws_ticket_issue(user_id=alice.pk).key
    with connect(server.ws_url(ticket=ticket), open_timeout=START_TIMEOUT_SECONDS) as ws:
        assert hello_user_id(ws) == alice.pk
    assert refused_status(server.ws_url(ticket=ticket)) == 403

    stale = ws_ticket_issue(user_id=alice.pk)
    WsTicket.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert refused_status(server.ws_url(ticket=stale.key)) == 403


def test_a_session_cookie_works_only_with_a_same_site_origin(server, alice):
    cookie = {"Cookie": session_cookie_of(alice)}
    for origin in ("http://evil.example", "https://127.0.0.1.evil.example", "null"):
        status = refused_status(server.ws_url(), additional_headers=cookie, origin=origin)
        assert status == 403, origin
    # A non-browser client carrying a stolen cookie but no Origin is refused too.
    assert refused_status(server.ws_url(), additional_headers=cookie) == 403

    with connect(
        server.ws_url(), additional_headers=cookie, origin=server.origin, open_timeout=START_TIMEOUT_SECONDS
    ) as ws:
        assert hello_user_id(ws) == alice.pk


def secrets_in_logs(server, secrets: list[str]) -> list[str]:
    logs = {"access log": server.access(), "stderr": server.stderr()}
    return [f"{secret[:6]}… in {name}" for secret in secrets for name, text in logs.items() if secret in text]


def test_the_token_never_appears_in_the_access_log_or_stderr(start_server, ws_connect, alice, bob):
    # Debug logging everywhere: whatever daphne or the app log, the token must not be in it.
    server = start_server(verbosity=2, IMS_LOG_LEVEL="DEBUG")
    secrets = [token_of(alice), token_of(bob), FORGED_TOKEN]

    sender = ws_connect(server, alice)
    sender.handshake()
    receiver = ws_connect(server, bob, last_seq=0)
    receiver.handshake()
    send_text(sender, to=bob, content="hello")
    sender.recv_type("sent")
    receiver.recv_type("message")
    receiver.send_raw("{garbage")
    receiver.recv_type("error")
    assert refused_status(server.ws_url(token=FORGED_TOKEN)) == 403
    ticket = ws_ticket_issue(user_id=alice.pk).key
    secrets.append(ticket)
    with connect(server.ws_url(ticket=ticket), open_timeout=START_TIMEOUT_SECONDS) as ws:
        ws.recv(timeout=START_TIMEOUT_SECONDS)
    sender.close()
    receiver.close()

    assert "WSCONNECTING /ws/" in server.access(), "the access log was written"
    assert secrets_in_logs(server, secrets) == []


def test_the_token_never_appears_in_the_access_log_when_the_upgrade_is_missing(server, alice):
    # A proxy that strips the Upgrade header turns the handshake into a plain GET.
    token = token_of(alice)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=START_TIMEOUT_SECONDS)
    connection.request("GET", f"/ws/?token={token}")
    status = connection.getresponse().status
    connection.close()
    assert status in {400, 403, 404, 426}
    assert "GET /ws/" in server.access(), "the access log was written"
    assert secrets_in_logs(server, [token]) == []
