"""Whose a device is and how many a user may have (notifications.services.devices), with
what that means for pushes: a colleague's phone number stays theirs, so their P0 still
reaches it by SMS through the local gateway.

Concurrency tests use real transactions and threads, each on its own database connection:
on PostgreSQL the row lock on the user serialises one user's registrations; on SQLite the
IMMEDIATE transaction serialises every writer.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from messaging.errors import BadRequest, Forbidden
from notifications.api import send_notification
from notifications.models import Device, PushAttempt, PushJob
from notifications.services.devices import device_register
from notifications.services.dispatch import push_dispatch
from notifications.services.push import push_job_send
from tests.factories import UserFactory
from tests.messaging.rest_client import api_as
from tests.messaging.test_services_stream import run_in_threads

ALICES_PHONE = "+4915112345678"


def run_jobs(*, now: dt.datetime) -> list[str]:
    ids = PushJob.objects.filter(state=PushJob.State.QUEUED).order_by("pk").values_list("pk", flat=True)
    return [push_job_send(job_id=job_id, now=now).state for job_id in list(ids)]


@pytest.mark.django_db
@pytest.mark.usefixtures("push_settings")
def test_bob_cannot_take_alices_phone_and_her_p0_still_escalates_to_it_by_sms(alice, bob, sms_gateway):
    mine = api_as(alice).post("/api/devices/", {"kind": "sms", "phone": ALICES_PHONE}, format="json").data
    taken = api_as(bob).post("/api/devices/", {"kind": "sms", "phone": ALICES_PHONE}, format="json")
    assert (taken.status_code, taken.data["code"]) == (403, "forbidden")
    device = Device.objects.get()
    assert (device.pk, device.user, device.active) == (mine["id"], alice, True)

    send_notification([alice], "Data centre on fire", "Evacuate hall B", priority="P0", category="alert")
    send_notification([bob], "Bob's own alarm", "", priority="P0", category="alert")
    start = timezone.now()
    for seconds in (0, 61, 122):
        push_dispatch(now=start + dt.timedelta(seconds=seconds))
        run_jobs(now=start + dt.timedelta(seconds=seconds))

    (sms,) = sms_gateway.received
    assert sms.json()["to"] == ALICES_PHONE
    assert sms.json()["text"] == "Data centre on fire: Evacuate hall B"
    assert list(PushAttempt.objects.values_list("device__user", "provider", "outcome")) == [
        (alice.pk, "sms", "sent")
    ]


@pytest.mark.django_db
def test_alice_registering_her_own_phone_again_keeps_it_hers_under_the_same_id(alice):
    first = device_register(user_id=alice.pk, kind="sms", phone=ALICES_PHONE, name="work phone")
    Device.objects.filter(pk=first.pk).update(active=False, deactivated_reason="unreachable_number")
    again = device_register(user_id=alice.pk, kind="sms", phone=ALICES_PHONE, name="work phone, again")
    device = Device.objects.get()
    assert (again.pk, device.pk, device.user, device.name) == (first.pk, first.pk, alice, "work phone, again")
    assert (device.active, device.deactivated_reason) == (True, "")


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_never_pass_the_device_limit(alice, settings):
    settings.IMS_MAX_DEVICES_PER_USER = 4
    outcomes: list[str] = []

    def register(n: int) -> None:
        try:
            device_register(user_id=alice.pk, kind="apns", token=f"{n:064x}")
        except BadRequest:
            outcomes.append("refused")
        else:
            outcomes.append("registered")

    run_in_threads(register, range(10))

    assert sorted(outcomes) == ["refused"] * 6 + ["registered"] * 4
    assert Device.objects.filter(user=alice, active=True).count() == 4


@pytest.mark.django_db(transaction=True)
def test_one_phone_registered_by_several_users_at_once_goes_to_exactly_one():
    users = [UserFactory(username=f"racer{n}") for n in range(6)]
    winners: list[int] = []

    def register(user_id: int) -> None:
        try:
            device_register(user_id=user_id, kind="sms", phone=ALICES_PHONE)
        except Forbidden:
            return
        winners.append(user_id)

    run_in_threads(register, [user.pk for user in users])

    (winner,) = winners
    assert list(Device.objects.values_list("user_id", flat=True)) == [winner]
