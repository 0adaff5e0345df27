"""What a user can make the push worker do with a Web Push endpoint, seen from outside:
registration refuses inside addresses with a clear 400, the worker never reaches them and
never follows a redirect, and the device list never shows what a remote server answered
(staff see it in the admin)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from messaging.models import User
from notifications import vapid
from notifications.api import send_notification
from notifications.models import Device, PushAttempt, PushJob
from notifications.services.devices import device_register
from notifications.services.dispatch import push_dispatch
from notifications.services.push import push_job_send
from tests.messaging.rest_client import api_as
from tests.notifications.providers.servers import Reply, http_server, listener

pytestmark = pytest.mark.django_db
KEYS = {
    "p256dh": vapid.public_key_b64url(vapid.generate_private_key()),
    "auth": vapid.b64url_encode(b"0123456789abcdef"),
}
BANNER = "secret-internal-banner"


def register(user: User, endpoint: str):
    subscription = {"endpoint": endpoint, "keys": KEYS}
    return api_as(user).post(
        "/api/devices/", {"kind": "webpush", "subscription": subscription}, format="json"
    )


def push_p0_to(user: User) -> list[str]:
    """A P0 notification for the user, dispatched and pushed as the worker would."""
    send_notification([user], "Disk full", "db-1 at 99 %", priority="P0", category="alert")
    push_dispatch(now=timezone.now())
    job_ids = PushJob.objects.filter(state=PushJob.State.QUEUED).values_list("pk", flat=True)
    return [push_job_send(job_id=job_id).state for job_id in list(job_ids)]


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://updates.push.services.mozilla.com/wpush/v2/gAAAAABm",
        "https://127.0.0.1/push/1",
        "https://localhost/push/1",
        "https://10.1.2.3/push/1",
        "https://192.168.1.1/push/1",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/push/1",
        "https://push.example.com/push/1",
        "https://fcm.googleapis.com.example.com/fcm/send/abc",
        "https://relay:secret@fcm.googleapis.com/fcm/send/abc",
    ],
)
def test_registration_refuses_an_endpoint_off_the_push_services_with_a_clear_400(bob, endpoint):
    response = register(bob, endpoint)
    assert response.status_code == 400, response.data
    assert response.data["code"] == "bad_request"
    assert response.data["detail"].startswith("`subscription.endpoint` must")
    assert "subscription" in response.data
    assert not Device.objects.exists()


def test_the_400_names_what_is_allowed(bob):
    detail = register(bob, "https://10.1.2.3/push/1").data["detail"]
    assert "https URL on a push service (fcm.googleapis.com, push.services.mozilla.com" in detail
    assert "public addresses only" in detail


def test_registration_refuses_a_name_that_resolves_to_a_private_address(bob, settings):
    settings.IMS_WEBPUSH_ALLOWED_HOSTS = ["localhost"]
    response = register(bob, "https://localhost/push/1")
    assert response.status_code == 400
    assert "public addresses only" in response.data["detail"]
    assert not Device.objects.exists()


def test_a_name_that_does_not_resolve_is_refused_in_the_same_words_as_a_private_one(bob, settings):
    settings.IMS_WEBPUSH_ALLOWED_HOSTS = ["*"]
    private = register(bob, "https://localhost/push/1")
    unknown = register(bob, "https://push.invalid/push/1")
    assert (private.status_code, unknown.status_code) == (400, 400)
    assert private.data["detail"] == unknown.data["detail"]
    assert not Device.objects.exists()


def test_with_private_endpoints_allowed_a_relay_on_the_local_network_registers(bob, local_push_endpoints):
    response = register(bob, "http://127.0.0.1:8080/push/1")
    assert response.status_code == 201, response.data
    assert Device.objects.get().address == "http://127.0.0.1:8080/push/1"


@pytest.mark.usefixtures("push_settings")
def test_a_device_whose_endpoint_now_resolves_privately_is_deactivated_without_being_contacted(
    alice, push_service, settings
):
    with listener() as inside:
        device = device_register(
            user_id=alice.pk,
            kind="webpush",
            subscription={
                "endpoint": f"https://localhost:{inside.port}/push/alice",
                "keys": push_service.keys,
            },
        )
        settings.IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS = False  # localhost stays on the host list
        assert push_p0_to(alice) == ["failed"]
        assert not inside.contacted()
    device.refresh_from_db()
    assert (device.active, device.deactivated_reason) == (False, "endpoint_not_allowed")
    attempt = PushAttempt.objects.get()
    assert attempt.outcome == "deactivated"
    assert "public addresses only" in attempt.error
    (listed,) = api_as(alice).get("/api/devices/").data
    assert (listed["active"], listed["deactivated_reason"]) == (False, "endpoint_not_allowed")


@pytest.mark.usefixtures("push_settings")
def test_a_redirect_to_an_inside_address_is_not_followed_and_the_user_sees_nothing_of_it(
    alice, browser, push_service
):
    browser(alice)
    with http_server(lambda request: Reply(200, BANNER.encode())) as inside:
        push_service.server.respond = lambda request: Reply(
            307, b"moved", headers={"Location": f"{inside.url}/latest/meta-data"}
        )
        assert push_p0_to(alice) == ["failed"]
        assert inside.received == []
    attempt = PushAttempt.objects.get()
    assert (attempt.outcome, attempt.status_code) == ("failed", 307)
    assert f"{inside.url}/latest/meta-data not followed" in attempt.error
    response = api_as(alice).get("/api/devices/")
    (listed,) = response.data
    assert (listed["active"], listed["deactivated_reason"]) == (True, "")
    for remote_text in ("meta-data", "Temporary Redirect", "moved", BANNER):
        assert remote_text not in response.content.decode()


@pytest.mark.usefixtures("push_settings")
def test_the_device_list_never_shows_what_the_push_service_answered_but_staff_see_it(
    alice, bob, browser, push_service, client
):
    browser(bob)
    push_service.server.respond = lambda request: Reply(404, f"<h1>{BANNER}</h1>".encode())
    assert push_p0_to(bob) == ["failed"]
    response = api_as(bob).get("/api/devices/")
    (listed,) = response.data
    assert (listed["active"], listed["deactivated_reason"]) == (False, "gone")
    for remote_text in (BANNER, "Not Found"):
        assert remote_text not in response.content.decode()
    assert BANNER in PushAttempt.objects.get().error
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client.force_login(alice)
    assert BANNER in client.get("/admin/notifications/pushattempt/").content.decode()


def test_a_device_deactivated_before_reasons_were_fixed_words_shows_only_gone(bob, local_push_endpoints):
    register(bob, "http://127.0.0.1:8080/push/1")
    Device.objects.update(active=False, deactivated_reason=f"push service answered 404: {BANNER}")
    (listed,) = api_as(bob).get("/api/devices/").data
    assert listed["deactivated_reason"] == "gone"
