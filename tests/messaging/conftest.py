"""Fixtures shared by the messaging tests."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from messaging import delivery


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, dict]]:
    """(user_id, event) pairs handed to the channel layer after commit, recorded instead of
    sent, for tests that check what a service publishes rather than how it travels."""
    events: list[tuple[int, dict]] = []

    async def record(batch: Iterable[tuple[int, dict]]) -> None:
        events.extend(batch)

    monkeypatch.setattr(delivery, "publish", record)
    return events
