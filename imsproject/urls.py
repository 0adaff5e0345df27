from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from imsproject import views
from messaging import urls as messaging_urls
from messaging.forms import AdminSigninForm, SigninForm

# Every page that takes a password goes through the sign-in guard (messaging.services.signin).
admin.site.login_form = AdminSigninForm

urlpatterns = [
    path("", views.index, name="index"),
    path("chat/", views.chat, name="chat"),
    path("sw.js", views.service_worker, name="service-worker"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="login.html", authentication_form=SigninForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("messaging.urls")),
    path("", include(messaging_urls.file_urlpatterns)),
    path("api/", include("notifications.urls")),
]

handler400 = views.bad_request
handler404 = views.not_found
handler500 = views.server_error
