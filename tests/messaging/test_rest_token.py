"""POST /api/auth/token/ (a password for the user's API token) and DELETE (revoke it).

How wrong passwords are slowed and refused there, as on every way in, is in test_signin.py.
"""

from __future__ import annotations

import logging

import pytest
from channels.db import database_sync_to_async
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from messaging.models import SigninFailures
from messaging.services.tokens import WRONG_CREDENTIALS
from tests.conftest import token_of
from tests.factories import UserFactory
from tests.messaging.rest_client import api_as
from tests.messaging.signin_ways import OFFICE, PASSWORD, TokenApi, guess_patiently
from tests.messaging.wsclient import (
    refused,
    ws_connect,
    ws_isolation,  # noqa: F401  (fixture)
    ws_path,
)

URL = "/api/auth/token/"


def sign_in(username: str, password: str, **extra) -> object:
    return APIClient().post(URL, {"username": username, "password": password}, format="json", **extra)


# --- obtaining a token ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_right_password_gets_the_users_api_token_which_then_works(alice):
    response = sign_in("alice", PASSWORD)

    assert response.status_code == 200
    assert response.json() == {"token": token_of(alice)}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get("/api/conversations/").status_code == 200


@pytest.mark.django_db
def test_a_user_without_a_token_gets_one_made():
    erin = UserFactory(username="erin")

    response = sign_in("erin", PASSWORD)

    assert response.status_code == 200
    assert response.json() == {"token": Token.objects.get(user=erin).key}


@pytest.mark.django_db
def test_a_wrong_password_an_unknown_user_and_an_inactive_user_get_one_generic_answer(alice):
    UserFactory(username="gone", is_active=False)

    answers = [sign_in("alice", "wrong"), sign_in("nobody", PASSWORD), sign_in("gone", PASSWORD)]

    for response in answers:
        assert response.status_code == 400
        assert response.json() == {
            "code": "bad_request",
            "detail": WRONG_CREDENTIALS,
            "non_field_errors": [WRONG_CREDENTIALS],
        }
        assert "Retry-After" not in response


@pytest.mark.django_db
def test_too_many_attempts_are_answered_429_rate_limited_with_retry_after(alice):
    for n in range(5):
        sign_in("alice", f"guess-{n}")

    response = sign_in("alice", PASSWORD)

    assert response.status_code == 429
    assert response.json() == {
        "code": "rate_limited",
        "detail": "Too many sign-in attempts. Try again in 2 seconds.",
    }
    assert response["Retry-After"] == "2"


@pytest.mark.django_db
def test_the_lock_is_logged_once_with_the_account_and_never_the_password(alice, caplog):
    with caplog.at_level(logging.INFO):
        for n in range(12):
            guess_patiently(TokenApi(), "alice", f"secret-guess-{n}")

    locks = [record for record in caplog.records if "sign-in locked" in record.getMessage()]
    assert len(locks) == 1
    assert locks[0].levelno == logging.WARNING
    assert "'alice'" in locks[0].getMessage()
    assert not [record for record in caplog.records if "secret-guess" in record.getMessage()]


@pytest.mark.django_db
def test_a_missing_password_or_username_is_a_bad_request_and_counts_nothing(alice):
    for body in ({"username": "alice"}, {"password": PASSWORD}, {"username": "", "password": "x"}):
        response = APIClient().post(URL, body, format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "bad_request"
    assert not SigninFailures.objects.exists()


@pytest.mark.django_db
def test_only_json_is_accepted_so_a_cross_site_form_checks_no_password(alice):
    response = APIClient().post(URL, {"username": "alice", "password": PASSWORD}, format="multipart")

    assert response.status_code == 415
    assert response.json()["code"] == "bad_request"
    assert not SigninFailures.objects.exists()


@pytest.mark.django_db
def test_a_stale_token_or_a_session_sent_along_does_not_stand_in_the_way(alice):
    stale = APIClient(enforce_csrf_checks=True)
    stale.credentials(HTTP_AUTHORIZATION="Token no-such-token")
    assert stale.post(URL, {"username": "alice", "password": PASSWORD}, format="json").status_code == 200

    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.post(URL, {"username": "alice", "password": PASSWORD}, format="json").status_code == 200


@pytest.mark.django_db
def test_the_address_counted_is_the_clients_not_a_forwarded_for_header(alice):
    for n in range(5):
        sign_in("nobody", f"guess-{n}", REMOTE_ADDR=OFFICE, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")

    assert set(SigninFailures.objects.filter(kind="address").values_list("subject", flat=True)) == {OFFICE}


# --- revoking it ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_revoking_deletes_the_callers_token_and_the_next_sign_in_gets_a_new_one(alice, bob):
    old = token_of(alice)

    response = api_as(alice).delete(URL)

    assert response.status_code == 204
    assert not Token.objects.filter(user=alice).exists()
    assert Token.objects.filter(user=bob).exists()
    stale = APIClient()
    stale.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert stale.get("/api/conversations/").status_code == 401
    new = sign_in("alice", PASSWORD).json()["token"]
    assert new != old


@pytest.mark.django_db
def test_revoking_needs_credentials():
    assert APIClient().delete(URL).status_code == 401


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("ws_isolation")
async def test_revoking_closes_the_users_websockets_with_4403(alice):
    key = await database_sync_to_async(token_of)(alice)
    client = await database_sync_to_async(api_as)(alice)
    async with ws_connect(alice) as ws:
        response = await database_sync_to_async(client.delete)(URL)

        assert response.status_code == 204
        assert await ws.receive_close() == 4403
    assert await refused(ws_path(token=key))


# --- schema --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_schema_documents_every_answer_of_the_token_endpoint():
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    token = schema["paths"][URL]

    post = token["post"]["responses"]
    assert set(post) == {"200", "400", "413", "415", "429"}
    assert "Retry-After" in post["429"]["headers"]
    assert post["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Token")
    assert set(token["delete"]["responses"]) == {"204", "401", "403"}
    assert token["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/TokenRequest"
    )
