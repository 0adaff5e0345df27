"""The request body limits as ASGI middleware (imsproject.request_limits), on any ASGI server:
what the headers show is answered before a byte of body is read, a streamed body is cut off
as soon as it passes its route's limit, and everything else reaches Django unchanged.

The real daphne, which reads bodies before the application runs, is in
tests/e2e/test_request_bodies.py.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.signals import request_finished
from django.db import connections
from django.test import Client

from imsproject.asgi import application, django_http
from imsproject.request_limits import RequestBodyLimits, route_rules
from messaging.models import Message
from messaging.views.upload_limit import MULTIPART_OVERHEAD_BYTES
from tests.conftest import token_of

MIB = 2**20


@dataclass
class Exchange:
    """One request through an ASGI application: what it answered, and how much of the body
    it pulled."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks_read: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


async def exchange(
    app: Any,
    path: str,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    chunks: list[bytes] | None = None,
    announce_length: bool = True,
) -> Exchange:
    """Send a request whose body comes in `chunks` (announced with a Content-Length, or not,
    as a chunked body arrives), and collect the answer."""
    chunks = chunks if chunks is not None else [b""]
    all_headers = {name.lower(): value for name, value in (headers or {}).items()}
    if announce_length:
        all_headers["content-length"] = str(sum(map(len, chunks)))
    else:
        all_headers["transfer-encoding"] = "chunked"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(name.encode(), value.encode()) for name, value in all_headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    result = Exchange()

    async def receive() -> dict[str, Any]:
        if result.chunks_read < len(chunks):
            result.chunks_read += 1
            more = result.chunks_read < len(chunks)
            return {"type": "http.request", "body": chunks[result.chunks_read - 1], "more_body": more}
        await asyncio.Event().wait()  # the client stays until the answer is complete
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            result.status = message["status"]
            result.headers = {name.decode().lower(): value.decode() for name, value in message["headers"]}
        else:
            result.body += message.get("body", b"")

    await app(scope, receive, send)
    return result


class StandInApp:
    """An ASGI application standing in for Django: reads the whole body, answers 200."""

    def __init__(self) -> None:
        self.called = False
        self.body = b""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.called = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            self.body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read"})


def close_connections(**kwargs: Any) -> None:
    connections.close_all()


@pytest.fixture(autouse=True)
async def database_connections_closed():
    """Connections the ORM opened outside the test's own thread are closed after it:
    PostgreSQL would not drop the test database while one is open (CONN_MAX_AGE keeps
    them). Django runs each request's views in a thread of its own, the credential checks
    run in asgiref's worker thread."""
    request_finished.connect(close_connections)
    yield
    request_finished.disconnect(close_connections)
    await sync_to_async(connections.close_all, thread_sensitive=True)()


@pytest.fixture
def alice_auth(alice) -> dict[str, str]:
    return {"Authorization": f"Token {token_of(alice)}"}


# --- what a route takes ---------------------------------------------------------------------


def test_api_routes_need_credentials_and_take_the_default_limit(settings):
    settings.IMS_MAX_REQUEST_BYTES = 5000
    for path in ("/api/messages/", "/api/conversations/7/members/", "/api/push/vapid-public-key/"):
        rules = route_rules(path, "POST")
        assert rules.needs_credentials, path
        assert rules.max_body_bytes == 5000


def test_public_pages_and_unknown_paths_need_no_credentials():
    for path in ("/api/schema/", "/login/", "/admin/login/", "/static/ims/chat.css", "/ws/", "/api/nowhere/"):
        assert not route_rules(path, "POST").needs_credentials, path


def test_signing_in_for_a_token_needs_no_credentials_but_revoking_one_does():
    assert not route_rules("/api/auth/token/", "POST").needs_credentials
    assert route_rules("/api/auth/token/", "DELETE").needs_credentials


def test_uploads_keep_their_own_larger_limit(settings):
    settings.IMS_MAX_UPLOAD_BYTES = 3 * MIB

    rules = route_rules("/api/conversations/7/uploads/", "POST")

    assert rules.max_body_bytes == 3 * MIB + MULTIPART_OVERHEAD_BYTES
    assert rules.needs_credentials


def test_the_admin_takes_what_django_accepts_as_form_data(settings):
    settings.IMS_MAX_REQUEST_BYTES = 5000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

    assert route_rules("/admin/messaging/user/1/change/", "POST").max_body_bytes == 2_621_440
    assert not route_rules("/admin/messaging/user/1/change/", "POST").needs_credentials


# --- refused before the body ----------------------------------------------------------------


async def test_a_body_announced_over_the_routes_limit_gets_413_and_the_application_never_runs(alice_auth):
    app = StandInApp()

    answer = await exchange(
        RequestBodyLimits(app), "/api/messages/", headers=alice_auth, chunks=[b"x" * (MIB + 1)]
    )

    assert answer.status == 413
    assert answer.json() == {"code": "too_large", "detail": f"request bodies here are limited to {MIB} bytes"}
    assert answer.chunks_read == 0
    assert not app.called


async def test_a_page_outside_the_api_gets_a_plain_413(settings):
    settings.IMS_MAX_REQUEST_BYTES = 1000

    answer = await exchange(RequestBodyLimits(StandInApp()), "/login/", chunks=[b"x" * 1001])

    assert answer.status == 413
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.body == b"request bodies here are limited to 1000 bytes\n"


@pytest.mark.django_db(transaction=True)
async def test_a_post_without_credentials_gets_drfs_401_before_its_body_is_read():
    body = json.dumps({"to": 1, "msg_type": "text", "content": "hi"}).encode()

    early = await exchange(application, "/api/messages/", chunks=[body])
    from_drf = await exchange(django_http, "/api/messages/", chunks=[body])

    assert early.chunks_read == 0
    assert early.status == from_drf.status == 401
    assert early.headers["www-authenticate"] == from_drf.headers["www-authenticate"] == "Token"
    assert early.headers["content-type"] == from_drf.headers["content-type"] == "application/json"
    assert early.json() == from_drf.json() == {"detail": "Authentication credentials were not provided."}


@pytest.mark.django_db(transaction=True)
async def test_a_made_up_token_with_a_large_body_gets_401_before_the_body_is_read():
    app = StandInApp()

    answer = await exchange(
        RequestBodyLimits(app),
        "/api/conversations/1/uploads/",
        headers={"Authorization": "Token made-up"},
        chunks=[b"x" * 100_000],
    )

    assert answer.status == 401
    assert answer.json() == {"detail": "Invalid token."}
    assert answer.chunks_read == 0
    assert not app.called


@pytest.mark.django_db(transaction=True)
async def test_a_session_that_does_not_exist_buys_no_large_body():
    app = StandInApp()

    answer = await exchange(
        RequestBodyLimits(app),
        "/api/conversations/1/uploads/",
        headers={"Cookie": "sessionid=made-up"},
        chunks=[b"x" * 100_000],
        announce_length=False,
    )

    assert answer.status == 401
    assert answer.chunks_read == 0


@pytest.mark.django_db(transaction=True)
async def test_a_signed_in_session_and_a_real_token_may_send_large_bodies(alice, alice_auth):
    browser = Client()
    await sync_to_async(browser.force_login)(alice)
    session = browser.cookies["sessionid"].value
    for headers in ({"Cookie": f"sessionid={session}"}, alice_auth):
        app = StandInApp()

        answer = await exchange(
            RequestBodyLimits(app), "/api/conversations/1/uploads/", headers=headers, chunks=[b"x" * 100_000]
        )

        assert answer.status == 200
        assert len(app.body) == 100_000


# --- cut off while streaming ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_streamed_body_passing_its_limit_gets_413_and_the_rest_is_never_read(settings, alice_auth):
    settings.IMS_MAX_REQUEST_BYTES = 1000
    app = StandInApp()

    answer = await exchange(
        RequestBodyLimits(app),
        "/api/messages/",
        headers=alice_auth,
        chunks=[b"x" * 400] * 10,
        announce_length=False,
    )

    assert answer.status == 413
    assert answer.json()["code"] == "too_large"
    assert answer.chunks_read == 3  # 1200 bytes: past the limit, and not one chunk more
    assert app.body == b"x" * 800  # the application got a disconnect instead of the third


@pytest.mark.django_db(transaction=True)
async def test_django_answers_nothing_to_a_body_cut_off_and_stores_nothing(settings, alice_auth, bob):
    settings.IMS_MAX_REQUEST_BYTES = 1000
    body = json.dumps({"to": bob.pk, "msg_type": "text", "content": "x" * 2000}).encode()

    answer = await exchange(
        application,
        "/api/messages/",
        headers={**alice_auth, "Content-Type": "application/json"},
        chunks=[body[:600], body[600:1200], body[1200:]],
        announce_length=False,
    )

    assert answer.status == 413
    assert answer.json()["code"] == "too_large"
    assert not await Message.objects.aexists()


@pytest.mark.django_db(transaction=True)
async def test_an_upload_streams_past_the_default_limit_up_to_its_own(settings, alice_auth):
    settings.IMS_MAX_REQUEST_BYTES = 1000
    settings.IMS_MAX_UPLOAD_BYTES = 5000
    app = StandInApp()

    answer = await exchange(
        RequestBodyLimits(app),
        "/api/conversations/1/uploads/",
        headers=alice_auth,
        chunks=[b"x" * 1000] * 5,
        announce_length=False,
    )

    assert answer.status == 200
    assert len(app.body) == 5000


# --- everything else unchanged --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_an_authenticated_request_within_the_limit_reaches_django_unchanged(alice_auth, bob):
    body = json.dumps({"to": bob.pk, "msg_type": "text", "content": "hi", "client_msg_id": "c-1"}).encode()

    headers = {**alice_auth, "Content-Type": "application/json"}

    answer = await exchange(application, "/api/messages/", headers=headers, chunks=[body])

    assert answer.status == 201, answer.body
    assert answer.json()["content"] == "hi"
    assert await Message.objects.filter(content="hi").aexists()


@pytest.mark.django_db(transaction=True)
async def test_a_request_without_a_body_is_left_to_drf_which_answers_401_itself():
    answer = await exchange(application, "/api/conversations/", method="GET")

    assert answer.status == 401
    assert answer.headers["www-authenticate"] == "Token"
    assert answer.headers["allow"] == "GET, POST, HEAD, OPTIONS"  # DRF's own answer, not ours


@pytest.mark.django_db(transaction=True)
async def test_a_public_route_answers_without_credentials():
    answer = await exchange(application, "/api/schema/", method="GET")

    assert answer.status == 200


async def test_other_protocols_pass_through_untouched():
    seen = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await RequestBodyLimits(app)({"type": "websocket", "path": "/ws/"}, None, None)
    await RequestBodyLimits(app)({"type": "lifespan"}, None, None)

    assert seen == ["websocket", "lifespan"]
