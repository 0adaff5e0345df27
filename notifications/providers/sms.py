"""Text messages through an HTTP SMS gateway (the contract is in docs/push-providers.md).

POST {IMS_SMS_BASE_URL}/messages with a bearer key and {"from", "to", "text"}. The text is
the title and body in one SMS: 160 GSM-7 characters, or 70 when it needs UCS-2. Only
the priorities in IMS_SMS_PRIORITIES may use it (`allows()`). A 4xx whose code names the
number is permanent; 429 and 5xx are retried; other refusals concern this message.
"""

from __future__ import annotations

import re

import httpx
from django.conf import settings

from notifications.providers.base import (
    PushError,
    PushMessage,
    PushResult,
    PushTarget,
    Reason,
    not_configured_error,
    parse_retry_after,
)
from notifications.providers.transport import http_client

# ASCII digits only ("\d" also takes other scripts' digits); used with fullmatch, so no
# trailing newline passes either.
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
GSM_SINGLE_SMS_CHARS = 160
UCS2_SINGLE_SMS_CHARS = 70
# 3GPP TS 23.038: the GSM 7-bit default alphabet, and its extension table whose
# characters take two septets each.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = frozenset("^{}\\[~]|€\f")
# Gateway error codes (docs/push-providers.md) that say the number cannot receive.
_DEAD_NUMBER_CODES = frozenset({"invalid_number", "unreachable_number", "opted_out"})
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def is_gsm7(text: str) -> bool:
    return all(char in _GSM_BASIC or char in _GSM_EXTENSION for char in text)


def sms_text(*, title: str, body: str) -> str:
    """Title and body as one SMS, cut with an ellipsis to the single-message limit."""
    text = f"{title}: {body}" if title and body else title or body
    if is_gsm7(text):
        limit, ellipsis = GSM_SINGLE_SMS_CHARS, "..."
        length = sum(2 if char in _GSM_EXTENSION else 1 for char in text)
    else:
        # UCS-2 counts UTF-16 code units: a character outside the BMP (an emoji) takes two.
        limit, ellipsis = UCS2_SINGLE_SMS_CHARS, "…"
        length = len(text.encode("utf-16-le")) // 2
    if length <= limit:
        return text
    return _cut(text, limit=limit - len(ellipsis), gsm=ellipsis == "...") + ellipsis


def _cut(text: str, *, limit: int, gsm: bool) -> str:
    used, kept = 0, []
    for char in text:
        cost = (2 if char in _GSM_EXTENSION else 1) if gsm else len(char.encode("utf-16-le")) // 2
        if used + cost > limit:
            break
        used += cost
        kept.append(char)
    return "".join(kept).rstrip()


class SmsProvider:
    kind = "sms"

    def __init__(self) -> None:
        self._base_url = settings.IMS_SMS_BASE_URL.rstrip("/")
        self._api_key = settings.IMS_SMS_API_KEY
        self._sender = settings.IMS_SMS_SENDER
        self._priorities = frozenset(settings.IMS_SMS_PRIORITIES)
        self._timeout_seconds = settings.IMS_PUSH_TIMEOUT_SECONDS
        self._client = http_client(http2=False)

    def _missing(self) -> list[str]:
        values = {
            "IMS_SMS_BASE_URL": self._base_url,
            "IMS_SMS_API_KEY": self._api_key,
            "IMS_SMS_SENDER": self._sender,
        }
        return [name for name, value in values.items() if not value]

    def is_configured(self) -> bool:
        return not self._missing()

    def describe_configuration(self) -> str:
        if missing := self._missing():
            return f"SMS is off: {', '.join(missing)} not set"
        return f"SMS from {self._sender} via {self._base_url} for {', '.join(sorted(self._priorities))}"

    def close(self) -> None:
        self._client.close()

    def allows(self, priority: str) -> bool:
        return priority in self._priorities

    def send(self, *, target: PushTarget, message: PushMessage) -> PushResult:
        if missing := self._missing():
            raise not_configured_error(kind=self.kind, description=f"{', '.join(missing)} not set")
        if not self.allows(message.priority):
            # Dispatch asks allows() first; this keeps a caller that did not from paying for it.
            raise PushError(f"sms is not used for {message.priority} (IMS_SMS_PRIORITIES)", retryable=False)
        if not E164.fullmatch(target.address):
            raise PushError("sms target is not an E.164 number", permanent=True, reason=Reason.INVALID)
        body = {
            "from": self._sender,
            "to": target.address,
            "text": sms_text(title=message.title, body=message.body),
        }
        try:
            response = self._client.post(
                f"{self._base_url}/messages",
                json=body,
                headers={"Authorization": f"Bearer {self._api_key}"},
                timeout=self._timeout_seconds,
            )
        except httpx.HTTPError as exc:
            raise PushError(f"sms request failed: {type(exc).__name__}") from None
        if response.status_code < 300:
            return PushResult(status_code=response.status_code, provider_id=_message_id(response))
        raise _error(response)


def _message_id(response: httpx.Response) -> str | None:
    try:
        message_id = response.json().get("id")
    except (ValueError, AttributeError):
        return None
    return str(message_id) if message_id is not None else None


def _error_code(response: httpx.Response) -> str:
    """`{"error": {"code": ...}}` or `{"error": "..."}`; empty when the body says neither."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    return str(error.get("code", "") if isinstance(error, dict) else error or "")


def _error(response: httpx.Response) -> PushError:
    status = response.status_code
    code = _error_code(response)
    detail = f"sms gateway answered {status} {code}".rstrip()
    if 400 <= status < 500 and code in _DEAD_NUMBER_CODES:
        return PushError(f"{detail}: number cannot receive", permanent=True, status_code=status)
    if status in _RETRY_STATUSES:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return PushError(detail, status_code=status, retry_after_seconds=retry_after)
    # 401/403: our key; other 4xx: this message.
    return PushError(detail, retryable=False, status_code=status)
