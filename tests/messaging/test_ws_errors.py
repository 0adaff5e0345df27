"""Bad input gets `error` and changes nothing; the connection survives every bad frame
(PROTOCOL.md, Frames)."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
from channels.db import database_sync_to_async

from messaging.models import Message, PendingItem, StreamItem
from tests.factories import GroupFactory
from tests.messaging.wsclient import (
    WsClient,
    token_key,
    ws_connect,
    ws_isolation,  # noqa: F401  (fixture)
    ws_path,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ws_isolation")]

MAX_FRAME_BYTES = 64 * 1024
BIGGER_THAN_BIGINT = 2**63


@database_sync_to_async
def stored() -> tuple[int, int, int]:
    return Message.objects.count(), StreamItem.objects.count(), PendingItem.objects.count()


async def expect_error(ws: WsClient, raw: str, code: str = "bad_request", ref: Any = None) -> None:
    await ws.send_text(raw)
    error = await ws.receive()
    assert error["type"] == "error", (raw[:200], error)
    assert set(error) == {"type", "code", "detail", "ref"}, error
    assert (error["code"], error["ref"]) == (code, ref), (raw[:200], error)
    assert isinstance(error["detail"], str), error
    assert error["detail"], error
    await ws.assert_alive()


# --- framing --------------------------------------------------------------------------


async def test_a_binary_frame_is_a_bad_request(alice):
    async with ws_connect(alice) as ws:
        await ws.send_bytes(b'{"type":"ping"}')
        error = await ws.receive_type("error")
        assert (error["code"], error["ref"]) == ("bad_request", None)
        await ws.assert_alive()


@pytest.mark.parametrize(
    "raw",
    [
        "{",
        "not json",
        '{"type": "ping"',
        "",
        " ",
        "[]",
        '"ping"',
        "1",
        "null",
        "true",
        "{}",
        '{"type": 1}',
        '{"type": null}',
        '{"type": ["ping"]}',
        '{"type": "hello"}',  # a server frame, not a client one
        '{"type": "message"}',
        '{"type": "PING"}',
        '{"type": "nope"}',
        '{"type": "__init__"}',
        "[" * 30_000 + "]" * 30_000,  # nesting deeper than the parser's recursion limit
        '{"a":' * 10_000 + "1" + "}" * 10_000,
    ],
    ids=lambda raw: raw[:20] or "empty",
)
async def test_malformed_frames_are_bad_requests(alice, raw):
    async with ws_connect(alice) as ws:
        await expect_error(ws, raw)


async def test_a_frame_over_64_kib_is_too_large(alice):
    async with ws_connect(alice) as ws:
        padding = "x" * MAX_FRAME_BYTES
        await expect_error(ws, json.dumps({"type": "ping", "pad": padding}), code="too_large")


async def test_the_limit_counts_bytes_not_characters(alice):
    async with ws_connect(alice) as ws:
        # 40,000 characters, 80,000 bytes in UTF-8.
        await expect_error(
            ws, json.dumps({"type": "ping", "pad": "é" * 40_000}, ensure_ascii=False), "too_large"
        )


async def test_a_binary_frame_over_64_kib_is_too_large(alice):
    async with ws_connect(alice) as ws:
        await ws.send_bytes(b"x" * (MAX_FRAME_BYTES + 1))
        assert (await ws.receive_type("error"))["code"] == "too_large"
        await ws.assert_alive()


async def test_a_frame_of_exactly_64_kib_is_accepted(alice):
    async with ws_connect(alice) as ws:
        frame = {"type": "ping", "pad": ""}
        frame["pad"] = "x" * (MAX_FRAME_BYTES - len(json.dumps(frame)))
        raw = json.dumps(frame)
        assert len(raw.encode()) == MAX_FRAME_BYTES
        await ws.send_text(raw)
        assert (await ws.receive())["type"] == "pong"


async def test_a_too_large_send_stores_nothing(alice, bob):
    async with ws_connect(alice) as ws:
        frame = {"type": "send", "client_msg_id": "big", "to": bob.pk, "msg_type": "text"}
        frame["content"] = "x" * MAX_FRAME_BYTES
        await expect_error(ws, json.dumps(frame), code="too_large")
    assert await stored() == (0, 0, 0)


# --- send -----------------------------------------------------------------------------


def send_cases(*, bob: int, alice: int, stranger_group: int) -> list[tuple[dict[str, Any], Any]]:
    """(frame, the ref its error must carry)."""
    base = {"type": "send", "client_msg_id": "m", "to": bob, "msg_type": "text", "content": "hi"}

    def without(*names: str) -> dict[str, Any]:
        return {k: v for k, v in base.items() if k not in names}

    def but(**changes: Any) -> dict[str, Any]:
        return {**base, **changes}

    attachment = {"url": "https://x.example/a", "name": "a", "size": 1, "mime": "text/plain"}
    return [
        (without("client_msg_id"), None),
        (but(client_msg_id=7), None),
        (but(client_msg_id=None), None),
        (but(client_msg_id=""), ""),
        (but(client_msg_id="   "), "   "),
        (but(client_msg_id="x" * 65), "x" * 65),
        (without("to"), "m"),
        (but(conversation_id=stranger_group), "m"),  # both to and conversation_id
        (but(to=str(bob)), "m"),
        (but(to=0), "m"),
        (but(to=-1), "m"),
        (but(to=True), "m"),
        (but(to=1.5), "m"),
        (but(to=BIGGER_THAN_BIGINT), "m"),
        (but(to=alice), "m"),  # a direct message needs another user
        ({**without("to"), "conversation_id": "1"}, "m"),
        ({**without("to"), "conversation_id": BIGGER_THAN_BIGINT}, "m"),
        (without("msg_type"), "m"),
        (without("content"), "m"),
        (but(msg_type="video"), "m"),
        (but(msg_type=None), "m"),
        (but(msg_type=["text"]), "m"),
        (but(content=5), "m"),
        (but(content=None), "m"),
        (but(content=""), "m"),
        (but(content="   "), "m"),
        (but(content={"text": "hi"}), "m"),
        (but(content="x" * 10_001), "m"),
        (but(msg_type="image", content="https://x.example/a.png"), "m"),
        (but(msg_type="file", content={**attachment, "size": "1"}), "m"),
        (but(msg_type="file", content={**attachment, "size": -1}), "m"),
        (but(msg_type="file", content={k: v for k, v in attachment.items() if k != "mime"}), "m"),
        (but(msg_type="image", content={**attachment, "url": "javascript:alert(1)"}), "m"),
        (but(mentions="bob"), "m"),
        (but(mentions=[str(bob)]), "m"),
        (but(mentions=[True]), "m"),
        (but(mentions=[999_999]), "m"),  # not in the conversation
        (but(mentions=[BIGGER_THAN_BIGINT]), "m"),
        # U+0000 is valid JSON but PostgreSQL stores it neither in text nor in jsonb.
        (but(content="a\u0000b"), "m"),
        (but(client_msg_id="m\u0000"), "m\u0000"),
        (but(msg_type="file", content={**attachment, "name": "\u0000"}), "m"),
    ]


async def test_every_malformed_send_is_a_bad_request_with_its_client_msg_id_and_stores_nothing(
    alice, bob, carol
):
    group = await database_sync_to_async(GroupFactory)(members=[bob, carol])
    async with ws_connect(alice) as ws:
        for frame, ref in send_cases(bob=bob.pk, alice=alice.pk, stranger_group=group.pk):
            await expect_error(ws, json.dumps(frame), ref=ref)
    assert await stored() == (0, 0, 0)


async def test_a_send_with_null_mentions_is_accepted(alice, bob):
    async with ws_connect(alice) as ws:
        await ws.send(
            {
                "type": "send",
                "client_msg_id": "m",
                "to": bob.pk,
                "msg_type": "text",
                "content": "hi",
                "mentions": None,
            }
        )
        assert (await ws.receive())["type"] == "sent"


# --- ack, read, typing, sync ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "field", "bad_values"),
    [
        (
            "ack",
            "seqs",
            [
                None,
                1,
                "1",
                [],
                ["1"],
                [1, "2"],
                [True],
                [0],
                [-3],
                [1.0],
                [[1]],
                [BIGGER_THAN_BIGINT],
                list(range(1, 1002)),
                {"1": 1},
            ],
        ),
        ("read", "msg_ids", [None, "abc", [], [1], ["not-a-uuid"], [None], [["x"]], {"a": 1}]),
        ("typing", "conversation_id", [None, "1", 0, -1, 1.5, True, [1], BIGGER_THAN_BIGINT]),
        ("sync", "after_seq", [None, "0", -1, 1.5, False, [0], BIGGER_THAN_BIGINT]),
    ],
)
async def test_missing_or_mistyped_fields_are_bad_requests(alice, kind, field, bad_values):
    async with ws_connect(alice) as ws:
        await expect_error(ws, json.dumps({"type": kind}))
        for value in bad_values:
            await expect_error(ws, json.dumps({"type": kind, field: value}))


async def test_acking_unknown_or_repeated_seqs_is_harmless(alice):
    async with ws_connect(alice) as ws:
        await ws.ack([1, 2, 3])
        await ws.ack([1, 2, 3])
        await ws.assert_alive()


async def test_reading_unknown_messages_is_harmless(alice):
    async with ws_connect(alice) as ws:
        await ws.send({"type": "read", "msg_ids": ["018f0000-0000-7000-8000-000000000000"]})
        await ws.assert_alive()


async def test_extra_fields_are_ignored(alice):
    async with ws_connect(alice) as ws:
        await ws.send({"type": "ping", "ts": "2024-01-01T00:00:00Z", "extra": {"x": 1}})
        assert (await ws.receive())["type"] == "pong"


async def test_bad_input_does_not_lose_what_was_accepted_before(alice, bob):
    async with ws_connect(alice) as ws_alice, ws_connect(bob) as ws_bob:
        await ws_alice.send_text_message(to=bob.pk, client_msg_id="kept")
        await ws_alice.receive_type("sent")
        await ws_bob.receive_type("message")
        await expect_error(ws_bob, "{")
        await expect_error(ws_bob, '{"type":"ack","seqs":["x"]}')
    assert await stored() == (1, 2, 1)  # bob never acked: still pending


# --- last_seq in the URL --------------------------------------------------------------


@pytest.mark.parametrize("raw", ["abc", "-1", "1.5", "\u00b2", "\u0663", str(BIGGER_THAN_BIGINT)])
async def test_a_bad_last_seq_is_reported_and_the_pending_items_are_replayed_instead(alice, raw):
    async with ws_connect(
        path=ws_path(token=await database_sync_to_async(token_key)(alice), last_seq=raw), empty_replay=False
    ) as ws:
        error = await ws.receive_type("error")
        assert (error["code"], error["ref"]) == ("bad_request", None)
        replay = await ws.receive_type("offline_messages")
        assert replay == {"type": "offline_messages", "items": [], "more": False, "truncated": False}
        await ws.assert_alive()


# --- failures of our own --------------------------------------------------------------


async def test_an_unexpected_failure_is_a_server_error_with_the_ref_and_the_connection_stays(alice, bob):
    with mock.patch("messaging.batching.messages_send", side_effect=RuntimeError("database on fire")):
        async with ws_connect(alice) as ws:
            await ws.send_text_message(to=bob.pk, client_msg_id="unlucky")
            error = await ws.receive_type("error")
            assert (error["code"], error["ref"]) == ("server_error", "unlucky")
            assert "fire" not in error["detail"]  # internals stay in the log
            await ws.assert_alive()
