"""URLs of uploads, included at the site root: the REST call under /api/, files under /uploads/."""

from django.urls import path

from messaging import upload_views

urlpatterns = [
    path(
        "api/conversations/<int:conversation_id>/uploads/",
        upload_views.UploadCreateApi.as_view(),
        name="api-conversation-uploads",
    ),
    path("uploads/<uuid:upload_id>/<str:name>", upload_views.UploadFileApi.as_view(), name="upload-file"),
]
