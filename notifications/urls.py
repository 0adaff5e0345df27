"""The notifications REST API, included at /api/ (see notifications.views)."""

from django.urls import path

from notifications import views

urlpatterns = [
    path("push/vapid-public-key/", views.VapidPublicKeyApi.as_view(), name="api-vapid-public-key"),
]
