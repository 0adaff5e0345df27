"""ASGI entry point: HTTP through Django behind the request body limits, /ws/ through the IMS consumer."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imsproject.settings")
# Django must be set up before the consumer (and its models) are imported.
django_http = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from imsproject.daphne_hardening import harden_daphne  # noqa: E402
from imsproject.request_limits import RequestBodyLimits  # noqa: E402
from imsproject.shutdown import install_graceful_shutdown  # noqa: E402
from messaging.auth import CredentialsMiddleware  # noqa: E402
from messaging.routing import websocket_urlpatterns  # noqa: E402

if settings.DEBUG:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_http = ASGIStaticFilesHandler(django_http)

harden_daphne()
install_graceful_shutdown()

application = ProtocolTypeRouter(
    {
        "http": RequestBodyLimits(django_http),
        "websocket": CredentialsMiddleware(URLRouter(websocket_urlpatterns)),
    }
)

# Everything imported so far lives as long as the process: out of the garbage collector's
# sight, its full collections stop rescanning Django's few hundred thousand objects. A
# broadcast to 10,000 users allocates enough to trigger several (about 80 ms of its 0.5 s
# stored in a process without this).
gc.freeze()
