"""The JavaScript client's delivery logic (static/ims/client/delivery.js), unit-tested in the
browser the chat runs in: fed frames with no socket, it shows each item once, acks what it
handled, asks for a `sync` on a gap, holds live items while a replay runs, and keeps an
outbox that survives reloads (docs/client.md).

The modules load from a page that playwright serves from the working tree (no server):
static/ as /static/, and tests/browser/js/ (the harness) as /tests/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser]

ORIGIN = "http://ims.test"
ROOT = Path(__file__).resolve().parents[2]
SERVED = {"/static/": ROOT / "static", "/tests/": Path(__file__).resolve().parent / "js"}
PAGE = "<!doctype html><title>IMS client delivery</title>"
ME = 1
PEER = 2


def serve(route) -> None:
    path = urlsplit(route.request.url).path
    if path == "/":
        return route.fulfill(body=PAGE, content_type="text/html")
    for prefix, folder in SERVED.items():
        if path.startswith(prefix):
            file = (folder / path.removeprefix(prefix)).resolve()
            if file.is_relative_to(folder) and file.is_file():
                return route.fulfill(path=file, content_type="text/javascript")
    return route.fulfill(status=404, body="not found")


class DeliveryUnderTest:
    """Drives one Delivery in the page; `take()` says what it did since the last call, as
    short lines ("message 3", "ack 3 4", "sync after 2", "send <client_msg_id>", …)."""

    def __init__(self, page) -> None:
        self.page = page
        self.start()

    def start(self) -> None:
        self.page.evaluate(
            """async (userKey) => {
                const { DeliveryHarness } = await import("/tests/delivery_harness.js");
                window.harness = new DeliveryHarness({ userKey });
            }""",
            ME,
        )

    def reload(self) -> None:
        """The page reloads: a new client from the same storage, nothing else kept."""
        self.page.reload()
        self.start()

    def receive(self, *frames: dict[str, Any]) -> None:
        self.page.evaluate("(frames) => frames.forEach((f) => harness.delivery.receive(f))", list(frames))

    def connect(self, *, last_seq: int, replay: list[dict[str, Any]] | None = None) -> None:
        """A handshake (hello with the stream's `last_seq`), and unless `replay` is None its
        one replay page."""
        hello = {"type": "hello", "protocol": 1, "user_id": ME, "heartbeat_s": 30, "last_seq": last_seq}
        self.page.evaluate("(hello) => harness.delivery.connected(hello)", hello)
        if replay is not None:
            self.receive(offline(*replay))

    def disconnect(self) -> None:
        self.page.evaluate("harness.delivery.connectionLost()")

    def set_online(self, online: bool) -> None:
        """Whether a socket is open: offline, every transmit fails."""
        self.page.evaluate("(online) => { harness.online = online; }", online)

    def send(self, **message: Any) -> dict[str, Any]:
        return self.page.evaluate("(message) => harness.delivery.send(message)", message)

    def advance(self, ms: int) -> None:
        self.page.evaluate("(ms) => harness.clock.advance(ms)", ms)

    def raw(self) -> list[list[Any]]:
        return self.page.evaluate("harness.take()")

    def take(self) -> list[str]:
        return [line(entry) for entry in self.raw()]

    @property
    def last_seq(self) -> int | None:
        return self.page.evaluate("harness.delivery.lastSeq")

    def stored(self, name: str) -> Any:
        return self.page.evaluate(f"JSON.parse(localStorage.getItem('ims:{ME}:{name}'))")

    @property
    def outbox(self) -> list[dict[str, Any]]:
        return self.page.evaluate("harness.delivery.outbox.entries")


def line(entry: list[Any]) -> str:
    if entry[0] == "transmit":
        frame = entry[1]
        kind = frame["type"]
        if kind == "ack":
            return " ".join(["ack", *map(str, frame["seqs"])])
        if kind == "sync":
            return f"sync after {frame['after_seq']}"
        if kind == "send":
            return f"send {frame['client_msg_id']}"
        return kind
    _, kind, detail = entry
    if kind in {"message", "notification", "conversation"}:
        return f"{kind} {detail['seq']}" + (" replayed" if detail["replayed"] else "")
    if kind == "sent":
        return f"sent {detail['client_msg_id']}"
    if kind == "failed":
        return f"failed {detail['entry']['client_msg_id']}"
    if kind == "error":
        return f"error {detail['code']}"
    return kind


@pytest.fixture
def delivery(browser) -> Iterator[DeliveryUnderTest]:
    context = browser.new_context()
    context.route(f"{ORIGIN}/**", serve)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{ORIGIN}/")
    yield DeliveryUnderTest(page)
    context.close()
    assert errors == []


def message(
    seq: int, *, msg_id: str | None = None, sender_id: int = PEER, client_msg_id: str = ""
) -> dict[str, Any]:
    data = {
        "msg_id": msg_id or f"m{seq}",
        "client_msg_id": client_msg_id or f"c{seq}",
        "conversation_id": 7,
        "sender_id": sender_id,
        "receiver_id": None,
        "msg_type": "text",
        "content": f"text {seq}",
        "mentions": [],
        "created_at": "2025-03-01T09:00:00Z",
    }
    return {"type": "message", "seq": seq, "data": data}


def notification(seq: int) -> dict[str, Any]:
    data = {"id": seq, "title": f"n{seq}", "content": "", "extra": {}, "priority": "P2", "category": "todo"}
    return {"type": "notification", "seq": seq, "data": data}


def offline(*items: dict[str, Any], more: bool = False, truncated: bool = False) -> dict[str, Any]:
    return {"type": "offline_messages", "items": list(items), "more": more, "truncated": truncated}


def sent(entry: dict[str, Any], *, seq: int, msg_id: str = "m-own") -> dict[str, Any]:
    return {
        "type": "sent",
        "client_msg_id": entry["client_msg_id"],
        "msg_id": msg_id,
        "seq": seq,
        "created_at": "2025-03-01T09:00:01Z",
    }


def error(code: str, ref: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "detail": code.replace("_", " "), "ref": ref}


# --- acks ----------------------------------------------------------------------------------


def test_a_live_item_is_handed_to_the_application_then_acked(delivery):
    delivery.connect(last_seq=0, replay=[])
    assert delivery.take() == ["replayed"]

    delivery.receive(message(1), notification(2))

    assert delivery.take() == ["message 1", "ack 1", "notification 2", "ack 2"]
    assert delivery.stored("last_seq") == 2


def test_a_replay_page_is_acked_as_a_whole_and_a_batch_in_one_ack(delivery):
    delivery.connect(last_seq=4)
    delivery.receive(offline(message(1), message(2), message(3), more=True))
    assert delivery.take() == ["message 1 replayed", "message 2 replayed", "message 3 replayed", "ack 1 2 3"]
    delivery.receive(offline(notification(4)))
    assert delivery.take() == ["notification 4 replayed", "ack 4", "replayed"]

    delivery.receive(
        {"type": "batch", "count": 2, "items": [notification(5), notification(6)], "last": notification(6)}
    )

    assert delivery.take() == ["notification 5", "notification 6", "ack 5 6"]


def test_acks_that_could_not_be_sent_go_out_with_the_next_ones(delivery):
    delivery.connect(last_seq=0, replay=[])
    delivery.take()
    delivery.set_online(False)
    delivery.receive(message(1))
    assert delivery.take() == ["message 1"]

    delivery.set_online(True)
    delivery.receive(message(2))

    assert delivery.take() == ["message 2", "ack 1 2"]


# --- dedupe --------------------------------------------------------------------------------


def test_an_item_delivered_twice_is_shown_once_and_acked_each_time(delivery):
    delivery.connect(last_seq=0, replay=[])
    delivery.take()

    delivery.receive(message(1), message(1))

    assert delivery.take() == ["message 1", "ack 1", "ack 1"]


def test_a_replay_of_items_already_handled_shows_only_the_new_ones_and_acks_them_all(delivery):
    delivery.connect(last_seq=0, replay=[])
    delivery.receive(message(1), message(2), message(3))
    delivery.disconnect()
    delivery.take()

    delivery.connect(last_seq=5, replay=[message(2), message(3), message(4), message(5)])

    assert delivery.take() == ["message 4 replayed", "message 5 replayed", "ack 2 3 4 5", "replayed"]


def test_a_message_already_seen_under_its_msg_id_is_acked_but_not_shown_again(delivery):
    delivery.connect(last_seq=0, replay=[])
    entry = delivery.send(to=PEER, content="hello")
    delivery.receive(sent(entry, seq=1, msg_id="m-own"))
    delivery.take()

    # The copy of our own message in our stream, as another device would get it.
    delivery.receive(message(2, msg_id="m-own", sender_id=ME, client_msg_id=entry["client_msg_id"]))

    assert delivery.take() == ["ack 2"]


def test_a_new_client_on_the_same_storage_resumes_after_the_last_seq_handled(delivery):
    delivery.connect(last_seq=0, replay=[])
    delivery.receive(message(1), message(2), message(3))

    delivery.reload()

    assert delivery.last_seq == 3
    delivery.connect(last_seq=3, replay=[message(3)])
    assert delivery.take() == ["ack 3", "replayed"]


def test_a_tab_behind_another_never_lowers_the_stored_last_seq(delivery):
    delivery.page.evaluate(f"localStorage.setItem('ims:{ME}:last_seq', '9')")
    delivery.receive(message(1))  # a tab that started before the other one got that far

    assert delivery.stored("last_seq") == 9


# --- gaps and replays ----------------------------------------------------------------------


def test_a_gap_asks_for_a_sync_after_the_last_seq_and_the_replay_fills_it_in_order(delivery):
    delivery.connect(last_seq=0, replay=[])
    delivery.receive(message(1), message(2))
    delivery.take()

    delivery.receive(message(5))
    assert delivery.take() == ["sync after 2"]
    delivery.receive(message(6), message(7))  # live while the sync runs: held, no second sync
    assert delivery.take() == []
    delivery.receive(offline(message(3), message(4), message(5)))

    assert delivery.take() == [
        "message 3 replayed",
        "message 4 replayed",
        "message 5 replayed",
        "ack 3 4 5",
        "message 6",
        "message 7",
        "ack 6 7",
        "replayed",
    ]


def test_live_items_that_arrive_during_a_replay_are_held_then_shown_once_after_it(delivery):
    delivery.connect(last_seq=0, replay=[])
    delivery.disconnect()
    delivery.take()

    delivery.connect(last_seq=3)  # 4 is stored after the handshake
    delivery.receive(offline(message(1), message(2), more=True))
    delivery.receive(message(3), message(4))  # overtook the replay's second page
    assert delivery.take() == ["message 1 replayed", "message 2 replayed", "ack 1 2"]

    delivery.receive(offline(message(3)))

    assert delivery.take() == ["message 3 replayed", "ack 3", "message 4", "ack 4", "replayed"]


def test_more_live_items_than_kept_during_a_replay_end_in_a_sync_for_the_rest(delivery):
    delivery.connect(last_seq=0)
    many = [notification(seq) for seq in range(1, 1001)]
    delivery.receive({"type": "batch", "count": 1000, "items": many, "last": many[-1]}, notification(1001))

    delivery.receive(offline())

    log = delivery.take()
    assert log[:2] == ["notification 1", "notification 2"]
    assert log[-4:] == [
        "notification 1000",
        " ".join(["ack", *map(str, range(1, 1001))]),
        "sync after 1000",
        "replayed",
    ]
    assert "notification 1001" not in log


def test_a_pending_only_replay_may_skip_seqs_without_asking_for_a_sync(delivery):
    # A first connect without last_seq replays only what is pending: acked items are skipped.
    delivery.connect(last_seq=10, replay=[message(4), notification(9)])
    assert delivery.take() == ["message 4 replayed", "notification 9 replayed", "ack 4 9", "replayed"]
    assert delivery.stored("last_seq") == 10

    delivery.receive(message(11))

    assert delivery.take() == ["message 11", "ack 11"]


def test_a_truncated_replay_says_so_and_still_shows_and_acks_what_it_brings(delivery):
    delivery.connect(last_seq=0, replay=[])
    delivery.disconnect()
    delivery.take()

    delivery.connect(last_seq=8)
    delivery.receive(offline(message(7), message(8), truncated=True))

    assert delivery.take() == ["truncated", "message 7 replayed", "message 8 replayed", "ack 7 8", "replayed"]


def test_a_sent_answer_counts_as_the_seq_of_our_own_copy(delivery):
    delivery.connect(last_seq=0, replay=[])
    first = delivery.send(to=PEER, content="one")
    second = delivery.send(to=PEER, content="two")
    delivery.take()

    delivery.receive(sent(first, seq=1, msg_id="m-one"), message(2))
    assert delivery.take() == [f"sent {first['client_msg_id']}", "message 2", "ack 2"]
    delivery.receive(sent(second, seq=4, msg_id="m-two"))  # seq 3 never came

    assert delivery.take() == ["sync after 2", f"sent {second['client_msg_id']}"]


# --- outbox --------------------------------------------------------------------------------


def test_a_message_sent_offline_is_kept_and_sent_once_after_the_reconnects_replay(delivery):
    delivery.set_online(False)
    entry = delivery.send(conversation_id=7, content="typed offline", mentions=[PEER])
    assert entry["frame"] == {
        "type": "send",
        "client_msg_id": entry["client_msg_id"],
        "msg_type": "text",
        "content": "typed offline",
        "conversation_id": 7,
        "mentions": [PEER],
    }
    assert entry["queued_at"] == "2025-03-01T09:00:00.000Z"
    assert delivery.stored("outbox") == [entry]
    assert delivery.take() == []

    delivery.set_online(True)
    delivery.connect(last_seq=0, replay=[])

    assert delivery.take() == ["replayed", f"send {entry['client_msg_id']}"]
    delivery.receive(sent(entry, seq=1))
    assert delivery.take() == [f"sent {entry['client_msg_id']}"]
    assert delivery.stored("outbox") == []


def test_an_unconfirmed_message_survives_a_reload_and_goes_again_with_the_same_id(delivery):
    delivery.connect(last_seq=0, replay=[])
    entry = delivery.send(to=PEER, content="still sending")
    assert delivery.take() == ["replayed", f"send {entry['client_msg_id']}"]
    delivery.disconnect()  # before the server answered `sent`

    delivery.reload()

    assert delivery.outbox == [entry]
    delivery.connect(last_seq=0, replay=[])
    assert delivery.take() == ["replayed", f"send {entry['client_msg_id']}"]
    delivery.receive(sent(entry, seq=1))
    (answered,) = delivery.raw()
    assert answered[2]["entry"] == entry
    assert delivery.outbox == []


def test_our_stream_copy_completes_a_send_whose_answer_was_lost(delivery):
    delivery.connect(last_seq=0, replay=[])
    entry = delivery.send(to=PEER, content="answered on a dead socket")
    delivery.disconnect()
    delivery.take()

    own_copy = message(1, msg_id="m-own", sender_id=ME, client_msg_id=entry["client_msg_id"])
    delivery.connect(last_seq=1, replay=[own_copy])

    assert delivery.take() == [f"sent {entry['client_msg_id']}", "message 1 replayed", "ack 1", "replayed"]
    assert delivery.outbox == []


@pytest.mark.parametrize("code", ["bad_request", "forbidden", "not_found", "too_large"])
def test_a_send_refused_for_good_leaves_the_outbox_and_is_reported_failed(delivery, code):
    delivery.connect(last_seq=0, replay=[])
    entry = delivery.send(conversation_id=99, content="not a member")
    delivery.take()

    delivery.receive(error(code, entry["client_msg_id"]))

    assert delivery.take() == [f"failed {entry['client_msg_id']}", f"error {code}"]
    assert delivery.stored("outbox") == []
    delivery.advance(60_000)
    assert delivery.take() == []


@pytest.mark.parametrize("code", ["rate_limited", "server_error"])
def test_a_send_refused_for_now_stays_and_goes_again_after_five_seconds(delivery, code):
    delivery.connect(last_seq=0, replay=[])
    entry = delivery.send(to=PEER, content="too fast")
    delivery.take()

    delivery.receive(error(code, entry["client_msg_id"]))
    assert delivery.take() == [f"error {code}"]
    delivery.advance(4_999)
    assert delivery.take() == []
    delivery.advance(1)

    assert delivery.take() == [f"send {entry['client_msg_id']}"]
    assert delivery.outbox == [entry]


def test_a_retry_waiting_when_the_socket_dies_is_dropped_for_the_reconnects_own(delivery):
    delivery.connect(last_seq=0, replay=[])
    entry = delivery.send(to=PEER, content="server busy")
    delivery.receive(error("server_error", entry["client_msg_id"]))
    delivery.disconnect()
    delivery.take()

    delivery.advance(10_000)
    assert delivery.take() == []
    delivery.connect(last_seq=0, replay=[])

    assert delivery.take() == ["replayed", f"send {entry['client_msg_id']}"]


def test_an_error_about_anything_else_leaves_the_outbox_alone(delivery):
    delivery.connect(last_seq=0, replay=[])
    entry = delivery.send(to=PEER, content="fine")
    delivery.take()

    delivery.receive(error("bad_request", None), error("not_found", "someone-elses-id"))

    assert delivery.take() == ["error bad_request", "error not_found"]
    assert delivery.outbox == [entry]
