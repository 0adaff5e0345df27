"""The site's pages: the root redirect, login and logout, the chat page, the service
worker, static files with debug off, and the security headers on all of them."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.conftest import token_of
from tests.factories import UserFactory

INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)


@pytest.mark.django_db
def test_the_root_page_sends_an_anonymous_visitor_to_the_login_page(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/login/"


def test_the_root_page_sends_a_signed_in_employee_to_the_chat(client, alice):
    client.force_login(alice)

    assert client.get("/")["Location"] == "/chat/"


@pytest.mark.django_db
def test_the_chat_needs_a_sign_in_and_comes_back_after_it(client):
    response = client.get("/chat/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/chat/"


@pytest.mark.django_db
def test_the_login_page_is_the_products_own_with_a_csrf_token(client):
    response = client.get("/login/")

    assert response.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in response.content
    assert b"Django administration" not in response.content
    assert b'autocomplete="current-password"' in response.content


def test_signing_in_with_the_form_opens_the_chat(alice):
    client = Client(enforce_csrf_checks=True)
    client.get("/login/")
    token = client.cookies["csrftoken"].value

    response = client.post(
        "/login/", {"username": "alice", "password": "correct-horse-battery", "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 302
    assert response["Location"] == "/chat/"
    session = client.cookies["sessionid"]
    assert session["httponly"]
    assert session["samesite"] == "Lax"


def test_a_wrong_password_shows_an_error_and_no_session(client, alice):
    response = client.post("/login/", {"username": "alice", "password": "nope"})

    assert response.status_code == 200
    assert b'role="alert"' in response.content
    assert "sessionid" not in client.cookies


def test_signing_out_ends_the_session(client, alice):
    client.force_login(alice)

    response = client.post("/logout/")

    assert response["Location"] == "/login/"
    assert client.get("/chat/").status_code == 302


def test_the_chat_page_carries_the_user_escaped_and_never_a_token(client, db):
    user = UserFactory(username="eve", display_name='<script>alert("x")</script>')
    Token.objects.create(user=user)
    client.force_login(user)

    response = client.get("/chat/")

    assert response.status_code == 200
    assert b'<script>alert("x")</script>' not in response.content
    assert b"&lt;script&gt;" in response.content
    assert token_of(user).encode() not in response.content
    assert f'data-user-id="{user.pk}"'.encode() in response.content
    assert "csrftoken" in response.cookies


def test_every_page_forbids_inline_script_and_other_origins(client, alice):
    client.force_login(alice)

    for path in ("/chat/", "/login/", "/api/conversations/"):
        policy = client.get(path)["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"] == "'self'", path
        assert directives["default-src"] == "'self'", path
        assert directives["connect-src"] == "'self' ws://testserver", path
        assert directives["frame-ancestors"] == "'none'", path


def test_pages_hold_no_inline_script(client, alice):
    client.force_login(alice)
    pages = {"/chat/": client.get("/chat/").content.decode()}
    client.logout()
    pages["/login/"] = client.get("/login/").content.decode()

    for path, content in pages.items():
        scripts = content.split("<script")[1:]
        assert scripts or path == "/login/"
        for tag in scripts:
            assert " src=" in tag.split(">", 1)[0], f"inline script on {path}"
        assert not INLINE_HANDLER.search(content), f"an inline event handler on {path}"


@pytest.mark.django_db
def test_the_service_worker_is_served_at_the_root_scope(client):
    response = client.get("/sw.js")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript"
    assert response["Service-Worker-Allowed"] == "/"
    assert b'addEventListener("push"' in b"".join(response.streaming_content)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/ims/ims-client.js", "text/javascript"),
        ("/static/ims/chat/app.js", "text/javascript"),
        ("/static/ims/chat.css", "text/css"),
        ("/static/admin/css/base.css", "text/css"),
    ],
)
def test_static_files_are_served_with_debug_off(settings, path, content_type):
    settings.DEBUG = False

    response = Client().get(path)

    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert response["X-Content-Type-Options"] == "nosniff"
