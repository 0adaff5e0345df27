"""Every admin page of messaging and notifications asks Django's model permissions, as the
rest of the admin does: being staff opens the admin, never a model. A staff user without
permissions sees and does nothing; with a model's view permission alone, they see its list
and change nothing (no add, change, delete, nor any action)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db.models import Model
from django.test import RequestFactory
from django.urls import reverse

from messaging.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

APPS = ("messaging", "notifications")
MODELS = sorted(
    (model for model in admin.site._registry if model._meta.app_label in APPS),
    key=lambda model: model._meta.label,
)


@pytest.fixture
def clerk() -> User:
    """Staff, holding no permission."""
    return UserFactory(username="clerk", is_staff=True)


def request_by(user: User):
    """A request as that user, read afresh so permissions granted since count."""
    request = RequestFactory().get("/admin/")
    request.user = User.objects.get(pk=user.pk)
    return request


def url(model: type[Model], page: str) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{page}")


def test_staff_without_permissions_see_no_model_on_the_admin_index(client, clerk):
    client.force_login(clerk)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert response.context["app_list"] == []


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.label)
def test_staff_without_permissions_are_refused_every_model(client, clerk, model):
    client.force_login(clerk)
    assert client.get(url(model, "changelist")).status_code == 403
    assert client.get(url(model, "add")).status_code == 403
    model_admin = admin.site._registry[model]
    request = request_by(clerk)
    assert not model_admin.has_module_permission(request)
    assert not model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.get_actions(request) == {}


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.label)
def test_staff_with_only_the_view_permission_see_the_list_and_change_nothing(client, clerk, model):
    clerk.user_permissions.add(
        Permission.objects.get(
            content_type__app_label=model._meta.app_label, codename=f"view_{model._meta.model_name}"
        )
    )
    client.force_login(clerk)
    assert client.get(url(model, "changelist")).status_code == 200
    assert client.get(url(model, "add")).status_code == 403
    model_admin = admin.site._registry[model]
    request = request_by(clerk)
    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.get_actions(request) == {}
