"""Wrong passwords are slowed, then refused for a while, on every way a password turns into
credentials: the login page, the admin's login and POST /api/auth/token/.

The limits are the defaults: an account's sixth check waits 2 s after the fifth failure,
the next 4 s, and so on; the tenth failure locks it for 15 minutes. An address is slowed
after 25 failures and locked at 50.
"""

from __future__ import annotations

import pytest
from django.test import Client

from messaging.models import SigninFailures, User
from tests.factories import UserFactory
from tests.messaging.signin_ways import (
    ELSEWHERE,
    OFFICE,
    PASSWORD,
    REFUSED,
    SIGNED_IN,
    WAYS_IN,
    WRONG,
    AdminLogin,
    Answer,
    LoginPage,
    WayIn,
    guess_patiently,
    time_passes,
)

pytestmark = pytest.mark.django_db

LOCKOUT_SECONDS = 900


@pytest.fixture(autouse=True)
def signin_limits(settings) -> None:
    """The defaults, stated here because the numbers in these tests follow from them."""
    settings.IMS_SIGNIN_ACCOUNT_SLOW_AFTER = 5
    settings.IMS_SIGNIN_ACCOUNT_LOCK_AFTER = 10
    settings.IMS_SIGNIN_ADDRESS_SLOW_AFTER = 25
    settings.IMS_SIGNIN_ADDRESS_LOCK_AFTER = 50
    settings.IMS_SIGNIN_DELAY_SECONDS = 2
    settings.IMS_SIGNIN_LOCKOUT_SECONDS = LOCKOUT_SECONDS


@pytest.fixture
def dana(db) -> User:
    """Staff, so that every way in (the admin's too) lets her in with her password."""
    return UserFactory(username="dana", is_staff=True)


@pytest.fixture(params=WAYS_IN, ids=lambda way: way.name)
def way(request) -> WayIn:
    return request.param


def outcomes(answers: list[Answer]) -> list[str]:
    return [answer.outcome for answer in answers]


def test_the_right_password_signs_in_and_a_wrong_one_is_answered_as_wrong(way, dana):
    assert way.attempt("dana", "not-her-password").outcome == WRONG
    assert way.attempt("dana", PASSWORD).outcome == SIGNED_IN


def test_thirty_wrong_passwords_in_a_row_are_checked_five_times_then_refused_and_so_is_the_right_one(
    way, dana, settings
):
    # A first wait longer than these thirty requests could take on a busy test machine.
    settings.IMS_SIGNIN_DELAY_SECONDS = 30

    answers = [way.attempt("dana", f"guess-{n}") for n in range(30)]

    assert outcomes(answers) == [WRONG] * 5 + [REFUSED] * 25
    assert all(20 < answer.retry_after <= 30 for answer in answers[5:])
    assert "Too many sign-in attempts. Try again in" in answers[-1].message
    assert way.attempt("dana", PASSWORD).outcome == REFUSED

    time_passes(30)
    assert way.attempt("dana", PASSWORD).outcome == SIGNED_IN


def test_a_guesser_who_waits_out_every_delay_is_locked_out_after_ten_failures_until_the_lockout_ends(
    way, dana
):
    checked = [guess_patiently(way, "dana", f"guess-{n}") for n in range(10)]
    refused = [way.attempt("dana", f"guess-{n}") for n in range(10, 30)]

    assert outcomes(checked) == [WRONG] * 10
    assert outcomes(refused) == [REFUSED] * 20
    # Counted from the tenth failure; the machine may be slow between one request and the next.
    assert all(LOCKOUT_SECONDS - 30 < answer.retry_after <= LOCKOUT_SECONDS for answer in refused)
    assert way.attempt("dana", PASSWORD).outcome == REFUSED  # the lock holds for the right one too

    time_passes(LOCKOUT_SECONDS - 10)
    still_locked = way.attempt("dana", PASSWORD)
    assert still_locked.outcome == REFUSED
    assert still_locked.retry_after <= 10

    time_passes(10)
    assert way.attempt("dana", PASSWORD).outcome == SIGNED_IN


def test_a_lock_earned_on_one_way_in_holds_on_the_others(dana):
    for n in range(10):
        assert guess_patiently(LoginPage(), "dana", f"guess-{n}").outcome == WRONG

    for other in WAYS_IN:
        assert other.attempt("dana", PASSWORD).outcome == REFUSED, other.name


def test_the_right_password_forgets_the_accounts_failures(way, dana):
    assert outcomes([way.attempt("dana", f"guess-{n}") for n in range(4)]) == [WRONG] * 4
    assert way.attempt("dana", PASSWORD).outcome == SIGNED_IN

    assert outcomes([way.attempt("dana", f"guess-{n}") for n in range(5)]) == [WRONG] * 5


def test_usernames_typed_in_another_case_or_with_spaces_count_against_the_same_account(way, dana):
    typed = ["dana", "DANA", " Dana", "dAnA ", "Dana"]
    assert outcomes([way.attempt(name, "guess") for name in typed]) == [WRONG] * 5

    assert way.attempt("dana", PASSWORD).outcome == REFUSED


def test_an_unknown_username_gets_the_same_answers_as_a_known_one_at_every_stage(way, dana):
    def answers_for(username: str, *, address: str) -> list[Answer]:
        quick = [way.attempt(username, f"guess-{n}", address=address) for n in range(6)]
        patient = [guess_patiently(way, username, f"guess-{n}", address=address) for n in range(6, 11)]
        locked = [way.attempt(username, PASSWORD, address=address)]
        time_passes(LOCKOUT_SECONDS)
        after = [way.attempt(username, "guess-after", address=address)]
        return quick + patient + locked + after

    known = answers_for("dana", address=OFFICE)
    unknown = answers_for("nobody", address=ELSEWHERE)

    assert outcomes(known) == [WRONG] * 5 + [REFUSED] + [WRONG] * 5 + [REFUSED] + [WRONG]
    assert unknown == known


def test_wrong_passwords_for_many_accounts_from_one_address_get_that_address_refused_and_no_other(way, dana):
    accounts = [f"user{n}" for n in range(49)] + ["dana"]
    answers = [guess_patiently(way, name, "guess", address=OFFICE) for name in accounts]
    assert outcomes(answers) == [WRONG] * 50

    from_the_office = way.attempt("dana", PASSWORD, address=OFFICE)
    assert from_the_office.outcome == REFUSED
    assert from_the_office.retry_after > LOCKOUT_SECONDS - 30
    assert way.attempt("user7", "guess", address=OFFICE).outcome == REFUSED

    assert way.attempt("user7", "guess", address=ELSEWHERE).outcome == WRONG
    assert way.attempt("dana", PASSWORD, address=ELSEWHERE).outcome == SIGNED_IN


def test_colleagues_signing_in_from_one_office_address_do_not_use_up_its_allowance(way):
    colleagues = [UserFactory(username=f"colleague{n}", is_staff=True) for n in range(60)]

    answers = [way.attempt(user.username, PASSWORD, address=OFFICE) for user in colleagues]

    assert outcomes(answers) == [SIGNED_IN] * 60


def test_the_login_page_shows_the_refusal_in_its_form(dana):
    for n in range(5):
        LoginPage().attempt("dana", f"guess-{n}")

    page = Client().post("/login/", {"username": "dana", "password": PASSWORD}, REMOTE_ADDR=OFFICE)
    html = page.content.decode()

    assert '<p class="form-error" role="alert">Too many sign-in attempts. Try again in' in html
    assert PASSWORD not in html


def test_the_admin_refuses_the_right_password_of_a_non_staff_account_as_a_wrong_one_and_counts_it():
    UserFactory(username="erin", is_staff=False)
    admin = AdminLogin()

    answers = [admin.attempt("erin", PASSWORD) for _ in range(6)]

    assert outcomes(answers) == [WRONG] * 5 + [REFUSED]
    assert answers[0] == admin.attempt("nobody", "guess", address=ELSEWHERE)


def test_an_administrator_sees_the_locked_account_and_deleting_its_row_lifts_the_lock(admin_client, dana):
    for n in range(10):
        guess_patiently(LoginPage(), "dana", f"guess-{n}")

    listing = admin_client.get("/admin/messaging/signinfailures/").content.decode()
    assert "dana" in listing
    assert "900 s" in listing or "899 s" in listing

    row = SigninFailures.objects.get(kind="account", subject="dana")
    deleted = admin_client.post(f"/admin/messaging/signinfailures/{row.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert LoginPage().attempt("dana", PASSWORD).outcome == SIGNED_IN
