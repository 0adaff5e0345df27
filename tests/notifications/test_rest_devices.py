"""REST: registering push devices, preferences (time zone, quiet hours) and conversation mutes."""

from __future__ import annotations

import pytest

from notifications import vapid
from notifications.models import ConversationMute, Device, PushPreference
from tests.factories import GroupFactory
from tests.messaging.rest_client import api_as

pytestmark = pytest.mark.django_db

P256DH = vapid.public_key_b64url(vapid.generate_private_key())
AUTH = vapid.b64url_encode(b"0123456789abcdef")
WEBPUSH = {
    "kind": "webpush",
    "subscription": {"endpoint": "https://localhost/s/1", "keys": {"p256dh": P256DH, "auth": AUTH}},
}
APNS_TOKEN = "a1" * 32


@pytest.mark.parametrize(
    "registration",
    [
        {**WEBPUSH, "name": "Firefox at work"},
        {"kind": "fcm", "token": "fcm-registration-token-0123456789:abc"},
        {"kind": "apns", "token": APNS_TOKEN},
        {"kind": "sms", "phone": "+4915112345678"},
    ],
)
def test_each_kind_of_device_registers_and_answers_its_id(bob, registration, local_push_endpoints):
    response = api_as(bob).post("/api/devices/", registration, format="json")
    assert response.status_code == 201, response.data
    device = Device.objects.get()
    assert set(response.data) == {"id", "kind", "name", "created_at"}
    assert response.data["id"] == device.pk
    assert response.data["kind"] == registration["kind"]
    assert device.user == bob


REGISTRATIONS = {
    "webpush": WEBPUSH,
    "fcm": {"kind": "fcm", "token": "fcm-registration-token-0123456789:abc"},
    "apns": {"kind": "apns", "token": APNS_TOKEN},
    "sms": {"kind": "sms", "phone": "+4915112345678"},
}
ADDRESS_FIELDS = {"webpush": "subscription", "fcm": "token", "apns": "token", "sms": "phone"}


@pytest.mark.parametrize("kind", REGISTRATIONS)
def test_an_address_another_user_registered_is_refused_and_stays_theirs(
    alice, bob, kind, local_push_endpoints
):
    registration = REGISTRATIONS[kind]
    first = api_as(alice).post("/api/devices/", {**registration, "name": "mine"}, format="json").data
    refused = api_as(bob).post("/api/devices/", {**registration, "name": "taken"}, format="json")
    assert refused.status_code == 403, refused.data
    assert refused.data["code"] == "forbidden"
    assert ADDRESS_FIELDS[kind] in refused.data
    assert "registered to another user" in refused.data["detail"]
    assert "alice" not in str(refused.data).lower()
    device = Device.objects.get()
    assert (device.pk, device.user, device.name, device.active) == (first["id"], alice, "mine", True)
    assert api_as(bob).get("/api/devices/").data == []


@pytest.mark.parametrize("kind", REGISTRATIONS)
def test_the_callers_own_address_again_replaces_its_registration_under_the_same_id(
    alice, kind, local_push_endpoints
):
    registration = REGISTRATIONS[kind]
    first = api_as(alice).post("/api/devices/", {**registration, "name": "old"}, format="json").data
    if kind == "webpush":  # a browser that subscribed again with the same endpoint has new keys
        keys = {"p256dh": vapid.public_key_b64url(vapid.generate_private_key()), "auth": AUTH}
        registration = {**registration, "subscription": {**registration["subscription"], "keys": keys}}
    again = api_as(alice).post("/api/devices/", {**registration, "name": "new"}, format="json")
    assert again.status_code == 201, again.data
    device = Device.objects.get()
    assert (again.data["id"], device.pk, device.name) == (first["id"], first["id"], "new")
    if kind == "webpush":
        assert device.keys == registration["subscription"]["keys"]


def apns_token(n: int) -> str:
    return f"{n:064x}"


def test_registering_past_the_device_limit_gets_a_clear_400_and_stores_nothing(bob, settings):
    settings.IMS_MAX_DEVICES_PER_USER = 3
    client = api_as(bob)
    ids = [
        client.post("/api/devices/", {"kind": "apns", "token": apns_token(n)}, format="json").data["id"]
        for n in range(3)
    ]
    refused = client.post("/api/devices/", {"kind": "apns", "token": apns_token(3)}, format="json")
    assert refused.status_code == 400, refused.data
    assert refused.data["code"] == "bad_request"
    assert "at most 3 active devices" in refused.data["detail"]
    assert sorted(Device.objects.values_list("pk", flat=True)) == sorted(ids)
    again = client.post("/api/devices/", {"kind": "apns", "token": apns_token(1), "name": "x"}, format="json")
    assert (again.status_code, again.data["id"]) == (201, ids[1])
    assert Device.objects.count() == 3
    assert client.delete(f"/api/devices/{ids[0]}/").status_code == 204
    assert (
        client.post("/api/devices/", {"kind": "apns", "token": apns_token(3)}, format="json").status_code
        == 201
    )


def test_devices_the_providers_deactivated_do_not_count_toward_the_limit(bob, settings):
    settings.IMS_MAX_DEVICES_PER_USER = 2
    client = api_as(bob)
    for n in range(2):
        client.post("/api/devices/", {"kind": "apns", "token": apns_token(n)}, format="json")
    Device.objects.filter(address=apns_token(0)).update(active=False, deactivated_reason="410 Unregistered")
    assert (
        client.post("/api/devices/", {"kind": "apns", "token": apns_token(2)}, format="json").status_code
        == 201
    )
    # Active again, the dead one would be a third.
    revived = client.post("/api/devices/", {"kind": "apns", "token": apns_token(0)}, format="json")
    assert revived.status_code == 400, revived.data
    assert not Device.objects.get(address=apns_token(0)).active


def test_a_deactivated_device_registered_again_is_active_again(bob, local_push_endpoints):
    api_as(bob).post("/api/devices/", WEBPUSH, format="json")
    Device.objects.update(active=False, deactivated_reason="410 gone")
    api_as(bob).post("/api/devices/", WEBPUSH, format="json")
    assert Device.objects.get().active


@pytest.mark.parametrize(
    ("registration", "field"),
    [
        ({"kind": "pager", "token": "x"}, "kind"),
        ({"kind": "webpush"}, "subscription"),
        (
            {
                "kind": "webpush",
                "subscription": {"endpoint": "ftp://x/y", "keys": {"p256dh": P256DH, "auth": AUTH}},
            },
            "subscription",
        ),
        ({"kind": "webpush", "subscription": {"endpoint": "https://push.example.com/1"}}, "subscription"),
        (
            {
                "kind": "webpush",
                "subscription": {"endpoint": "https://p.example/1", "keys": {"p256dh": "abc", "auth": AUTH}},
            },
            "subscription",
        ),
        (
            {
                "kind": "webpush",
                "subscription": {"endpoint": "https://p.example/1", "keys": {"p256dh": P256DH, "auth": "!!"}},
            },
            "subscription",
        ),
        ({"kind": "fcm"}, "token"),
        ({"kind": "fcm", "token": "has spaces in it, which no token has"}, "token"),
        ({"kind": "apns", "token": "not-hex"}, "token"),
        ({"kind": "sms", "phone": "015112345678"}, "phone"),
        ({"kind": "sms", "phone": "+0151"}, "phone"),
        ({"kind": "sms", "phone": "+4915112345678", "name": "x" * 101}, "name"),
        ({"kind": "apns", "token": APNS_TOKEN, "name": "nul \u0000"}, "name"),
    ],
)
def test_a_bad_registration_gets_a_clear_400_and_stores_nothing(bob, registration, field):
    response = api_as(bob).post("/api/devices/", registration, format="json")
    assert response.status_code == 400, response.data
    assert field in response.data
    assert not Device.objects.exists()


def test_a_user_lists_and_deletes_only_its_own_devices(alice, bob):
    mine = api_as(bob).post("/api/devices/", {"kind": "apns", "token": APNS_TOKEN}, format="json").data
    theirs = (
        api_as(alice).post("/api/devices/", {"kind": "sms", "phone": "+4915100000000"}, format="json").data
    )
    listed = api_as(bob).get("/api/devices/").data
    assert [device["id"] for device in listed] == [mine["id"]]
    assert api_as(bob).delete(f"/api/devices/{theirs['id']}/").status_code == 404
    assert api_as(bob).delete(f"/api/devices/{mine['id']}/").status_code == 204
    assert list(Device.objects.values_list("pk", flat=True)) == [theirs["id"]]


def test_preferences_start_in_utc_without_quiet_hours_and_can_be_changed(bob):
    client = api_as(bob)
    assert client.get("/api/me/preferences/").data == {"time_zone": "UTC", "quiet_hours": None}
    changed = client.patch(
        "/api/me/preferences/",
        {"time_zone": "Europe/Berlin", "quiet_hours": {"start": "22:00", "end": "07:00"}},
        format="json",
    )
    assert changed.status_code == 200
    assert changed.data == {"time_zone": "Europe/Berlin", "quiet_hours": {"start": "22:00", "end": "07:00"}}
    assert (
        client.patch("/api/me/preferences/", {"quiet_hours": None}, format="json").data["quiet_hours"] is None
    )
    assert client.get("/api/me/preferences/").data["time_zone"] == "Europe/Berlin"


@pytest.mark.parametrize(
    "change",
    [
        {"time_zone": "Mars/Olympus"},
        {"quiet_hours": {"start": "22:00"}},
        {"quiet_hours": {"start": "25:00", "end": "07:00"}},
        {"quiet_hours": {"start": "07:00", "end": "07:00"}},
        {"quiet_hours": "night"},
        {},
    ],
)
def test_bad_preferences_get_a_400_and_change_nothing(bob, change):
    response = api_as(bob).patch("/api/me/preferences/", change, format="json")
    assert response.status_code == 400, response.data
    bob.refresh_from_db()
    assert bob.time_zone == "UTC"
    assert not PushPreference.objects.exists()


def test_members_mute_and_unmute_a_conversation(alice, bob):
    group = GroupFactory(members=[alice, bob])
    client = api_as(bob)
    assert client.post(f"/api/conversations/{group.pk}/mute/").status_code == 204
    assert client.post(f"/api/conversations/{group.pk}/mute/").status_code == 204
    assert ConversationMute.objects.filter(user=bob, conversation=group).count() == 1
    assert client.delete(f"/api/conversations/{group.pk}/mute/").status_code == 204
    assert not ConversationMute.objects.exists()


def test_only_members_may_mute_and_unknown_conversations_are_not_found(alice, bob, carol):
    group = GroupFactory(members=[alice, bob])
    forbidden = api_as(carol).post(f"/api/conversations/{group.pk}/mute/")
    assert (forbidden.status_code, forbidden.data["code"]) == (403, "forbidden")
    assert api_as(carol).post("/api/conversations/987654/mute/").status_code == 404
    assert not ConversationMute.objects.exists()


@pytest.mark.parametrize("path_id", [0, 2**63, 2**70])
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/api/conversations/{}/mute/"),
        ("delete", "/api/conversations/{}/mute/"),
        ("delete", "/api/devices/{}/"),
    ],
)
def test_an_id_outside_1_to_2_63_in_a_url_is_a_bad_request(carol, method, url, path_id):
    response = getattr(api_as(carol), method)(url.format(path_id))
    assert (response.status_code, response.json()["code"]) == (400, "bad_request")
