"""Hostile REST bodies and URLs get 400 bad_request, never 500, and store nothing."""

from __future__ import annotations

import pytest

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
