"""The URLs of messaging: `urlpatterns`, the REST API (included at /api/), and
`file_urlpatterns`, uploaded files for members (included at the site root, /uploads/)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from messaging.views import conversations, messages, tickets, tokens, uploads, users

urlpatterns = [
    path("auth/token/", tokens.ApiTokenApi.as_view(), name="api-auth-token"),
    path("messages/", messages.MessageSendApi.as_view(), name="api-message-send"),
    path("messages/read/", messages.MessagesReadApi.as_view(), name="api-messages-read"),
    path("conversations/", conversations.ConversationListApi.as_view(), name="api-conversations"),
    path(
        "conversations/<int:conversation_id>/",
        conversations.ConversationDetailApi.as_view(),
        name="api-conversation",
    ),
    path(
        "conversations/<int:conversation_id>/members/",
        conversations.ConversationMembersApi.as_view(),
        name="api-conversation-members",
    ),
    path(
        "conversations/<int:conversation_id>/members/<int:user_id>/",
        conversations.ConversationMemberApi.as_view(),
        name="api-conversation-member",
    ),
    path(
        "conversations/<int:conversation_id>/messages/",
        messages.ConversationMessagesApi.as_view(),
        name="api-conversation-messages",
    ),
    path(
        "conversations/<int:conversation_id>/uploads/",
        uploads.UploadCreateApi.as_view(),
        name="api-conversation-uploads",
    ),
    path("users/", users.UserDirectoryApi.as_view(), name="api-users"),
    path("ws-ticket/", tickets.WsTicketApi.as_view(), name="api-ws-ticket"),
    # The OpenAPI 3 document, public like the protocol itself. No Swagger UI: drf-spectacular
    # serves its assets from a CDN, and clients here may have no internet.
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
]

file_urlpatterns = [
    path("uploads/<uuid:upload_id>/<str:name>", uploads.UploadFileApi.as_view(), name="upload-file"),
]
