"""Shortening payloads: always valid JSON under the limit, the item's identity intact."""

from __future__ import annotations

import json
import random

import pytest

from notifications.providers.payload import PayloadTooLarge, dumps, fit_json


def test_a_payload_that_fits_is_returned_unchanged():
    payload = {"type": "notification", "seq": 1, "data": {"content": "short"}}
    assert fit_json(payload, max_bytes=1000) is payload


@pytest.mark.parametrize("seed", range(20))
def test_shortened_payloads_are_valid_json_within_the_limit(seed):
    rng = random.Random(seed)
    alphabet = 'abc "\\\n</>é中🎉'
    content = "".join(rng.choice(alphabet) for _ in range(rng.randint(100, 6000)))
    payload = {
        "type": "message",
        "seq": seed,
        "data": {"msg_id": "m", "content": content, "title": content[:900]},
    }
    limit = rng.randint(300, 3000)
    fitted = fit_json(payload, max_bytes=limit)
    encoded = dumps(fitted)
    assert len(encoded) <= limit
    assert json.loads(encoded)["seq"] == seed
    assert payload["data"]["content"] == content  # the caller's payload is left alone


def test_two_long_fields_share_the_room():
    payload = {"data": {"title": "t" * 3000, "content": "c" * 3000}}
    fitted = fit_json(payload, max_bytes=2000)
    title, content = len(fitted["data"]["title"]), len(fitted["data"]["content"])
    assert abs(title - content) <= 2


def test_a_payload_of_many_small_fields_that_cannot_fit_is_an_error():
    payload = {f"key{i}": i for i in range(500)}
    with pytest.raises(PayloadTooLarge):
        fit_json(payload, max_bytes=200)
