"""The HTTP clients providers send through, one per provider, kept open: httpx for the
providers that speak HTTP themselves, and the requests session pywebpush posts with.

Keeping them open matters most for APNs, which asks providers to hold their HTTP/2
connection across pushes rather than reconnect for each one.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from notifications.providers import endpoints

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


class _CheckedAddressAdapter(HTTPAdapter):
    """Checks every request's URL against the endpoint policy and connects to the address
    the check approved, not to what a second lookup might answer (DNS rebinding). TLS still
    sends the host name (SNI) and verifies the certificate against it; Host names it too.

    The hook is requests' documented one for choosing a connection pool (2.32.2+); behind a
    proxy the CONNECT tunnel goes to the checked address as well.
    """

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        checked = endpoints.endpoint_check(str(request.url))
        host_params["host"] = str(checked.address)
        if checked.endpoint.scheme == "https":
            pool_kwargs["server_hostname"] = checked.endpoint.host
        request.headers["Host"] = checked.endpoint.host_header
        return host_params, pool_kwargs


class _WebPushSession(requests.Session):
    """Never follows a redirect: a push service has no reason to send one, and following it
    would carry our signed POST wherever the answer points, inside the network included.
    Trusts IMS_PUSH_CA_FILE even when REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE is set: requests
    lets those override a session's own `verify` (psf/requests#3829, #4650)."""

    def get_redirect_target(self, resp: requests.Response) -> None:
        return None

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        verify = self.verify if verify is None else verify
        return super().merge_environment_settings(url, proxies, stream, verify, cert)


def webpush_session() -> requests.Session:
    """The session Web Push posts through: endpoint policy at connect time, no redirects.
    Its requests raise endpoints.EndpointRefused and EndpointUnresolved."""
    session = _WebPushSession()
    session.max_redirects = 0
    adapter = _CheckedAddressAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if settings.IMS_PUSH_CA_FILE:
        session.verify = settings.IMS_PUSH_CA_FILE
    return session
