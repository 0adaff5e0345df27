"""Project-level pages that belong to no app: the root redirect, the chat page and the
service worker script."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

SERVICE_WORKER = settings.BASE_DIR / "static" / "ims" / "sw.js"


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    """The chat for a signed-in employee, the login page for anyone else."""
    return redirect("chat" if request.user.is_authenticated else "login")


@require_safe
@never_cache
@ensure_csrf_cookie  # the page's REST calls send it back as X-CSRFToken
@login_required
def chat(request: HttpRequest) -> HttpResponse:
    """The chat UI. All data comes from the REST API and the WebSocket, none from here:
    the template carries only the user's id and name, escaped by the template engine."""
    return render(request, "chat.html", {"max_upload_bytes": settings.IMS_MAX_UPLOAD_BYTES})


@require_safe
def service_worker(request: HttpRequest) -> FileResponse:
    """/sw.js at the site root: a service worker controls only pages under its own path,
    so it cannot live under /static/. Revalidated on every load so updates reach users."""
    response = FileResponse(SERVICE_WORKER.open("rb"), content_type="text/javascript")
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = "/"
    return response
