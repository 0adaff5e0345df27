"""`manage.py create_demo_users`: the personas `make run` prints, created once."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from messaging.management.commands.create_demo_users import DEMO_USERS
from messaging.models import User

pytestmark = pytest.mark.django_db


def run_command() -> str:
    out = StringIO()
    call_command("create_demo_users", stdout=out)
    return out.getvalue()


def test_running_the_command_twice_creates_each_demo_user_once():
    run_command()
    first_ids = dict(User.objects.values_list("username", "pk"))
    first_tokens = dict(Token.objects.values_list("user__username", "key"))

    run_command()

    assert sorted(first_ids) == ["admin", "alice", "bob", "carol"]
    assert dict(User.objects.values_list("username", "pk")) == first_ids
    assert dict(Token.objects.values_list("user__username", "key")) == first_tokens


def test_demo_users_log_in_with_the_printed_passwords(client):
    output = run_command()

    for persona in DEMO_USERS:
        assert persona.password in output
        assert client.login(username=persona.username, password=persona.password)
        client.logout()


def test_each_demo_user_has_a_printed_api_token():
    output = run_command()

    for persona in DEMO_USERS:
        key = Token.objects.get(user__username=persona.username).key
        assert key in output


def test_only_admin_is_staff_and_superuser():
    run_command()

    assert list(User.objects.filter(is_staff=True).values_list("username", flat=True)) == ["admin"]
    assert list(User.objects.filter(is_superuser=True).values_list("username", flat=True)) == ["admin"]


def test_a_changed_password_is_kept_and_not_printed():
    run_command()
    bob = User.objects.get(username="bob")
    bob.set_password("bob-chose-another-one")
    bob.save()

    output = run_command()

    bob.refresh_from_db()
    assert bob.check_password("bob-chose-another-one")
    assert "bob-demo-password" not in output


def test_reset_passwords_sets_the_demo_password_again():
    run_command()
    bob = User.objects.get(username="bob")
    bob.set_password("bob-chose-another-one")
    bob.save()

    call_command("create_demo_users", "--reset-passwords", stdout=StringIO())

    bob.refresh_from_db()
    assert bob.check_password("bob-demo-password")
