"""The Web Push endpoint policy: which URLs and which resolved addresses the worker may send
to. Real names resolve through this machine's resolver (`localhost`); public names cannot
resolve here (no internet), so the decision on public addresses is shown on the addresses
a resolver would give."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from notifications.providers.endpoints import (
    EndpointRefused,
    address_choose,
    endpoint_check,
    endpoint_parse,
    is_public_address,
)

# Endpoints as the browsers hand them out today.
BROWSER_ENDPOINTS = [
    "https://fcm.googleapis.com/fcm/send/fv3jabydF5c:APA91bEc8gXeukGXEvq",  # Chrome, Opera, Brave
    "https://fcm.googleapis.com/wp/dVqh2ohjAjU:APA91bGLMv9tz",  # Chrome, newer
    "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABm",  # Firefox
    "https://wns2-par02p.notify.windows.com/w/?token=BQYAAABPS6Pnogy%2f0sal0z2V",  # Edge
    "https://web.push.apple.com/QGuQyavXutnMH4nCQ2DWB2yLsV6tYOKr",  # Safari
]
FCM = BROWSER_ENDPOINTS[0]
GOOGLE_V4, GOOGLE_V6 = ip_address("142.250.185.74"), ip_address("2a00:1450:4001:82b::200a")


@pytest.mark.parametrize("url", BROWSER_ENDPOINTS)
def test_the_endpoints_browsers_give_pass_the_default_host_list(url):
    assert endpoint_parse(url).port == 443


def test_a_push_service_on_public_addresses_is_sent_to_at_the_first_of_them():
    endpoint = endpoint_parse(FCM)
    assert address_choose(endpoint, [GOOGLE_V6, GOOGLE_V4]) == GOOGLE_V6


def test_one_private_address_among_public_ones_refuses_the_whole_name():
    with pytest.raises(EndpointRefused, match="public addresses only"):
        address_choose(endpoint_parse(FCM), [GOOGLE_V4, ip_address("10.0.0.7")])


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # the cloud metadata service
        "100.64.0.1",  # shared address space (carrier-grade NAT)
        "0.0.0.0",  # noqa: S104 - an address to judge, not one to bind
        "255.255.255.255",
        "224.0.0.1",
        "240.0.0.1",
        "192.0.2.1",
        "198.18.0.1",
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:a00:1::",  # 6to4 of 10.0.0.1
    ],
)
def test_private_loopback_link_local_and_other_inside_addresses_are_not_public(address):
    assert not is_public_address(ip_address(address))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "142.250.185.74", "2a00:1450:4001:82b::200a", "::ffff:8.8.8.8"]
)
def test_internet_addresses_are_public(address):
    assert is_public_address(ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://fcm.googleapis.com/fcm/send/abc",
        "https://fcm.googleapis.com.evil.example/fcm/send/abc",
        "https://evilfcm.googleapis.com/fcm/send/abc",
        "https://googleapis.com/fcm/send/abc",
        "https://push.example.com/s/1",
        "https://127.0.0.1/x",
        "https://[::1]/x",
        "https://user:secret@fcm.googleapis.com/fcm/send/abc",
        "ftp://fcm.googleapis.com/x",
        "not a url",
    ],
)
def test_urls_outside_the_policy_are_refused_before_any_lookup(url):
    with pytest.raises(EndpointRefused):
        endpoint_parse(url)


def test_a_host_list_entry_covers_its_subdomains_in_any_case_and_with_a_trailing_dot():
    assert (
        endpoint_parse("https://WNS2-BL2P.Notify.Windows.com./w/?token=x").host
        == "wns2-bl2p.notify.windows.com"
    )


def test_a_star_allows_any_host_but_still_only_public_addresses(settings):
    settings.IMS_WEBPUSH_ALLOWED_HOSTS = ["*"]
    endpoint = endpoint_parse("https://push.example.com/s/1")
    assert address_choose(endpoint, [ip_address("93.184.215.14")]) == ip_address("93.184.215.14")
    with pytest.raises(EndpointRefused):
        endpoint_check("https://127.0.0.1/s/1")


def test_a_name_that_resolves_to_a_private_address_is_refused(settings):
    settings.IMS_WEBPUSH_ALLOWED_HOSTS = ["localhost"]
    with pytest.raises(EndpointRefused, match="public addresses only"):
        endpoint_check("https://localhost/push/1")


def test_allowing_private_endpoints_lets_plain_http_on_a_local_name_through(settings):
    settings.IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS = True
    settings.IMS_WEBPUSH_ALLOWED_HOSTS = ["localhost"]
    checked = endpoint_check("http://localhost:8080/push/1")
    assert (checked.address, checked.endpoint.host_header) == (ip_address("127.0.0.1"), "localhost:8080")


def test_allowing_private_endpoints_keeps_the_host_list_and_refuses_credentials(settings):
    settings.IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS = True
    with pytest.raises(EndpointRefused, match=r"127\.0\.0\.1 is not among those hosts"):
        endpoint_parse("http://127.0.0.1:8080/push/1")
    settings.IMS_WEBPUSH_ALLOWED_HOSTS = ["*"]
    with pytest.raises(EndpointRefused, match="user name or password"):
        endpoint_parse("http://relay:secret@127.0.0.1:8080/push/1")
