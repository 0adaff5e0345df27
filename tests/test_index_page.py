"""The root page: what IMS is, where to go, and never a credential."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from tests.conftest import token_of


@pytest.mark.django_db
def test_index_page_loads_for_anonymous_visitors(client):
    response = client.get("/")

    assert response.status_code == 200
    assert b'href="/admin/"' in response.content
    assert b"/api/" in response.content


def test_index_page_names_the_signed_in_user_but_never_shows_their_token(client, alice):
    client.force_login(alice)

    response = client.get("/")

    assert response.status_code == 200
    assert b"alice" in response.content
    assert token_of(alice).encode() not in response.content


@pytest.mark.django_db
def test_index_page_escapes_the_username(client):
    from tests.factories import UserFactory

    user = UserFactory(username="<script>x")
    Token.objects.create(user=user)
    client.force_login(user)

    response = client.get("/")

    assert b"<script>x" not in response.content
    assert b"&lt;script&gt;x" in response.content
