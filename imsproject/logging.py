"""Keeps credentials out of every log line (PROTOCOL.md: the token is never logged)."""

from __future__ import annotations

import logging
import re

_SECRET_PARAM = re.compile(r"((?:token|ticket)=)[^&\s\"']+", re.IGNORECASE)
_AUTH_HEADER = re.compile(r"(Token\s+)[0-9a-f]{20,}", re.IGNORECASE)


def redact(text: str) -> str:
    return _AUTH_HEADER.sub(r"\1[redacted]", _SECRET_PARAM.sub(r"\1[redacted]", text))


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
