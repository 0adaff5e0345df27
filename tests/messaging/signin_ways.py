"""The ways a password turns into credentials (the login page, the admin's login, the token
endpoint), each driven as its users drive it and read back as one kind of answer, and a
clock the sign-in tests can move."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Protocol

from django.db.models import F
from django.test import Client
from rest_framework.test import APIClient

from messaging.models import SigninFailures

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's
OFFICE = "203.0.113.10"
ELSEWHERE = "198.51.100.20"

SIGNED_IN = "signed in"
WRONG = "wrong"
REFUSED = "refused"


@dataclass(frozen=True)
class Answer:
    outcome: str  # SIGNED_IN, WRONG or REFUSED
    status: int
    message: str  # what the person (or the app) reads; "" when signed in
    retry_after: int | None  # seconds, when refused


class WayIn(Protocol):
    name: str

    def attempt(self, username: str, password: str, *, address: str = OFFICE) -> Answer: ...


RETRY_IN = re.compile(r"Try again in (\d+) seconds?\.")


def _form_answer(response, *, url: str) -> Answer:
    if response.status_code == 302:
        return Answer(SIGNED_IN, 302, "", None)
    assert response.status_code == 200, (url, response.status_code)
    message = " ".join(response.context["form"].non_field_errors())
    retry = RETRY_IN.search(message)
    if retry:
        return Answer(REFUSED, 200, message, int(retry.group(1)))
    return Answer(WRONG, 200, message, None)


class LoginPage:
    name = "login page"
    url = "/login/"

    def attempt(self, username: str, password: str, *, address: str = OFFICE) -> Answer:
        response = Client().post(self.url, {"username": username, "password": password}, REMOTE_ADDR=address)
        return _form_answer(response, url=self.url)


class AdminLogin:
    name = "admin login"
    url = "/admin/login/"

    def attempt(self, username: str, password: str, *, address: str = OFFICE) -> Answer:
        response = Client().post(self.url, {"username": username, "password": password}, REMOTE_ADDR=address)
        return _form_answer(response, url=self.url)


class TokenApi:
    name = "token endpoint"
    url = "/api/auth/token/"

    def attempt(self, username: str, password: str, *, address: str = OFFICE) -> Answer:
        response = APIClient().post(
            self.url, {"username": username, "password": password}, format="json", REMOTE_ADDR=address
        )
        body = response.json()
        if response.status_code == 200:
            assert set(body) == {"token"}, body
            return Answer(SIGNED_IN, 200, "", None)
        if response.status_code == 429:
            assert body["code"] == "rate_limited", body
            return Answer(REFUSED, 429, body["detail"], int(response["Retry-After"]))
        assert response.status_code == 400, (response.status_code, body)
        assert body["code"] == "bad_request", body
        return Answer(WRONG, 400, body["detail"], None)


WAYS_IN: list[WayIn] = [LoginPage(), AdminLogin(), TokenApi()]


def time_passes(seconds: float) -> None:
    """The sign-in records as they will stand `seconds` from now: the guard compares the
    clock with the times it stored, so moving those back moves its clock forward."""
    delta = dt.timedelta(seconds=seconds)
    SigninFailures.objects.update(
        window_started_at=F("window_started_at") - delta, last_failed_at=F("last_failed_at") - delta
    )


def guess_patiently(way: WayIn, username: str, password: str, *, address: str = OFFICE) -> Answer:
    """One guess by someone who waits out a slowed account or address (never a lockout)."""
    answer = way.attempt(username, password, address=address)
    if answer.outcome == REFUSED and answer.retry_after is not None and answer.retry_after <= 60:
        time_passes(answer.retry_after)
        answer = way.attempt(username, password, address=address)
    return answer
