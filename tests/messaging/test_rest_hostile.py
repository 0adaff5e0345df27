"""Hostile REST bodies and URLs get 400 bad_request, never 500, and store nothing."""

from __future__ import annotations

import base64

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from messaging.errors import BadRequest
from messaging.services.messages import message_send
from tests.messaging.rest_client import api_as, row_counts

pytestmark = pytest.mark.django_db

HUGE = 1180591620717411303424  # 2**70
TOO_BIG_FOR_64_BITS = 2**63


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"to": HUGE}, id="to beyond 64 bits"),
        pytest.param({"conversation_id": TOO_BIG_FOR_64_BITS}, id="conversation_id 2**63"),
        pytest.param({"to": 1, "mentions": [TOO_BIG_FOR_64_BITS]}, id="mention 2**63"),
    ],
)
def test_ids_beyond_64_bits_are_a_bad_request(alice, body):
    before = row_counts()
    response = api_as(alice).post(
        "/api/messages/", {"msg_type": "text", "content": "hi", **body}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert row_counts() == before


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("get", f"/api/conversations/{TOO_BIG_FOR_64_BITS}/messages/", None),
        ("patch", f"/api/conversations/{HUGE}/", {"title": "x"}),
        ("post", f"/api/conversations/{TOO_BIG_FOR_64_BITS}/members/", {"user_ids": [1]}),
        ("delete", f"/api/conversations/1/members/{TOO_BIG_FOR_64_BITS}/", None),
    ],
)
def test_a_url_id_beyond_64_bits_is_a_bad_request(alice, method, url, body):
    response = getattr(api_as(alice), method)(url, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


def test_a_body_nested_50000_levels_deep_is_a_bad_request(alice):
    before = row_counts()
    body = "[" * 50_000 + "]" * 50_000
    response = api_as(alice).post("/api/messages/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert row_counts() == before


def test_content_with_u0000_is_a_bad_request_on_every_backend(alice, bob):
    before = row_counts()
    response = api_as(alice).post(
        "/api/messages/", {"to": bob.pk, "msg_type": "text", "content": "a\u0000b"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert row_counts() == before


LARGEST_ID = 2**63 - 1


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/messages/", {"to": "{id}", "msg_type": "text", "content": "hi"}),
        ("/api/messages/", {"conversation_id": "{id}", "msg_type": "text", "content": "hi"}),
        ("/api/conversations/", {"title": "Team", "member_ids": ["{id}"]}),
        ("/api/notifications/read/", {"notification_ids": ["{id}"]}),
    ],
)
@pytest.mark.parametrize(("id_value", "status"), [(LARGEST_ID, 404), (2**63, 400), (0, 400), (-1, 400)])
def test_body_ids_at_their_limits_are_not_found_inside_and_a_bad_request_outside(
    alice, url, body, id_value, status
):
    before = row_counts()
    filled = {
        key: id_value if value == "{id}" else [id_value] if value == ["{id}"] else value
        for key, value in body.items()
    }
    response = api_as(alice).post(url, filled, format="json")
    expected = 200 if url == "/api/notifications/read/" and status == 404 else status
    assert response.status_code == expected, response.json()
    assert row_counts() == before


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/conversations/{}/messages/"),
        ("patch", "/api/conversations/{}/"),
        ("post", "/api/conversations/{}/members/"),
        ("delete", "/api/conversations/{}/members/1/"),
        ("delete", "/api/conversations/1/members/{}/"),
        ("post", "/api/conversations/{}/uploads/"),
        ("post", "/api/conversations/{}/mute/"),
        ("delete", "/api/devices/{}/"),
    ],
)
@pytest.mark.parametrize(("id_value", "status"), [(LARGEST_ID, 404), (2**63, 400), (0, 400)])
def test_url_ids_at_their_limits_are_not_found_inside_and_a_bad_request_outside(
    alice, method, url, id_value, status
):
    body: dict | None = {"title": "x", "user_ids": [alice.pk]} if method in ("patch", "post") else None
    kind = "json"
    if url.endswith("uploads/"):
        body, kind = {"file": SimpleUploadedFile("a.txt", b"a")}, "multipart"
    response = getattr(api_as(alice), method)(url.format(id_value), body, format=kind)
    assert (response.status_code, response.json()["code"]) == (
        status,
        "bad_request" if status == 400 else "not_found",
    )


@pytest.mark.parametrize("segment", ["-1", "abc", "1.5", "9" * 5000])
def test_a_url_id_that_is_no_integer_is_a_json_404(alice, segment):
    response = api_as(alice).get(f"/api/conversations/{segment}/messages/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "wrong",
    [
        {"to": "{bob}"},
        {"to": "{bob}.0"},
        {"to": True},
        {"client_msg_id": 5},
        {"mentions": ["{bob}"]},
    ],
)
def test_a_value_of_another_json_type_is_a_bad_request_not_coerced(alice, bob, wrong):
    before = row_counts()
    body = {"to": bob.pk, "msg_type": "text", "content": "hi"}
    for key, value in wrong.items():
        if value == "{bob}.0":
            value = float(bob.pk)
        elif value == "{bob}":
            value = str(bob.pk)
        elif value == ["{bob}"]:
            value = [str(bob.pk)]
        body[key] = value
    response = api_as(alice).post("/api/messages/", body, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "bad_request")
    assert row_counts() == before


def test_a_form_body_is_refused_as_an_unsupported_media_type(alice, bob):
    before = row_counts()
    response = api_as(alice).post(
        "/api/messages/", {"to": bob.pk, "msg_type": "text", "content": "hi"}, format="multipart"
    )
    assert (response.status_code, response.json()["code"]) == (415, "bad_request")
    assert row_counts() == before


def test_the_api_answers_json_even_to_a_browser_that_prefers_html(alice):
    response = api_as(alice).get(
        "/api/conversations/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("page_size", ["0", "-1", "abc", "1.5", " 5"])
def test_a_page_size_that_is_no_positive_integer_is_a_bad_request(alice, page_size):
    response = api_as(alice).get("/api/notifications/", {"page_size": page_size})
    assert (response.status_code, response.json()["code"]) == (400, "bad_request")
    assert "page_size" in response.json()


def test_a_cursor_with_a_seq_beyond_64_bits_is_not_found(alice):
    forged = base64.b64encode(f"p={2**70}".encode()).decode()
    response = api_as(alice).get("/api/notifications/", {"cursor": forged})
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


@pytest.mark.parametrize("field", ["to", "conversation_id"])
def test_the_python_api_refuses_an_id_beyond_64_bits_on_every_backend(alice, field):
    before = row_counts()
    with pytest.raises(BadRequest) as refused:
        message_send(sender_id=alice.pk, msg_type="text", content="hi", **{field: 2**63})
    assert refused.value.field == field
    assert row_counts() == before
