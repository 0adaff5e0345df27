"""URLs of signing in over REST, included at the site root beside the REST API's own."""

from django.urls import path

from messaging import signin_views

urlpatterns = [
    path("api/auth/token/", signin_views.ApiTokenApi.as_view(), name="api-auth-token"),
]
