"""Admin building blocks every app shares. Other apps import them through messaging.api
(apps stand under the project and never import it)."""

from __future__ import annotations

from django.db.models import Model
from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """View only: no add, change or delete, whoever the staff user is. For tables whose
    rows keep an invariant (streams, deliveries, push records) that a hand edit would break.
    Viewing still needs the model's view permission, as Django's admin always asks."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
