"""Request bodies: the most each route takes, and the routes that answer 401 before reading one.

The rules live here; two layers apply them. RequestBodyLimits, the ASGI middleware around
the HTTP application, holds on any ASGI server (uvicorn hands a body to the application as
it arrives). daphne reads a whole body before the application sees a byte of it, so
imsproject.daphne_bodies applies the same rules inside daphne as soon as the headers are in.
Before both, an unauthenticated 200 MiB POST grew daphne by about 200 MiB before Django
answered 401.

- Every route takes IMS_MAX_REQUEST_BYTES; uploads take IMS_MAX_UPLOAD_BYTES plus their
  multipart framing (the view's own check, messaging.views.upload_limit, stays); the admin's
  forms take what Django itself accepts as form data (DATA_UPLOAD_MAX_MEMORY_SIZE).
- A route whose DRF view requires authentication gets 401 at once when the request carries
  neither an Authorization header nor a session cookie; a view names the methods it takes
  from anyone in `anonymous_methods` (signing in with a password, say).
- Before a larger body (over CHECK_CREDENTIALS_ABOVE_BYTES, or chunked) is read for such a
  route, the token or session it presents is checked: a made-up token buys no upload.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http import HTTPStatus
from importlib import import_module
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.urls import Resolver404, resolve
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from messaging.auth import user_for_token
from messaging.errors import IMSError, TooLarge, error_body
from messaging.views.upload_limit import MULTIPART_OVERHEAD_BYTES
from messaging.views.upload_limit import too_large as upload_too_large

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

UPLOAD_URL_NAME = "api-conversation-uploads"
# Bodies up to this size are read before the credentials they come with are checked:
# checking first would cost every ordinary API call a second token query (DRF checks
# again), and reading this much costs less. A larger body, or one of unknown size, waits.
CHECK_CREDENTIALS_ABOVE_BYTES = 64 * 1024
NOT_PROVIDED = str(NotAuthenticated.default_detail)
INVALID_TOKEN = "Invalid token."  # noqa: S105 (DRF's TokenAuthentication's words, no secret)


@dataclass(frozen=True, kw_only=True)
class RouteRules:
    """What a route takes before its view runs."""

    max_body_bytes: int
    too_large: IMSError  # what a body over max_body_bytes is told
    needs_credentials: bool
    json_errors: bool


@dataclass(frozen=True, kw_only=True)
class RequestHead:
    """What the rules read from a request before its body: the path within the application,
    the body's announced size (None when unknown: chunked) and the credentials it carries."""

    path: str
    body_bytes: int | None
    authorization: str | None
    cookies: str

    @classmethod
    def from_scope(cls, scope: Scope) -> RequestHead:
        authorization = None
        cookies = []
        body_bytes: int | None = 0
        chunked = False
        for name, value in scope.get("headers", []):
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"cookie":
                cookies.append(value.decode("latin-1"))
            elif name == b"content-length":
                body_bytes = int(value) if value.isdigit() else None
            elif name == b"transfer-encoding":
                chunked = True  # it overrides any Content-Length (RFC 9112, 6.3)
        return cls(
            path=app_path(scope["path"], scope.get("root_path", "")),
            body_bytes=None if chunked else body_bytes,
            authorization=authorization,
            cookies="; ".join(cookies),
        )

    @property
    def session_key(self) -> str | None:
        return parse_cookie(self.cookies).get(settings.SESSION_COOKIE_NAME) if self.cookies else None


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """An answer given instead of the application's, as ASGI headers."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


def app_path(path: str, root_path: str) -> str:
    """The path the URLconf sees (as Django's ASGI handler strips the mount point)."""
    return path.removeprefix(root_path) if root_path else path


@dataclass(frozen=True, kw_only=True)
class _Route:
    url_name: str | None
    is_admin: bool
    is_api: bool  # a DRF view
    needs_credentials: bool
    anonymous_methods: frozenset[str] = frozenset()


def route_rules(path: str, method: str) -> RouteRules:
    """The rules of a `method` request to the route `path` resolves to; an unknown path gets
    the default ones."""
    route = _route(path)
    max_body_bytes = settings.IMS_MAX_REQUEST_BYTES
    too_large: IMSError = TooLarge(f"request bodies here are limited to {max_body_bytes} bytes")
    if route.url_name == UPLOAD_URL_NAME:
        max_body_bytes = settings.IMS_MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES
        too_large = upload_too_large(settings.IMS_MAX_UPLOAD_BYTES)
    elif route.is_admin and settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        max_body_bytes = max(max_body_bytes, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        too_large = TooLarge(f"request bodies here are limited to {max_body_bytes} bytes")
    return RouteRules(
        max_body_bytes=max_body_bytes,
        too_large=too_large,
        needs_credentials=route.needs_credentials and method.upper() not in route.anonymous_methods,
        json_errors=route.is_api or path.startswith("/api/"),
    )


# Resolving costs about 45 us a path, paid by every request with a body, twice under daphne;
# the URLconf does not change while the process runs.
@functools.lru_cache(maxsize=1024)
def _route(path: str) -> _Route:
    try:
        match = resolve(path)
    except Resolver404:
        return _Route(url_name=None, is_admin=False, is_api=False, needs_credentials=False)
    view_class = getattr(match.func, "view_class", None)
    is_api = isinstance(view_class, type) and issubclass(view_class, APIView)
    return _Route(
        url_name=match.url_name,
        is_admin="admin" in match.namespaces,
        is_api=is_api,
        needs_credentials=is_api and _requires_authentication(view_class),
        anonymous_methods=frozenset(getattr(view_class, "anonymous_methods", ())),
    )


def _requires_authentication(view_class: Any) -> bool:
    """Whether DRF refuses the view to anonymous callers: IsAuthenticated (or a subclass) among
    its permissions. Composed permissions (`A | B`) are left to DRF."""
    return any(
        isinstance(permission, type) and issubclass(permission, IsAuthenticated)
        for permission in view_class.permission_classes
    )


def refusal_at_headers(head: RequestHead, rules: RouteRules) -> Refusal | None:
    """401 or 413 for what the headers alone show; None to go on."""
    if rules.needs_credentials and head.authorization is None and not head.session_key:
        return unauthenticated(NOT_PROVIDED)
    if head.body_bytes is not None and head.body_bytes > rules.max_body_bytes:
        return body_too_large(rules)
    return None


def credentials_checked_first(head: RequestHead, rules: RouteRules) -> bool:
    """Whether the request's credentials are checked before its body is read."""
    large = head.body_bytes is None or head.body_bytes > CHECK_CREDENTIALS_ABOVE_BYTES
    return rules.needs_credentials and large


async def refusal_of_credentials(head: RequestHead) -> Refusal | None:
    """401 unless the API token, or else the session, belongs to an active user (as DRF's
    token then session authentication decide)."""
    if head.authorization is not None:
        keyword, _, key = head.authorization.strip().partition(" ")
        if keyword.lower() == "token":
            user = await user_for_token(key.strip())
            return None if user.is_authenticated else unauthenticated(INVALID_TOKEN)
    session_key = head.session_key
    if session_key and (await _session_user(session_key)).is_authenticated:
        return None
    return unauthenticated(NOT_PROVIDED)


@database_sync_to_async
def _session_user(session_key: str) -> Any:
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return auth.get_user(request)


def unauthenticated(detail: str) -> Refusal:
    """DRF's 401: its body, and the scheme of the first authentication class (the token)."""
    return _json_refusal(HTTPStatus.UNAUTHORIZED, {"detail": detail}, (b"www-authenticate", b"Token"))


def body_too_large(rules: RouteRules) -> Refusal:
    """413, with the protocol's error body on the API."""
    if rules.json_errors:
        return _json_refusal(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, error_body(rules.too_large))
    body = f"{rules.too_large.detail}\n".encode()
    return Refusal(
        status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        headers=(
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ),
        body=body,
    )


def _json_refusal(status: HTTPStatus, data: dict[str, Any], *extra: tuple[bytes, bytes]) -> Refusal:
    body = json.dumps(data, separators=(",", ":")).encode()  # as DRF's compact renderer
    return Refusal(
        status=status,
        headers=(
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-content-type-options", b"nosniff"),
            *extra,
        ),
        body=body,
    )


async def send_refusal(send: Send, refusal: Refusal) -> None:
    await send({"type": "http.response.start", "status": refusal.status, "headers": list(refusal.headers)})
    await send({"type": "http.response.body", "body": refusal.body})


class RequestBodyLimits:
    """ASGI middleware for HTTP: answers what the headers already show (401, 413) without
    reading the body, and cuts a body off with 413 as soon as it passes its route's limit,
    handing the application a disconnect instead of the rest. A request that announces no
    body goes straight through: there is nothing to keep out, and DRF gives its own 401."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = RequestHead.from_scope(scope)
        rules = None
        if head.body_bytes != 0:
            rules = route_rules(head.path, scope["method"])
            refusal = refusal_at_headers(head, rules)
            if refusal is None and credentials_checked_first(head, rules):
                refusal = await refusal_of_credentials(head)
            if refusal is not None:
                await send_refusal(send, refusal)
                return
        body = _LimitedBody(receive, send, path=head.path, method=scope["method"], rules=rules)
        await self.app(scope, body.receive, body.send)


class _LimitedBody:
    """The receive and send of one request whose body may not pass its route's limit."""

    def __init__(
        self, receive: Receive, send: Send, *, path: str, method: str, rules: RouteRules | None
    ) -> None:
        self._receive = receive
        self._send = send
        self.path = path
        self.method = method
        self._rules = rules  # looked up at the first byte of a body that was not announced
        self.received_bytes = 0
        self.refused = False
        self.response_started = False

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request" and message.get("body"):
            self.received_bytes += len(message["body"])
            if self._rules is None:
                self._rules = route_rules(self.path, self.method)
            if self.received_bytes > self._rules.max_body_bytes:
                self.refused = True
                if not self.response_started:
                    await send_refusal(self._send, body_too_large(self._rules))
                # Django's handler stops reading and answers nothing to a disconnect.
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # the application's answer to a body it never got whole
        if message["type"] == "http.response.start":
            self.response_started = True
        await self._send(message)
