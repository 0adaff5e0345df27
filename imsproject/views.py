"""Project-level pages that belong to no app."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    """What IMS is and where to go next. Renders no credentials, not even the user's own."""
    return render(request, "index.html")
