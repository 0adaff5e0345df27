"""Project-level pages that belong to no app: the root redirect, the chat page, the
service worker script, and the error pages of requests no view took."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views import defaults
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


# Paths whose clients read JSON: the REST API and the files it links to.
API_PREFIXES = ("/api/", "/uploads/")


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404. Under /api/ (a path no route takes: an id that is not an integer, say)
    the answer is the API's error body, as the OpenAPI document lists it."""
    if _is_api(request):
        return JsonResponse({"code": "not_found", "detail": f"no such path: {request.path}"}, status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400 (a request Django itself refuses: too many query parameters, say)."""
    if _is_api(request):
        return JsonResponse({"code": "bad_request", "detail": "bad request"}, status=400)
    return defaults.bad_request(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the protocol's server_error under /api/; nothing was half done."""
    if _is_api(request):
        return JsonResponse({"code": "server_error", "detail": "internal error; retry later"}, status=500)
    return defaults.server_error(request)
