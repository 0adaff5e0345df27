"""Handshake: token, ticket or session cookie with a same-site Origin; everything else is
refused before `101 Switching Protocols` (PROTOCOL.md, Endpoint and authentication)."""

from __future__ import annotations

import datetime as dt
import logging
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from messaging.models import User, WsTicket
from messaging.services.tickets import ws_ticket_issue
from tests.factories import UserFactory
from tests.messaging.wsclient import (
    refused,
    session_cookie,
    session_headers,
    token_key,
    ws_connect,
    ws_isolation,  # noqa: F401  (fixture)
    ws_path,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ws_isolation")]


def issue_ticket(user: User) -> str:
    return ws_ticket_issue(user_id=user.pk).key


# --- refused ----------------------------------------------------------------------------


async def test_a_connection_without_credentials_is_refused(alice):
    assert await refused("/ws/")


async def test_a_wrong_token_is_refused(alice):
    assert await refused(ws_path(token="not-a-token"))


async def test_an_empty_token_is_refused(alice):
    assert await refused("/ws/?token=")


async def test_a_revoked_token_is_refused(alice):
    key = await database_sync_to_async(token_key)(alice)
    await database_sync_to_async(Token.objects.filter(key=key).delete)()

    assert await refused(ws_path(token=key))


async def test_the_token_of_an_inactive_user_is_refused():
    user = await database_sync_to_async(UserFactory)(username="gone", is_active=False)
    key = await database_sync_to_async(token_key)(user)

    assert await refused(ws_path(token=key))


async def test_an_unknown_ticket_is_refused(alice):
    assert await refused(ws_path(ticket="no-such-ticket"))


async def test_an_expired_ticket_is_refused(alice):
    ticket = await database_sync_to_async(issue_ticket)(alice)
    await database_sync_to_async(WsTicket.objects.filter(key=ticket).update)(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )

    assert await refused(ws_path(ticket=ticket))


async def test_a_ticket_works_once(alice):
    ticket = await database_sync_to_async(issue_ticket)(alice)
    async with ws_connect(path=ws_path(ticket=ticket)) as ws:
        assert ws.hello["user_id"] == alice.pk

    assert await refused(ws_path(ticket=ticket))


async def test_the_ticket_of_a_user_made_inactive_is_refused(alice):
    ticket = await database_sync_to_async(issue_ticket)(alice)
    await database_sync_to_async(User.objects.filter(pk=alice.pk).update)(is_active=False)

    assert await refused(ws_path(ticket=ticket))


async def test_a_session_cookie_from_a_foreign_origin_is_refused(alice):
    cookie = await database_sync_to_async(session_cookie)(alice)

    assert await refused("/ws/", headers=session_headers(cookie, origin="https://evil.example"))


@pytest.mark.parametrize(
    "origin",
    [
        "null",
        "http://127.0.0.1.evil.example",
        "http://evil.example/?http://127.0.0.1",
        "http://[::1",
        "file://",
        "not a url",
    ],
)
async def test_a_session_cookie_with_an_origin_that_names_no_allowed_host_is_refused(alice, origin):
    cookie = await database_sync_to_async(session_cookie)(alice)

    assert await refused("/ws/", headers=session_headers(cookie, origin=origin))


async def test_a_wildcard_in_allowed_hosts_still_refuses_a_foreign_origin(alice, settings):
    settings.ALLOWED_HOSTS = ["*"]
    cookie = await database_sync_to_async(session_cookie)(alice)
    headers = [*session_headers(cookie, origin="https://evil.example"), (b"host", b"chat.example.com")]

    assert await refused("/ws/", headers=headers)


async def test_a_wildcard_in_allowed_hosts_accepts_the_origin_of_the_page_itself(alice, settings):
    settings.ALLOWED_HOSTS = ["*"]
    cookie = await database_sync_to_async(session_cookie)(alice)
    headers = [*session_headers(cookie, origin="https://chat.example.com"), (b"host", b"chat.example.com")]
    async with ws_connect(path="/ws/", headers=headers) as ws:
        assert ws.hello["user_id"] == alice.pk


async def test_a_session_cookie_without_origin_is_refused(alice):
    cookie = await database_sync_to_async(session_cookie)(alice)

    assert await refused("/ws/", headers=session_headers(cookie, origin=None))


async def test_a_stale_session_cookie_is_refused(alice):
    assert await refused("/ws/", headers=session_headers("sessionid=no-such-session"))


async def test_the_session_of_a_user_made_inactive_is_refused(alice):
    cookie = await database_sync_to_async(session_cookie)(alice)
    await database_sync_to_async(User.objects.filter(pk=alice.pk).update)(is_active=False)

    assert await refused("/ws/", headers=session_headers(cookie))


# --- accepted ---------------------------------------------------------------------------


async def test_a_token_connects_without_origin(alice):
    async with ws_connect(alice) as ws:
        assert ws.hello["user_id"] == alice.pk
        await ws.assert_alive()


async def test_a_token_connects_whatever_the_origin(alice):
    # The holder of the token is the user; Origin matters only for ambient cookies.
    key = await database_sync_to_async(token_key)(alice)
    async with ws_connect(path=ws_path(token=key), headers=[(b"origin", b"https://elsewhere.example")]) as ws:
        assert ws.hello["user_id"] == alice.pk


async def test_a_ticket_connects(alice):
    ticket = await database_sync_to_async(issue_ticket)(alice)
    async with ws_connect(path=ws_path(ticket=ticket)) as ws:
        assert ws.hello["user_id"] == alice.pk
        await ws.assert_alive()


@pytest.mark.parametrize("origin", ["http://127.0.0.1", "http://localhost:8000", "https://127.0.0.1:8443"])
async def test_a_session_cookie_with_a_same_site_origin_connects(alice, origin):
    cookie = await database_sync_to_async(session_cookie)(alice)
    async with ws_connect(path="/ws/", headers=session_headers(cookie, origin=origin)) as ws:
        assert ws.hello["user_id"] == alice.pk
        await ws.assert_alive()


async def test_a_session_cookie_with_an_ipv6_loopback_origin_connects(alice):
    # ALLOWED_HOSTS spells the IPv6 loopback "[::1]", as the Host header does.
    cookie = await database_sync_to_async(session_cookie)(alice)
    async with ws_connect(path="/ws/", headers=session_headers(cookie, origin="http://[::1]:8000")) as ws:
        assert ws.hello["user_id"] == alice.pk


async def test_hello_is_the_first_frame_and_carries_the_protocol_fields(alice, settings):
    settings.IMS_HEARTBEAT_SECONDS = 25
    async with ws_connect(alice) as ws:
        assert ws.hello == {
            "type": "hello",
            "protocol": 1,
            "user_id": alice.pk,
            "heartbeat_s": 25,
            "last_seq": 0,
        }
        assert ws.replay == {"type": "offline_messages", "items": [], "more": False, "truncated": False}


async def test_a_whole_heartbeat_is_sent_as_an_integer(alice, settings):
    settings.IMS_HEARTBEAT_SECONDS = 30.0  # as read from IMS_HEARTBEAT_SECONDS=30
    async with ws_connect(alice) as ws:
        assert type(ws.hello["heartbeat_s"]) is int


async def test_a_session_ended_by_a_password_change_is_refused(alice):
    cookie = await database_sync_to_async(session_cookie)(alice)

    def change_password() -> None:
        user = User.objects.get(pk=alice.pk)
        user.set_password("a-new-long-passphrase")
        user.save()

    await database_sync_to_async(change_password)()

    assert await refused("/ws/", headers=session_headers(cookie))


async def test_the_token_is_never_written_to_the_log(alice, bob, caplog):
    caplog.set_level(logging.DEBUG)
    key = await database_sync_to_async(token_key)(alice)
    assert await refused(ws_path(token=key[::-1]))
    with mock.patch("messaging.batching.messages_send", side_effect=RuntimeError("boom")):
        async with ws_connect(path=ws_path(token=key)) as ws:
            await ws.send(
                {"type": "send", "client_msg_id": "x", "to": bob.pk, "msg_type": "text", "content": "x"}
            )
            assert (await ws.receive_type("error"))["code"] == "server_error"
    assert "boom" in caplog.text  # the failure was logged ...
    assert key not in caplog.text  # ... without the credential
    assert key[::-1] not in caplog.text


async def test_a_wrong_token_is_refused_even_beside_a_valid_session(alice):
    cookie = await database_sync_to_async(session_cookie)(alice)

    assert await refused(ws_path(token="not-a-token"), headers=session_headers(cookie))


def ticket_over_rest(user: User) -> str:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_key(user)}")
    response = client.post("/api/ws-ticket/")
    assert response.status_code == 201, response.content
    return response.json()["ticket"]


async def test_a_ticket_from_the_rest_api_connects_once(alice):
    ticket = await database_sync_to_async(ticket_over_rest)(alice)
    async with ws_connect(path=ws_path(ticket=ticket)) as ws:
        assert ws.hello["user_id"] == alice.pk
    assert await refused(ws_path(ticket=ticket))
