"""SMS against a local gateway that checks the bearer key and the message body."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notifications.providers import PushError, PushMessage, PushTarget, get_provider
from notifications.providers.sms import sms_text
from tests.notifications.providers.priority_table import PRIORITIES, documented
from tests.notifications.providers.servers import LocalServer, Received, Reply, http_server

ROOT = Path(__file__).resolve().parents[3]
API_KEY = "sms-test-key-0123456789"
SENDER = "IMS"


class FakeGateway:
    def __init__(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.answers: dict[str, Reply] = {}

    def __call__(self, request: Received) -> Reply:
        if request.path != "/messages":
            return Reply(404, {"error": {"code": "not_found"}})
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return Reply(401, {"error": {"code": "unauthorized"}})
        body = request.json()
        if set(body) != {"from", "to", "text"} or body["from"] != SENDER:
            return Reply(400, {"error": {"code": "bad_request"}})
        if body["to"] in self.answers:
            return self.answers[body["to"]]
        self.accepted.append(body)
        return Reply(201, {"id": f"sms-{len(self.accepted)}"})


@pytest.fixture
def gateway() -> Iterator[tuple[FakeGateway, LocalServer]]:
    fake = FakeGateway()
    with http_server(fake) as server:
        yield fake, server


@pytest.fixture
def provider(gateway, settings):
    _, server = gateway
    settings.IMS_SMS_BASE_URL = server.url
    settings.IMS_SMS_API_KEY = API_KEY
    settings.IMS_SMS_SENDER = SENDER
    return get_provider("sms")


def _message(**overrides: Any) -> PushMessage:
    values: dict[str, Any] = {
        "title": "Security",
        "body": "New sign-in from Berlin",
        "payload": {"type": "notification", "seq": 1, "data": {}},
        "priority": "P0",
    }
    return PushMessage(**{**values, **overrides})


def _target(phone: str = "+4915112345678") -> PushTarget:
    return PushTarget(kind="sms", address=phone)


def test_sms_carries_title_and_body_from_the_sender(gateway, provider):
    fake, _ = gateway
    result = provider.send(target=_target(), message=_message())
    assert result.status_code == 201
    assert result.provider_id == "sms-1"
    assert fake.accepted == [
        {"from": "IMS", "to": "+4915112345678", "text": "Security: New sign-in from Berlin"}
    ]


def test_gsm_text_is_cut_to_160_characters():
    text = sms_text(title="Report", body="All systems nominal. " * 20)
    assert len(text) == 160
    assert text.endswith("...")


def test_gsm_extension_characters_count_twice():
    text = sms_text(title="", body="{braces} " * 30)
    assert sum(2 if char in "{}" else 1 for char in text) <= 160


def test_non_gsm_text_is_cut_to_70_characters():
    text = sms_text(title="安全", body="来自柏林的新登录。" * 20)
    assert len(text) == 70
    assert text.endswith("…")


def test_emoji_count_as_two_ucs2_units():
    text = sms_text(title="", body="🚨" * 100)
    assert len(text.encode("utf-16-le")) // 2 <= 70


def test_short_text_is_sent_whole():
    assert sms_text(title="Ping", body="pong") == "Ping: pong"


def test_invalid_number_is_a_permanent_error(gateway, provider):
    fake, _ = gateway
    fake.answers["+15550000000"] = Reply(
        400, {"error": {"code": "invalid_number", "message": "not a mobile number"}}
    )
    with pytest.raises(PushError) as caught:
        provider.send(target=_target("+15550000000"), message=_message())
    assert caught.value.permanent
    assert caught.value.status_code == 400


def test_a_target_that_is_not_e164_is_permanent_without_a_request(gateway, provider):
    _, server = gateway
    with pytest.raises(PushError) as caught:
        provider.send(target=_target("0151 1234 5678"), message=_message())
    assert caught.value.permanent
    assert server.received == []


def test_gateway_failure_is_a_temporary_error(gateway, provider):
    fake, _ = gateway
    fake.answers["+4915112345678"] = Reply(500, {"error": {"code": "internal"}})
    with pytest.raises(PushError) as caught:
        provider.send(target=_target(), message=_message())
    assert not caught.value.permanent
    assert caught.value.retryable


def test_rate_limit_is_retried_after_retry_after(gateway, provider):
    fake, _ = gateway
    fake.answers["+4915112345678"] = Reply(429, {"error": "rate_limited"}, headers={"Retry-After": "7"})
    with pytest.raises(PushError) as caught:
        provider.send(target=_target(), message=_message())
    assert caught.value.retryable
    assert caught.value.retry_after_seconds == 7


def test_a_wrong_api_key_is_neither_permanent_nor_retried(gateway, provider, settings):
    settings.IMS_SMS_BASE_URL = provider._base_url
    settings.IMS_SMS_API_KEY = "wrong-key"
    settings.IMS_SMS_SENDER = SENDER
    with pytest.raises(PushError) as caught:
        get_provider("sms").send(target=_target(), message=_message())
    assert caught.value.status_code == 401
    assert not caught.value.permanent
    assert not caught.value.retryable
    assert "wrong-key" not in str(caught.value)


def _default_sms_priorities(var_dir: Path) -> list[str]:
    """IMS_SMS_PRIORITIES as settings.py reads it from an environment that does not set it."""
    env = {name: value for name, value in os.environ.items() if name != "IMS_SMS_PRIORITIES"}
    env["IMS_VAR_DIR"] = str(var_dir)
    script = "from imsproject import settings; print(','.join(settings.IMS_SMS_PRIORITIES))"
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip().split(",")


@pytest.fixture(scope="module")
def default_sms_priorities(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return _default_sms_priorities(tmp_path_factory.mktemp("var"))


def test_by_default_only_p0_may_use_sms(default_sms_priorities):
    assert default_sms_priorities == ["P0"]


@pytest.mark.parametrize("priority", PRIORITIES)
def test_each_priority_is_sent_or_not_as_the_docs_table_says(
    gateway, provider, settings, default_sms_priorities, priority
):
    _, server = gateway
    settings.IMS_SMS_PRIORITIES = default_sms_priorities
    # A refusal is a PushError; what counts here is whether the gateway heard of it.
    with contextlib.suppress(PushError):
        get_provider("sms").send(target=_target(), message=_message(priority=priority))
    ((field, documented_value),) = documented("SMS", priority).items()
    assert "default `IMS_SMS_PRIORITIES`" in field
    assert ("yes" if server.received else "no") == documented_value


def test_a_priority_sms_does_not_allow_is_refused_without_a_request(gateway, provider):
    _, server = gateway
    with pytest.raises(PushError) as caught:
        provider.send(target=_target(), message=_message(priority="P1"))
    assert not caught.value.permanent
    assert not caught.value.retryable
    assert "IMS_SMS_PRIORITIES" in str(caught.value)
    assert server.received == []


@pytest.mark.parametrize(
    ("setting", "allowed"),
    [(["P0"], {"P0"}), (["P0", "P1"], {"P0", "P1"}), ([], set())],
)
def test_allows_honours_ims_sms_priorities(settings, setting, allowed):
    settings.IMS_SMS_PRIORITIES = setting
    provider = get_provider("sms")
    assert {priority for priority in ("P0", "P1", "P2", "P3") if provider.allows(priority)} == allowed


def test_without_settings_sms_is_off_and_names_what_is_missing(settings):
    settings.IMS_SMS_BASE_URL = "https://sms.example.com"
    provider = get_provider("sms")
    assert not provider.is_configured()
    assert provider.describe_configuration() == "SMS is off: IMS_SMS_API_KEY, IMS_SMS_SENDER not set"


def test_description_never_shows_the_api_key(provider):
    assert provider.is_configured()
    assert API_KEY not in provider.describe_configuration()
