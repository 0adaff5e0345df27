"""API tokens (DRF authtoken), obtained with a password and revoked by their holder."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.db import transaction
from rest_framework.authtoken.models import Token

from messaging.errors import BadRequest
from messaging.models import User
from messaging.services.signin import signin_guard

# One answer for an unknown user, an inactive one and a wrong password.
WRONG_CREDENTIALS = "Unable to sign in with this username and password."


def api_token_obtain(*, username: str, password: str, remote_addr: str | None) -> Token:
    """The user's API token (made on first use) for a right password, behind the sign-in
    guard: RateLimited when the account or address must wait, BadRequest when wrong."""
    with signin_guard(username=username, remote_addr=remote_addr):
        # Normalised as the login form normalises it, so both accept the same usernames.
        user = authenticate(None, username=User.normalize_username(username), password=password)
        if user is None:
            # Not tied to either field: which one was wrong is not for the caller to learn.
            raise BadRequest(WRONG_CREDENTIALS, field="non_field_errors")
    token, _ = Token.objects.get_or_create(user=user)
    return token


def api_token_revoke(*, user_id: int) -> bool:
    """Delete the user's API token; once this commits its WebSockets close with 4403
    (messaging.receivers). False when it had none."""
    with transaction.atomic():
        deleted, _ = Token.objects.filter(user_id=user_id).delete()
    return deleted > 0
