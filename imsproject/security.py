"""Response headers that keep user content from ever running as script in our origin.

Our own middleware rather than a package: the policy is one string, the same for every
page, and the only dynamic part is the WebSocket origin (browsers before CSP Level 3 do
not let 'self' cover ws:/wss:). Django 5.2 has no CSP support of its own (6.0 adds it).
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

# No inline script, no eval, nothing from another origin. Images may be blob:/data: URLs:
# the composer previews a pasted image before it is uploaded.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self' {ws_origin}; worker-src 'self'; manifest-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# The admin's templates carry a few inline style attributes; it still gets no inline script.
ADMIN_POLICY = POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


class ContentSecurityPolicyMiddleware:
    """Sets Content-Security-Policy unless the view set its own (uploads set a stricter one)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            template = ADMIN_POLICY if request.path.startswith("/admin/") else POLICY
            response["Content-Security-Policy"] = template.format(ws_origin=_ws_origin(request))
        return response


def _ws_origin(request: HttpRequest) -> str:
    try:
        host = request.get_host()
    except DisallowedHost:
        return ""  # the response is already a 400; 'self' alone is enough for it
    return f"{'wss' if request.is_secure() else 'ws'}://{host}"
