"""Huge request bodies against a real daphne: refused at the headers, or cut off as soon as
they pass their route's limit, without the server holding them in memory.

Before, an unauthenticated 200 MiB POST grew the server by 204 MiB (209 MiB at its peak)
before it answered 401: daphne read the whole body, then queued all of it for the
application. Eight at once: the same.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.test import Client

from tests.conftest import token_of
from tests.e2e.harness import DaphneServer
from tests.e2e.raw_http import RawResponse, request
from tests.e2e.silent_socket import peak_rss_bytes, reset_peak_rss, rss_bytes
from tests.factories import GroupFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MIB = 2**20
HUGE_BYTES = 200 * MIB
# What answering a refused request may cost: the refusal itself, a socket read or two of
# body, and the allocator's slack (it measured 0.0 MiB). Reading the body cost 204 MiB.
GROWTH_BOUND_BYTES = 8 * MIB
# A refusal at the headers takes milliseconds. Generous, for a machine shared with other
# test runs (over loopback even reading the whole body took only half a second).
REFUSAL_SECONDS = 5.0
# The client stops sending when the answer arrives; what it wrote before that sits in
# socket buffers (the kernel's may take 30 MiB and more on loopback), never in the server.
SENT_BEFORE_ANSWER_BOUND_BYTES = 64 * MIB


def huge_post(server: DaphneServer, path: str, *, chunked: bool, **headers: str) -> RawResponse:
    return request(port=server.port, path=path, body_bytes=HUGE_BYTES, chunked=chunked, headers=headers)


def assert_refused_at_once(response: RawResponse) -> None:
    assert response.seconds < REFUSAL_SECONDS, f"answered after {response.seconds:.1f} s"
    assert response.body_bytes_sent < SENT_BEFORE_ANSWER_BOUND_BYTES, (
        f"{response.body_bytes_sent / MIB:.0f} MiB of the body went out before the answer"
    )


def warmed_up_rss(server: DaphneServer) -> int:
    """The server's memory once it has answered the kinds of requests a test sends; its peak
    memory starts again from there."""
    for chunked in (False, True):
        request(port=server.port, path="/api/messages/", body_bytes=100, chunked=chunked)
    reset_peak_rss(server.process.pid)
    return rss_bytes(server.process.pid)


def assert_still_serves(server: DaphneServer, user) -> None:
    response = httpx.get(
        f"{server.origin}/api/conversations/", headers={"Authorization": f"Token {token_of(user)}"}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_200_mib_post_without_credentials_gets_401_before_its_body_is_read(server, alice, chunked):
    before = warmed_up_rss(server)

    response = huge_post(server, "/api/messages/", chunked=chunked)

    growth = peak_rss_bytes(server.process.pid) - before
    assert response.status == 401
    assert response.headers["www-authenticate"] == "Token"
    assert json.loads(response.body) == {"detail": "Authentication credentials were not provided."}
    assert_refused_at_once(response)
    assert growth < GROWTH_BOUND_BYTES, f"daphne grew by {growth / MIB:.1f} MiB at its peak"
    assert_still_serves(server, alice)
    assert '"POST /api/messages/" 401' in server.access()


def test_many_200_mib_posts_at_once_do_not_grow_the_server(server, alice):
    before = warmed_up_rss(server)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(
            pool.map(lambda n: huge_post(server, "/api/messages/", chunked=n % 2 == 1), range(8))
        )

    growth = peak_rss_bytes(server.process.pid) - before
    assert [response.status for response in responses] == [401] * 8
    assert max(response.seconds for response in responses) < REFUSAL_SECONDS
    assert growth < GROWTH_BOUND_BYTES, f"daphne grew by {growth / MIB:.1f} MiB at its peak"
    assert_still_serves(server, alice)


# Announced, an upload within its limit (20 MiB); chunked, as huge as ever.
@pytest.mark.parametrize(
    ("chunked", "body_bytes"), [(False, 20 * MIB), (True, HUGE_BYTES)], ids=["content-length", "chunked"]
)
def test_a_made_up_token_gets_401_before_an_upload_is_read(server, alice, chunked, body_bytes):
    group = GroupFactory(members=[alice])
    before = warmed_up_rss(server)

    response = request(
        port=server.port,
        path=f"/api/conversations/{group.pk}/uploads/",
        body_bytes=body_bytes,
        chunked=chunked,
        headers={"Authorization": "Token made-up"},
    )

    growth = peak_rss_bytes(server.process.pid) - before
    assert response.status == 401
    assert json.loads(response.body) == {"detail": "Invalid token."}
    assert_refused_at_once(response)
    assert growth < GROWTH_BOUND_BYTES, f"daphne grew by {growth / MIB:.1f} MiB at its peak"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_authenticated_json_body_over_the_limit_gets_413(server, alice, chunked):
    before = warmed_up_rss(server)

    response = huge_post(server, "/api/messages/", chunked=chunked, Authorization=f"Token {token_of(alice)}")

    growth = peak_rss_bytes(server.process.pid) - before
    assert response.status == 413
    assert json.loads(response.body) == {
        "code": "too_large",
        "detail": f"request bodies here are limited to {MIB} bytes",
    }
    assert_refused_at_once(response)
    assert growth < GROWTH_BOUND_BYTES, f"daphne grew by {growth / MIB:.1f} MiB at its peak"
    assert_still_serves(server, alice)


def test_a_json_body_within_the_limit_is_sent(server, alice, bob):
    response = httpx.post(
        f"{server.origin}/api/messages/",
        headers={"Authorization": f"Token {token_of(alice)}"},
        # Half a megabyte: far past what daphne keeps in memory, within IMS_MAX_REQUEST_BYTES.
        json={"to": bob.pk, "msg_type": "text", "content": "hi", "unknown": "y" * 500_000},
    )

    assert response.status_code == 201, response.text


def test_a_small_chunked_body_with_a_real_token_reaches_the_application(server, alice, bob):
    # Chunked, the body's size is unknown, so the token is checked first; the whole body is
    # in by then, and waits for the check.
    body = json.dumps({"to": bob.pk, "msg_type": "text", "content": "chunked hi"}).encode()

    response = request(
        port=server.port,
        path="/api/messages/",
        headers={"Authorization": f"Token {token_of(alice)}", "Content-Type": "application/json"},
        body=body,
        chunked=True,
    )

    # DRF reads no body without a Content-Length (as before): the view's own 400 proves
    # the request got past the check to the application.
    assert response.status == 400, response.body
    assert json.loads(response.body)["code"] == "bad_request"


def test_an_upload_keeps_its_own_larger_limit(start_server, alice):
    server = start_server(IMS_MAX_UPLOAD_BYTES=str(3 * MIB))
    group = GroupFactory(members=[alice])
    url = f"{server.origin}/api/conversations/{group.pk}/uploads/"
    auth = {"Authorization": f"Token {token_of(alice)}"}

    within = httpx.post(url, headers=auth, files={"file": ("big.bin", b"x" * (2 * MIB))})
    over = httpx.post(url, headers=auth, files={"file": ("bigger.bin", b"x" * (4 * MIB))})

    assert within.status_code == 201, within.text
    assert within.json()["size"] == 2 * MIB
    assert over.status_code == 413
    assert over.json() == {
        "code": "too_large",
        "detail": f"files are limited to {3 * MIB} bytes",
        "file": [f"files are limited to {3 * MIB} bytes"],
    }


def test_a_signed_in_browser_session_uploads_a_file_larger_than_what_is_read_unchecked(server, alice):
    group = GroupFactory(members=[alice])
    browser = Client()
    browser.force_login(alice)
    csrf_token = "c" * 32

    response = httpx.post(
        f"{server.origin}/api/conversations/{group.pk}/uploads/",
        cookies={"sessionid": browser.cookies["sessionid"].value, "csrftoken": csrf_token},
        headers={"X-CSRFToken": csrf_token},
        files={"file": ("photo.bin", b"p" * (1 * MIB))},
    )

    assert response.status_code == 201, response.text
    assert response.json()["size"] == MIB


def test_a_chunked_upload_over_its_limit_is_cut_off(start_server, alice):
    server = start_server(IMS_MAX_UPLOAD_BYTES=str(3 * MIB))
    group = GroupFactory(members=[alice])
    before = warmed_up_rss(server)

    response = huge_post(
        server,
        f"/api/conversations/{group.pk}/uploads/",
        chunked=True,
        Authorization=f"Token {token_of(alice)}",
        **{"Content-Type": "multipart/form-data; boundary=b"},
    )

    growth = peak_rss_bytes(server.process.pid) - before
    assert response.status == 413
    assert json.loads(response.body)["code"] == "too_large"
    assert_refused_at_once(response)
    assert growth < GROWTH_BOUND_BYTES, f"daphne grew by {growth / MIB:.1f} MiB at its peak"


def multipart(name: str, data: bytes) -> tuple[str, bytes]:
    boundary = "ims-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return f"multipart/form-data; boundary={boundary}", body + data + f"\r\n--{boundary}--\r\n".encode()


def test_a_client_that_waits_for_100_continue_is_invited_once_its_token_checks_out(server, alice):
    group = GroupFactory(members=[alice])
    content_type, body = multipart("notes.bin", b"n" * (2 * MIB))

    response = request(
        port=server.port,
        path=f"/api/conversations/{group.pk}/uploads/",
        headers={"Authorization": f"Token {token_of(alice)}", "Content-Type": content_type},
        body=body,
        expect_continue=True,
    )

    assert response.invited
    assert response.status == 201, response.body
    assert json.loads(response.body)["size"] == 2 * MIB


@pytest.mark.parametrize("token", [None, "made-up"], ids=["no credentials", "a made-up token"])
def test_a_client_that_waits_for_100_continue_gets_401_without_an_invitation(server, alice, token):
    group = GroupFactory(members=[alice])

    response = request(
        port=server.port,
        path=f"/api/conversations/{group.pk}/uploads/",
        headers={"Authorization": f"Token {token}"} if token else {},
        body_bytes=2 * MIB,
        expect_continue=True,
    )

    assert response.status == 401
    assert not response.invited
    assert response.body_bytes_sent == 0
