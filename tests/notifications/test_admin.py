"""The notifications admin: staff only, lists with counts, provider note, retry of failed pushes."""

from __future__ import annotations

import pytest
from django.utils import timezone

from messaging.models import StreamItem
from notifications.api import send_notification
from notifications.models import Notification, PushJob
from notifications.services.dispatch import push_dispatch
from notifications.services.push import push_job_send
from tests.notifications.providers.servers import Reply

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("push_settings")]
PAGES = ["notification", "device", "pushjob", "pushattempt", "expiryrun"]


@pytest.fixture
def staff_client(client, alice):
    alice.is_staff = True
    alice.is_superuser = True
    alice.save()
    client.force_login(alice)
    return client


@pytest.mark.parametrize("page", PAGES)
def test_each_list_opens_for_staff(staff_client, bob, page):
    send_notification([bob], "Hello", "", priority="P2", category="todo")
    assert staff_client.get(f"/admin/notifications/{page}/").status_code == 200


@pytest.mark.parametrize("page", PAGES)
def test_non_staff_never_see_the_lists(client, bob, page):
    client.force_login(bob)
    assert client.get(f"/admin/notifications/{page}/").status_code == 302


def test_the_notification_list_shows_recipients_and_reads(staff_client, bob, carol):
    from messaging.api import mark_read

    notification = send_notification([bob, carol], "Quarterly results", "", priority="P3", category="news")
    mark_read(user_id=bob.pk, notification_ids=[notification.pk])
    changelist = staff_client.get("/admin/notifications/notification/").context["cl"]
    (row,) = changelist.result_list
    assert (row.recipient_count, row.read_count) == (2, 1)


def test_the_push_lists_say_which_providers_are_configured(staff_client):
    response = staff_client.get("/admin/notifications/pushattempt/")
    notes = [str(message) for message in response.context["messages"]]
    assert any(note.startswith("Web Push with the VAPID key") for note in notes)
    assert any(note.startswith("SMS is off") for note in notes)


def test_retrying_a_failed_push_queues_it_again_with_a_fresh_budget(staff_client, bob, browser, push_service):
    browser(bob)
    push_service.server.respond = lambda request: Reply(400)
    send_notification([bob], "Alarm", "", priority="P0", category="alert")
    push_dispatch(now=timezone.now())
    job = PushJob.objects.get()
    assert push_job_send(job_id=job.pk).state == "failed"
    response = staff_client.post(
        "/admin/notifications/pushjob/", {"action": "retry_failed", "_selected_action": [job.pk]}
    )
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.state, job.tries) == ("queued", 0)
    push_service.server.respond = push_service
    assert push_job_send(job_id=job.pk).state == "sent"


# --- sending an announcement -----------------------------------------------------------------

SEND_URL = "/admin/notifications/notification/add/"


def announcement(**overrides):
    return {
        "title": "Office closed Friday",
        "content": "Enjoy the long weekend.",
        "priority": "P3",
        "category": "announcement",
        "audience": "all",
        "usernames": "",
        **overrides,
    }


def test_staff_send_an_announcement_to_every_active_user_from_the_admin(staff_client, alice, bob, carol):
    carol.is_active = False
    carol.save()

    response = staff_client.post(SEND_URL, announcement())

    notification = Notification.objects.get()
    assert response.status_code == 302
    assert response.url == f"/admin/notifications/notification/{notification.pk}/change/"
    assert (notification.title, notification.sender_user_id, notification.recipient_count) == (
        "Office closed Friday",
        alice.pk,
        2,
    )
    streams = set(StreamItem.objects.filter(kind="notification").values_list("user_id", flat=True))
    assert streams == {alice.pk, bob.pk}


def test_an_announcement_to_chosen_users_reaches_only_them(staff_client, bob, carol):
    staff_client.post(SEND_URL, announcement(audience="chosen", usernames="bob, carol"))

    streams = set(StreamItem.objects.filter(kind="notification").values_list("user_id", flat=True))
    assert streams == {bob.pk, carol.pk}


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"title": ""}, id="no title"),
        pytest.param({"priority": "P9"}, id="unknown priority"),
        pytest.param({"audience": "chosen", "usernames": ""}, id="no users chosen"),
        pytest.param({"audience": "chosen", "usernames": "bob nobody"}, id="unknown user"),
        pytest.param({"title": "bad \x00 title"}, id="U+0000"),
    ],
)
def test_a_bad_announcement_shows_the_form_again_and_sends_nothing(staff_client, bob, overrides):
    response = staff_client.post(SEND_URL, announcement(**overrides))

    assert response.status_code == 200
    assert response.context["form"].errors
    assert not Notification.objects.exists()
    assert not StreamItem.objects.filter(kind="notification").exists()


def test_staff_without_the_permission_cannot_send(client, bob):
    bob.is_staff = True
    bob.save()
    client.force_login(bob)

    assert client.get(SEND_URL).status_code == 403
    assert client.post(SEND_URL, announcement()).status_code == 403
    assert not Notification.objects.exists()
