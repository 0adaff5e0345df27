"""The sign-in guard itself (messaging.services.signin), on a clock the tests set: how waits
grow, when a lock starts and ends, what a success gives back, and that attempts arriving
together are counted one by one."""

from __future__ import annotations

import datetime as dt
import io
import threading

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from messaging import tasks
from messaging.errors import RateLimited
from messaging.models import SigninFailures
from messaging.services.signin import (
    address_key,
    signin_attempt_failed,
    signin_attempt_start,
    signin_attempt_succeeded,
    signin_failures_purge,
)

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
OFFICE = "203.0.113.10"


@pytest.fixture(autouse=True)
def signin_limits(settings) -> None:
    """The defaults, stated here because the numbers in these tests follow from them."""
    settings.IMS_SIGNIN_ACCOUNT_SLOW_AFTER = 5
    settings.IMS_SIGNIN_ACCOUNT_LOCK_AFTER = 10
    settings.IMS_SIGNIN_ADDRESS_SLOW_AFTER = 25
    settings.IMS_SIGNIN_ADDRESS_LOCK_AFTER = 50
    settings.IMS_SIGNIN_DELAY_SECONDS = 2
    settings.IMS_SIGNIN_LOCKOUT_SECONDS = 900


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def attempt_wrong(username: str = "dana", *, when: dt.datetime, address: str = OFFICE) -> int | None:
    """A wrong password at `when`: None when it was checked (and counted as a failure), else
    the seconds it was told to wait."""
    try:
        attempt = signin_attempt_start(username=username, remote_addr=address, now=when)
    except RateLimited as refused:
        return refused.retry_after_seconds
    signin_attempt_failed(attempt=attempt)
    return None


def fail(username: str = "dana", *, when: dt.datetime, address: str = OFFICE) -> None:
    assert attempt_wrong(username, when=when, address=address) is None


def fail_patiently(usernames: list[str], *, start: dt.datetime, address: str = OFFICE) -> dt.datetime:
    """A wrong password for each username, each waiting out a slowed account or address;
    the time of the last failure."""
    when = start
    for username in usernames:
        while (wait := attempt_wrong(username, when=when, address=address)) is not None:
            when += dt.timedelta(seconds=wait)
    return when


def test_after_five_failures_each_attempt_waits_one_step_longer_after_the_last_failure():
    for _ in range(5):
        fail(when=at(0))

    assert attempt_wrong(when=at(0)) == 2
    assert attempt_wrong(when=at(1.5)) == 1
    fail(when=at(2))  # the sixth
    assert attempt_wrong(when=at(2 + 3.2)) == 1
    fail(when=at(2 + 4))  # the seventh
    assert attempt_wrong(when=at(6)) == 6


def test_the_tenth_failure_locks_the_account_for_the_lockout_and_then_a_new_window_starts():
    when = 0.0
    for step in (0, 0, 0, 0, 0, 2, 4, 6, 8, 10):
        when += step
        fail(when=at(when))
    locked_at = when

    assert attempt_wrong(when=at(locked_at)) == 900
    assert attempt_wrong(when=at(locked_at + 899.5)) == 1
    for _ in range(5):
        fail(when=at(locked_at + 900))
    assert attempt_wrong(when=at(locked_at + 900)) == 2  # counted afresh: five free again


def test_failures_of_a_window_that_ended_without_a_lock_no_longer_count():
    for _ in range(4):
        fail(when=at(0))
    for _ in range(4):
        fail(when=at(900))

    assert attempt_wrong(when=at(900)) is None


def test_a_success_forgets_the_account_and_gives_back_only_its_own_attempt_to_the_address():
    for n in range(20):
        fail(f"guesser{n}", when=at(0))
    attempt = signin_attempt_start(username="dana", remote_addr=OFFICE, now=at(0))
    fail("dana", when=at(0))

    signin_attempt_succeeded(attempt=attempt)

    assert not SigninFailures.objects.filter(kind="account", subject="dana").exists()
    assert SigninFailures.objects.get(kind="address", subject=OFFICE).failures == 21


def test_an_unknown_account_leaves_the_same_records_as_a_known_one(alice):
    fail("alice", when=at(0), address="192.0.2.1")
    fail("nobody", when=at(0), address="192.0.2.2")

    rows = {row.subject: row for row in SigninFailures.objects.filter(kind="account")}
    assert (rows["alice"].failures, rows["alice"].last_failed_at) == (
        rows["nobody"].failures,
        rows["nobody"].last_failed_at,
    )


@pytest.mark.django_db(transaction=True)
def test_attempts_arriving_together_are_counted_one_by_one_so_only_the_allowance_is_checked():
    arrivals = 16
    barrier = threading.Barrier(arrivals)
    let_through: list[bool] = []

    def arrive() -> None:
        try:
            barrier.wait(timeout=30)
            let_through.append(attempt_wrong(when=at(0)) is None)
        finally:
            connection.close()

    threads = [threading.Thread(target=arrive) for _ in range(arrivals)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(let_through) == arrivals
    assert let_through.count(True) == 5
    assert SigninFailures.objects.get(kind="account", subject="dana").failures == 5


@pytest.mark.parametrize(
    ("remote_addr", "counted_as"),
    [
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.10", "203.0.113.10"),
        ("203.0.113.10", "203.0.113.10"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_a_client_address_counts_as(remote_addr, counted_as):
    assert address_key(remote_addr) == counted_as


def test_the_purge_forgets_only_records_that_hold_nothing_back():
    locked_at = fail_patiently(["locked"] * 10, start=at(0), address="192.0.2.1")
    fail("stale", when=locked_at - dt.timedelta(seconds=901), address="192.0.2.2")

    assert signin_failures_purge(now=locked_at + dt.timedelta(seconds=899)) == 2  # "stale", its address

    assert set(SigninFailures.objects.values_list("subject", flat=True)) == {"locked", "192.0.2.1"}
    assert attempt_wrong("locked", when=locked_at + dt.timedelta(seconds=899), address="192.0.2.9") == 1


def test_the_purge_runs_hourly_from_celery_beat():
    fail("stale", when=timezone.now() - dt.timedelta(days=1))

    assert django_settings.CELERY_BEAT_SCHEDULE["forget-old-signin-failures"]["schedule"] == 3600
    assert tasks.forget_old_signin_failures() == 2
    assert not SigninFailures.objects.exists()


def test_signin_unlock_lifts_the_lock_of_an_account_and_of_an_address_at_once():
    now = fail_patiently(["dana"] * 10, start=timezone.now(), address="192.0.2.1")
    now = fail_patiently([f"guesser{n}" for n in range(50)], start=now)
    assert attempt_wrong("dana", when=now, address="192.0.2.99") is not None
    assert attempt_wrong("erin", when=now) == 900

    call_command("signin_unlock", " Dana", stdout=io.StringIO())
    assert attempt_wrong("dana", when=now, address="192.0.2.99") is None

    call_command("signin_unlock", "--address", OFFICE, stdout=io.StringIO())
    assert attempt_wrong("erin", when=now) is None
