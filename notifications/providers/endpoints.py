"""Where Web Push may send: the address policy for subscription endpoints, which users choose.

The worker POSTs a signed request to whatever URL a subscription names. Without a policy,
any user could aim it at 127.0.0.1, the office network or the cloud metadata service and
read the answer back from the device list (red-team report "push endpoints reach into the
network"). So an endpoint must be https, carry no user name or password, sit on a host of
IMS_WEBPUSH_ALLOWED_HOSTS (the browsers' push services; `*`: any host), and every address
its name resolves to must be public. IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS lifts the https
and address rules (local development, tests, a push relay inside the company).

Registration checks an endpoint once; the send path checks it again (a name may resolve
elsewhere by then) and connects to the very address it checked (transport.webpush_session).
Reads settings and the system resolver; nothing else.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The shape of a URL; the policy below decides the rest.
_url_shape = URLValidator(schemes=["https", "http"])
# `is_global` (Python 3.11) passes these although nothing public lives there: NAT64 names
# an IPv4 address (checked in its place) and IPv6 site-local is private space long retired.
# Multicast passes too; it is checked apart.
_NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")


class EndpointRefused(Exception):
    """The policy refuses this endpoint. The message ("must be …") says what is allowed and
    names nothing but what the caller gave, so the user who gave it may see it."""


class EndpointUnresolved(Exception):
    """The endpoint's host did not resolve (now): a temporary failure at send time."""


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """A parsed endpoint: `host` lower case, without brackets or a trailing dot."""

    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default_port = 443 if self.scheme == "https" else 80
        return host if self.port == default_port else f"{host}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class CheckedEndpoint:
    """An endpoint the policy allows, and the address to connect to for it."""

    endpoint: Endpoint
    address: IPAddress


def allows_private_endpoints() -> bool:
    return bool(settings.IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS)


def allowed_hosts() -> list[str]:
    """IMS_WEBPUSH_ALLOWED_HOSTS as suffixes to match (lower case, no `*.` or dots around);
    empty means any host, and so does a `*` among them."""
    entries = [entry.strip().lower() for entry in settings.IMS_WEBPUSH_ALLOWED_HOSTS]
    if "*" in entries:
        return []
    hosts = (entry.removeprefix("*.").strip(".") for entry in entries)
    return [host for host in hosts if host]


def what_is_allowed() -> str:
    """What the policy allows, to end a sentence ("an endpoint must be …")."""
    scheme = "an http(s) URL" if allows_private_endpoints() else "an https URL"
    hosts = allowed_hosts()
    where = f" on a push service ({', '.join(hosts)})" if hosts else ""
    public = (
        " whose host resolves"
        if allows_private_endpoints()
        else " whose host resolves to public addresses only"
    )
    return f"{scheme}{where}{public}"


def endpoint_parse(url: str) -> Endpoint:
    """The checks that need no lookup: shape, scheme, credentials, host allow-list. Raises
    EndpointRefused."""
    try:
        _url_shape(url)
        parts = urlsplit(url)
        port = parts.port
    except (ValidationError, ValueError):
        raise EndpointRefused(f"must be {what_is_allowed()}") from None
    if parts.scheme != "https" and not allows_private_endpoints():
        raise EndpointRefused(f"must be {what_is_allowed()}; plain http is not allowed")
    if "@" in parts.netloc:
        raise EndpointRefused("must not carry a user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host or not host.isascii():
        raise EndpointRefused(f"must be {what_is_allowed()}")
    if not _host_allowed(host, allowed_hosts()):
        raise EndpointRefused(f"must be {what_is_allowed()}; {host} is not among those hosts")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return Endpoint(scheme=parts.scheme, host=host, port=port)


def _host_allowed(host: str, suffixes: list[str]) -> bool:
    """Empty: any host. A name matches an entry or a subdomain of it; an address only itself."""
    if not suffixes:
        return True
    return any(host == suffix or host.endswith(f".{suffix}") for suffix in suffixes)


def is_public_address(address: IPAddress) -> bool:
    """Reachable on the public internet, whatever the spelling: not private, loopback,
    link-local (169.254.169.254, the cloud metadata service), shared (100.64/10),
    documentation, multicast, reserved or unspecified, nor an IPv6 form of one (IPv4-mapped,
    6to4, NAT64)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64_PREFIX:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
        if address in _SITE_LOCAL:
            return False
    return address.is_global and not (address.is_multicast or address.is_reserved)


def address_choose(endpoint: Endpoint, addresses: Iterable[IPAddress]) -> IPAddress:
    """The address to connect to, the first the resolver gave, once every one is allowed.
    Any private one refuses the whole name: the resolver may answer with it next time."""
    addresses = list(addresses)
    if not addresses:
        raise EndpointRefused(f"must be {what_is_allowed()}")
    if not allows_private_endpoints() and not all(is_public_address(address) for address in addresses):
        # The same words as for a name that does not resolve: which internal names exist
        # is not the caller's business.
        raise EndpointRefused(f"must be {what_is_allowed()}")
    return addresses[0]


def endpoint_resolve(endpoint: Endpoint) -> list[IPAddress]:
    """Every address the system resolver gives for the host, in its order (an address
    literal gives itself). Raises EndpointUnresolved."""
    try:
        answers = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise EndpointUnresolved(f"{endpoint.host} did not resolve") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        # An IPv6 answer may carry a zone ("fe80::1%eth0"); the address is what counts.
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def endpoint_check(url: str) -> CheckedEndpoint:
    """The whole policy: parse, resolve, choose the address. Raises EndpointRefused, or
    EndpointUnresolved when the host does not resolve."""
    endpoint = endpoint_parse(url)
    return CheckedEndpoint(endpoint=endpoint, address=address_choose(endpoint, endpoint_resolve(endpoint)))
