"""The httpx client every provider that speaks HTTP itself uses: one per provider, kept open.

Keeping it open matters most for APNs, which asks providers to hold their HTTP/2
connection across pushes rather than reconnect for each one.
"""

from __future__ import annotations

import ssl

import httpx
from django.conf import settings

# More than the few concurrent pushes a Celery worker makes; HTTP/2 multiplexes anyway.
_MAX_CONNECTIONS = 20


def tls_context() -> ssl.SSLContext | bool:
    """IMS_PUSH_CA_FILE's CAs when set, else httpx's default trust store."""
    if settings.IMS_PUSH_CA_FILE:
        return ssl.create_default_context(cafile=settings.IMS_PUSH_CA_FILE)
    return True


def http_client(*, http2: bool) -> httpx.Client:
    return httpx.Client(
        http2=http2,
        verify=tls_context(),
        timeout=settings.IMS_PUSH_TIMEOUT_SECONDS,
        limits=httpx.Limits(max_connections=_MAX_CONNECTIONS),
    )
