"""messaging.ids: message ids are UUIDv7, time ordered and strictly increasing in a process."""

from __future__ import annotations

import itertools
import threading
import time
import uuid

import pytest

from messaging import ids
from messaging.api import send_message
from messaging.ids import new_msg_id


def unix_ms(value: uuid.UUID) -> int:
    return value.int >> 80


def test_a_msg_id_is_an_rfc_9562_version_7_uuid():
    value = new_msg_id()

    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert uuid.UUID(str(value)) == value


def test_a_msg_id_carries_the_current_unix_time_in_milliseconds():
    before = time.time_ns() // 1_000_000
    value = new_msg_id()
    after = time.time_ns() // 1_000_000

    assert before <= unix_ms(value) <= after


def test_ids_made_in_one_process_are_strictly_increasing_also_within_one_millisecond():
    made = [new_msg_id() for _ in range(20_000)]

    assert all(a < b for a, b in itertools.pairwise(made))
    assert len({unix_ms(value) for value in made}) < len(made)  # many shared a millisecond
    assert all(value.version == 7 and value.variant == uuid.RFC_4122 for value in made)


def test_ids_stay_increasing_when_the_clock_steps_back(monkeypatch: pytest.MonkeyPatch):
    first = new_msg_id()
    an_hour_ago = time.time_ns() - 3600 * 1_000_000_000
    monkeypatch.setattr(ids.time, "time_ns", lambda: an_hour_ago)

    later = [new_msg_id() for _ in range(100)]

    assert first < later[0]
    assert all(a < b for a, b in itertools.pairwise(later))


def test_ids_made_by_many_threads_are_unique_and_increasing_in_each_thread():
    per_thread: dict[int, list[uuid.UUID]] = {}
    start = threading.Barrier(8)

    def make(index: int) -> None:
        start.wait()
        per_thread[index] = [new_msg_id() for _ in range(2_000)]

    threads = [threading.Thread(target=make, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every = [value for made in per_thread.values() for value in made]
    assert len(set(every)) == len(every) == 16_000
    for made in per_thread.values():
        assert made == sorted(made)


@pytest.mark.django_db
def test_messages_get_a_version_7_id_by_default(alice, bob):
    message = send_message(alice, bob, "hello")

    assert message.id.version == 7
    assert message.msg_id == str(message.id)
