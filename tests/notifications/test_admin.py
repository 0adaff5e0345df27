"""The notifications admin: staff only, lists with counts, provider note, retry of failed pushes."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from messaging.models import StreamItem
from notifications.api import send_notification
from notifications.models import Notification, PushAttempt, PushJob
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


@pytest.fixture
def failed_job(bob, browser, push_service) -> PushJob:
    """A P0 push the local push service refused (400): failed, kept for a retry."""
    browser(bob)
    push_service.server.respond = lambda request: Reply(400)
    send_notification([bob], "Alarm", "", priority="P0", category="alert")
    push_dispatch(now=timezone.now())
    job = PushJob.objects.get()
    assert push_job_send(job_id=job.pk).state == "failed"
    push_service.server.respond = push_service
    return job


@pytest.fixture
def clerk(client, carol):
    """Carol, staff but holding no permission, logged in to the admin."""
    carol.is_staff = True
    carol.save()
    client.force_login(carol)
    return client


def grant(user, *codenames: str) -> None:
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="notifications", codename__in=codenames)
    )


def row_of(page: str, job: PushJob) -> int:
    """The pk of the job's row on that list: the job itself, or its one attempt."""
    return job.pk if page == "pushjob" else PushAttempt.objects.get(job=job).pk


def retry(client, page: str, job: PushJob):
    return client.post(
        f"/admin/notifications/{page}/", {"action": "retry_failed", "_selected_action": [row_of(page, job)]}
    )


def test_retrying_a_failed_push_queues_it_again_with_a_fresh_budget(staff_client, failed_job):
    response = retry(staff_client, "pushjob", failed_job)
    assert response.status_code == 302
    failed_job.refresh_from_db()
    assert (failed_job.state, failed_job.tries) == ("queued", 0)
    assert push_job_send(job_id=failed_job.pk).state == "sent"


@pytest.mark.parametrize("page", ["pushjob", "pushattempt"])
def test_staff_without_permissions_get_403_on_push_lists_and_cannot_retry(clerk, failed_job, page):
    assert clerk.get(f"/admin/notifications/{page}/").status_code == 403
    assert clerk.get(f"/admin/notifications/{page}/{row_of(page, failed_job)}/change/").status_code == 403
    assert retry(clerk, page, failed_job).status_code == 403
    failed_job.refresh_from_db()
    assert failed_job.state == "failed"


@pytest.mark.parametrize("page", ["pushjob", "pushattempt"])
def test_staff_with_view_permission_see_push_lists_but_are_not_offered_the_retry(
    clerk, carol, failed_job, page
):
    grant(carol, "view_pushjob", "view_pushattempt")
    response = clerk.get(f"/admin/notifications/{page}/")
    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [row_of(page, failed_job)]
    assert response.context["action_form"] is None
    retry(clerk, page, failed_job)
    failed_job.refresh_from_db()
    assert failed_job.state == "failed"


@pytest.mark.parametrize("page", ["pushjob", "pushattempt"])
def test_staff_with_the_retry_permission_retry_failed_pushes(clerk, carol, failed_job, page):
    grant(carol, "view_pushjob", "view_pushattempt", "retry_pushjob")
    actions = clerk.get(f"/admin/notifications/{page}/").context["action_form"].fields["action"].choices
    assert "retry_failed" in [name for name, _ in actions]
    assert retry(clerk, page, failed_job).status_code == 302
    failed_job.refresh_from_db()
    assert (failed_job.state, failed_job.tries) == ("queued", 0)


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
