"""WebSocket authentication: `?token=`, `?ticket=`, or the session cookie with a same-site Origin.

The outcome is `scope["user"]` (AnonymousUser when refused); the consumer refuses the
handshake for anonymous users, so it never answers 101 to a bad credential.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host

from messaging.services.tickets import ws_ticket_redeem


async def user_for_token(key: str) -> Any:
    """The token's active user, else AnonymousUser; handshakes arriving together share a query."""
    from messaging.batching import token_batcher  # batching imports the services: load lazily

    return await token_batcher().submit(key)


@database_sync_to_async
def user_for_ticket(key: str) -> Any:
    return ws_ticket_redeem(key=key) or AnonymousUser()


def origin_allowed(scope: dict[str, Any]) -> bool:
    """The Origin header names a host in ALLOWED_HOSTS (no Origin: not a browser, refused)."""
    headers = dict(scope.get("headers", []))
    origin = headers.get(b"origin")
    if not origin:
        return False
    try:
        host = urlparse(origin.decode("latin1")).hostname
    except ValueError:  # e.g. an unclosed "[" of an IPv6 literal
        return False
    if host and ":" in host:
        # hostname strips an IPv6 literal's brackets; ALLOWED_HOSTS keeps them, as in Host.
        host = f"[{host}]"
    if not host:
        return False
    allowed = [pattern for pattern in settings.ALLOWED_HOSTS if pattern != "*"]
    if "*" in settings.ALLOWED_HOSTS:
        # "*" accepts any Host; it must not accept any Origin, or cross-site hijacking is
        # back. Then only the page's own host (the Host header) may open a session socket.
        allowed.append(split_domain_port(headers.get(b"host", b"").decode("latin1"))[0])
    return validate_host(host, [pattern for pattern in allowed if pattern])


def query_params(scope: dict[str, Any]) -> dict[str, str]:
    raw = parse_qs(scope.get("query_string", b"").decode("latin1"))
    return {name: values[-1] for name, values in raw.items()}


class CredentialsMiddleware:
    """Token or ticket when the URL carries one; otherwise the session, same-site only."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.session_app = AuthMiddlewareStack(self._after_session)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        params = query_params(scope)
        if "token" in params:
            user = await user_for_token(params["token"])
        elif "ticket" in params:
            user = await user_for_ticket(params["ticket"])
        else:
            return await self.session_app(scope, receive, send)
        return await self.inner({**scope, "user": user, "auth_method": "credential"}, receive, send)

    async def _after_session(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        user = scope["user"]
        if not origin_allowed(scope):
            # Cross-site WebSocket hijacking: a page elsewhere rides on the cookie.
            user = AnonymousUser()
        return await self.inner({**scope, "user": user, "auth_method": "session"}, receive, send)
