"""Shared fixtures: personas (alice, bob, carol) with API tokens, and server availability."""

from __future__ import annotations

import os

import pytest
from rest_framework.authtoken.models import Token

from messaging.models import User
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """PBKDF2's real cost (~0.5 s a user here) would dominate tests that make users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def local_push_endpoints(settings) -> None:
    """Web Push endpoints on this machine's local servers are allowed, plain http included."""
    from tests.notifications.providers.servers import LOCAL_HOSTS

    settings.IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS = True
    settings.IMS_WEBPUSH_ALLOWED_HOSTS = LOCAL_HOSTS


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    """The REST send throttle counts in the cache; one test's sends must not limit another's."""
    from django.core.cache import cache

    cache.clear()


def _persona(name: str) -> User:
    user = UserFactory(username=name, display_name=name.title())
    Token.objects.get_or_create(user=user)
    return user


@pytest.fixture
def alice(db) -> User:
    return _persona("alice")


@pytest.fixture
def bob(db) -> User:
    return _persona("bob")


@pytest.fixture
def carol(db) -> User:
    return _persona("carol")


def token_of(user: User) -> str:
    return Token.objects.get(user=user).key


def require_server(name: str, reachable: bool, where: str) -> None:
    """Skip with a clear reason when a server is absent; on CI (CI=true) fail instead."""
    if reachable:
        return
    message = f"{name} is not reachable at {where}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI never skips server tests")
    pytest.skip(f"{message}; start it to run this test")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """REDIS_URL, or the local default; tests that need Redis use this."""
    import redis

    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        reachable = True
    except redis.RedisError:
        reachable = False
    require_server("Redis", reachable, url)
    return url


@pytest.fixture(scope="session", autouse=True)
def side_lane_connections_closed(django_db_setup, django_db_blocker):
    """The batchers' side lanes (IMS_DB_FLUSHES > 1) keep a database connection in a thread
    of their own; PostgreSQL cannot drop the test database while it is open."""
    yield
    from messaging.batching import close_side_connections

    with django_db_blocker.unblock():
        close_side_connections()
