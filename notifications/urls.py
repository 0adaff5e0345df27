"""The notifications REST API, included at /api/ (see notifications.views)."""

from django.urls import path

from notifications import views

urlpatterns = [
    path("push/vapid-public-key/", views.VapidPublicKeyApi.as_view(), name="api-vapid-public-key"),
    path("notifications/", views.NotificationListApi.as_view(), name="api-notifications"),
    path("notifications/read/", views.NotificationsReadApi.as_view(), name="api-notifications-read"),
    path("devices/", views.DeviceListApi.as_view(), name="api-devices"),
    path("devices/<int:device_id>/", views.DeviceDetailApi.as_view(), name="api-device"),
    path("me/preferences/", views.PreferencesApi.as_view(), name="api-preferences"),
    path(
        "conversations/<int:conversation_id>/mute/",
        views.ConversationMuteApi.as_view(),
        name="api-conversation-mute",
    ),
]
