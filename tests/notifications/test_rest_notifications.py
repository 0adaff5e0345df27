"""REST: sending notifications (staff or permission holders), listing and reading them."""

from __future__ import annotations

import base64
import json

import pytest
from django.contrib.auth.models import Permission

from messaging.models import PendingItem, StreamItem
from notifications.api import send_notification
from notifications.models import Notification
from tests.messaging.rest_client import api_as

pytestmark = pytest.mark.django_db
URL = "/api/notifications/"


@pytest.fixture
def admin_user(alice):
    alice.is_staff = True
    alice.save()
    return alice


def body(**overrides):
    return {
        "title": "Deploy at 18:00",
        "content": "Expect a short outage",
        "priority": "P2",
        "category": "todo",
        **overrides,
    }


def test_staff_notifies_chosen_users_and_gets_the_id_and_recipient_count(admin_user, bob, carol):
    response = api_as(admin_user).post(
        URL, body(user_ids=[bob.pk, carol.pk], extra={"ticket": "OPS-1"}), format="json"
    )
    assert response.status_code == 201, response.data
    notification = Notification.objects.get()
    assert response.data == {"id": notification.pk, "recipients": 2}
    assert notification.sender_user == admin_user
    assert StreamItem.objects.filter(kind="notification", payload__data__extra__ticket="OPS-1").count() == 2


def test_staff_notifies_everyone_with_all(admin_user, bob, carol):
    response = api_as(admin_user).post(URL, body(all=True), format="json")
    assert response.status_code == 201
    assert response.data["recipients"] == 3


def test_a_holder_of_the_add_notification_permission_may_notify(bob, carol):
    bob.user_permissions.add(Permission.objects.get(codename="add_notification"))
    response = api_as(bob).post(URL, body(user_ids=[carol.pk]), format="json")
    assert response.status_code == 201


def test_an_ordinary_user_cannot_notify(bob, carol):
    response = api_as(bob).post(URL, body(user_ids=[carol.pk]), format="json")
    assert response.status_code == 403
    assert response.data["code"] == "forbidden"
    assert not Notification.objects.exists()


def test_without_credentials_the_answer_is_401(carol):
    from rest_framework.test import APIClient

    assert APIClient().post(URL, body(user_ids=[carol.pk]), format="json").status_code == 401


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"user_ids": [1], "all": True}, "user_ids"),
        ({}, "user_ids"),
        ({"user_ids": []}, "user_ids"),
        ({"user_ids": [2**63]}, "user_ids"),
        ({"user_ids": [True]}, "user_ids"),
        ({"all": "yes"}, "all"),
        ({"all": True, "title": 7}, "title"),
        ({"all": True, "extra": {"deep": json.loads("[" * 300 + "]" * 300)}}, "extra"),
        ({"all": True, "extra": {"n": 2**64}}, "extra"),
        ({"user_ids": "everyone"}, "user_ids"),
        ({"all": True, "title": "nul \u0000"}, "title"),
        ({"all": True, "title": ""}, "title"),
        ({"all": True, "content": "cut \ud83d emoji"}, "content"),
        ({"all": True, "priority": "P7"}, "priority"),
        ({"all": True, "category": "gossip"}, "category"),
        ({"all": True, "extra": "not an object"}, "extra"),
        ({"all": True, "extra": {"k": "nul \u0000"}}, "extra"),
    ],
)
def test_a_bad_notification_body_gets_a_clear_400_and_stores_nothing(admin_user, bob, overrides, field):
    # Raw JSON: a lone surrogate travels as its \u escape, as JavaScript would send it.
    response = api_as(admin_user).post(URL, json.dumps(body(**overrides)), content_type="application/json")
    assert response.status_code == 400, response.data
    assert response.data["code"] == "bad_request"
    assert field in response.data
    assert not Notification.objects.exists()
    assert not StreamItem.objects.exists()


def test_an_unknown_recipient_is_not_found_and_nothing_is_stored(admin_user, bob):
    response = api_as(admin_user).post(URL, body(user_ids=[bob.pk, 999_999]), format="json")
    assert (response.status_code, response.data["code"]) == (404, "not_found")
    assert "user_ids" in response.data
    assert not Notification.objects.exists()


def test_the_list_is_the_callers_own_newest_first_with_the_unread_count(alice, bob):
    first = send_notification([bob], "first", "", priority="P2", category="todo")
    send_notification([alice], "not bob's", "", priority="P2", category="todo")
    second = send_notification([bob], "second", "", priority="P1", category="mention")
    api_as(bob).post(f"{URL}read/", {"notification_ids": [first.pk]}, format="json")
    response = api_as(bob).get(URL)
    assert response.status_code == 200
    assert [row["id"] for row in response.data["results"]] == [second.pk, first.pk]
    assert [row["read"] for row in response.data["results"]] == [False, True]
    assert response.data["unread"] == 1
    assert set(response.data["results"][0]) == {
        "id", "seq", "title", "content", "extra", "priority", "category", "created_at", "read"
    }  # fmt: skip


def test_the_list_pages_by_cursor(bob):
    sent = [send_notification([bob], f"n{n}", "", priority="P3", category="news") for n in range(5)]
    first = api_as(bob).get(URL, {"page_size": 2}).data
    second = api_as(bob).get(first["next"]).data
    assert [row["id"] for row in first["results"] + second["results"]] == [n.pk for n in sent[::-1][:4]]
    forged = base64.b64encode(b"p=not-a-seq").decode()
    assert api_as(bob).get(URL, {"cursor": forged}).status_code == 404


def test_reading_marks_only_the_callers_copies_and_stops_them_pending(alice, bob):
    notification = send_notification([alice, bob], "Hi", "", priority="P2", category="approval")
    response = api_as(bob).post(f"{URL}read/", {"notification_ids": [notification.pk, 424242]}, format="json")
    assert response.status_code == 200
    assert response.data == {"read": 1}
    item = StreamItem.objects.get(user=bob)
    assert item.read_at is not None
    assert not PendingItem.objects.filter(item=item).exists()
    assert StreamItem.objects.get(user=alice).read_at is None


@pytest.mark.parametrize("payload", [{}, {"notification_ids": []}, {"notification_ids": ["x"]}])
def test_a_bad_read_body_is_a_400(bob, payload):
    assert api_as(bob).post(f"{URL}read/", payload, format="json").status_code == 400


def test_the_openapi_schema_documents_the_notification_endpoints(bob):
    schema = api_as(bob).get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/api/notifications/", "/api/notifications/read/", "/api/devices/", "/api/me/preferences/"):
        assert path in schema
