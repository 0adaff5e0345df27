"""The REST API, included at /api/ (see messaging.views for what each endpoint does)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from messaging import views

urlpatterns = [
    path("messages/", views.MessageSendApi.as_view(), name="api-message-send"),
    path("messages/read/", views.MessagesReadApi.as_view(), name="api-messages-read"),
    path("conversations/", views.ConversationListApi.as_view(), name="api-conversations"),
    path(
        "conversations/<int:conversation_id>/", views.ConversationDetailApi.as_view(), name="api-conversation"
    ),
    path(
        "conversations/<int:conversation_id>/members/",
        views.ConversationMembersApi.as_view(),
        name="api-conversation-members",
    ),
    path(
        "conversations/<int:conversation_id>/members/<int:user_id>/",
        views.ConversationMemberApi.as_view(),
        name="api-conversation-member",
    ),
    path("users/", views.UserDirectoryApi.as_view(), name="api-users"),
    path(
        "conversations/<int:conversation_id>/messages/",
        views.ConversationMessagesApi.as_view(),
        name="api-conversation-messages",
    ),
    path("ws-ticket/", views.WsTicketApi.as_view(), name="api-ws-ticket"),
    # The OpenAPI 3 document, public like the protocol itself. No Swagger UI: drf-spectacular
    # serves its assets from a CDN, and clients here may have no internet.
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
]
