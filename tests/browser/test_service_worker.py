"""The service worker the chat page registers (/sw.js), in a real chromium: a Web Push
document as the server builds it becomes a browser notification with the server's title
and body, presented by priority; a click brings the chat to the conversation.

Pushes are delivered through the DevTools protocol (ServiceWorker.deliverPushMessage), which
runs the worker's real `push` handler as a push service would, without a push service."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connections
from playwright.sync_api import expect

from messaging.api import send_message
from messaging.models import StreamItem
from messaging.services.conversations import conversation_get_or_create_direct
from notifications.api import send_notification
from notifications.models import PushJob
from notifications.providers.webpush import push_document
from notifications.services.content import push_message

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What the page reads off each notification the worker shows.
NOTIFICATIONS_JS = """async () => (await self.registration.getNotifications()).map((n) => ({
    title: n.title, body: n.body, tag: n.tag, requireInteraction: n.requireInteraction,
    renotify: n.renotify, silent: n.silent, vibrate: [...n.vibrate], data: n.data,
}))"""
WAIT_STEP_MS = 50
WAIT_STEPS = 200


@dataclass
class PushedWorker:
    """The chat's service worker, with no IMS tab visible (so it shows what it receives)."""

    worker: Any
    page: Any  # a blank page of the same browser context, which holds the DevTools session
    cdp: Any
    origin: str
    registration_id: str

    def deliver(self, document: dict[str, Any]) -> None:
        self.cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": self.origin, "registrationId": self.registration_id, "data": json.dumps(document)},
        )

    def showing(self) -> list[dict[str, Any]]:
        return self.worker.evaluate(NOTIFICATIONS_JS)

    def wait_until(self, condition: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        for _ in range(WAIT_STEPS):
            if condition(shown := self.showing()):
                return shown
            self.page.wait_for_timeout(WAIT_STEP_MS)
        raise AssertionError(f"still showing {shown}")

    def show(self, document: dict[str, Any]) -> dict[str, Any]:
        """Delivers one push and returns the notification it shows (the only one showing)."""
        self.worker.evaluate(
            "async () => (await self.registration.getNotifications()).forEach((n) => n.close())"
        )
        self.wait_until(lambda shown: not shown)
        self.deliver(document)
        (notification,) = self.wait_until(bool)
        return notification


@pytest.fixture
def pushed_worker(open_chat, server, alice) -> Iterator[PushedWorker]:
    chat = open_chat(alice)
    context = chat.context
    chat.evaluate("navigator.serviceWorker.ready.then(() => true)")
    worker = (
        context.service_workers[0] if context.service_workers else context.wait_for_event("serviceworker")
    )
    # Granted after the page started, so it does not subscribe to a real push service.
    context.grant_permissions(["notifications"], origin=server.origin)
    blank = context.new_page()
    chat.close()
    cdp = context.new_cdp_session(blank)
    registrations: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"])
    )
    cdp.send("ServiceWorker.enable")
    for _ in range(WAIT_STEPS):
        ours = [r for r in registrations if r["scopeURL"] == f"{server.origin}/" and not r["isDeleted"]]
        if ours:
            break
        blank.wait_for_timeout(WAIT_STEP_MS)
    else:
        raise AssertionError(f"the chat registered no service worker: {registrations}")
    yield PushedWorker(
        worker=worker, page=blank, cdp=cdp, origin=server.origin, registration_id=ours[0]["registrationId"]
    )
    cdp.detach()


def server_push(*, user, priority: str, category: str, items: list[StreamItem]) -> dict[str, Any]:
    """The document the Web Push provider would encrypt for these items of one push job."""
    job = PushJob(user_id=user.pk, priority=priority, category=category)
    message = push_message(job=job, item_ids=[item.pk for item in items])
    return json.loads(push_document(message))


def presentation(shown: dict[str, Any]) -> dict[str, bool]:
    """How a notification draws attention."""
    return {
        "stays": shown["requireInteraction"],
        "alerts again": shown["renotify"],
        "vibrates": bool(shown["vibrate"]),
        "silent": shown["silent"],
    }


P0 = {"stays": True, "alerts again": True, "vibrates": True, "silent": False}
P1 = {"stays": False, "alerts again": False, "vibrates": True, "silent": False}
SILENT = {"stays": False, "alerts again": False, "vibrates": False, "silent": True}


def latest_item(user) -> StreamItem:
    return StreamItem.objects.filter(user=user).latest("seq")


def elsewhere(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Runs a send as another process would: from a thread, as playwright's event loop runs
    in this one and a send publishes to the channel layer on commit."""
    with ThreadPoolExecutor(1) as thread:
        result = thread.submit(func, *args, **kwargs).result()
        thread.submit(connections.close_all).result()
    return result


Notify = Callable[..., StreamItem]


@pytest.fixture
def notify(alice) -> Notify:
    def send(title: str, content: str, *, priority: str, category: str) -> StreamItem:
        elsewhere(send_notification, [alice], title, content, priority=priority, category=category)
        return latest_item(alice)

    return send


def test_a_pushed_chat_message_shows_its_sender_and_text_and_vibrates(pushed_worker, alice, bob):
    message = elsewhere(send_message, bob, alice, "Lunch at noon?")
    document = server_push(user=alice, priority="P1", category="chat", items=[latest_item(alice)])

    shown = pushed_worker.show(document)

    assert (shown["title"], shown["body"]) == ("Bob", "Lunch at noon?")
    assert shown["tag"] == f"msg:{message.pk}"
    assert presentation(shown) == P1
    conversation = conversation_get_or_create_direct(user_id=alice.pk, peer_id=bob.pk)
    assert shown["data"]["conversationId"] == conversation.pk


def test_a_p0_alert_stays_until_acted_on_alerts_again_and_vibrates(pushed_worker, notify):
    item = notify("Database down", "db-1 stopped answering", priority="P0", category="alert")
    document = server_push(user=item.user, priority="P0", category="alert", items=[item])

    shown = pushed_worker.show(document)

    assert (shown["title"], shown["body"]) == ("Database down", "db-1 stopped answering")
    assert shown["tag"] == f"ntf:{item.payload['data']['id']}"
    assert presentation(shown) == P0


def test_a_p2_reminder_arrives_silently(pushed_worker, notify):
    item = notify("Expense report", "Due on Friday", priority="P2", category="todo")
    document = server_push(user=item.user, priority="P2", category="todo", items=[item])
    assert document["silent"] is True

    shown = pushed_worker.show(document)

    assert (shown["title"], shown["body"]) == ("Expense report", "Due on Friday")
    assert presentation(shown) == SILENT


def test_merged_announcements_show_as_one_silent_notification_per_category(pushed_worker, notify):
    items = [
        notify(f"Announcement {n}", "Read me", priority="P3", category="announcement") for n in (1, 2, 3)
    ]
    document = server_push(user=items[0].user, priority="P3", category="announcement", items=items)

    shown = pushed_worker.show(document)

    assert (shown["title"], shown["body"]) == ("3 new announcements", "Announcement 3")
    assert shown["tag"] == "batch:announcement"
    assert presentation(shown) == SILENT
    assert shown["data"]["conversationId"] is None


def test_the_pushs_own_priority_wins_over_the_items(pushed_worker, notify):
    item = notify("Disk almost full", "93% used", priority="P2", category="todo")
    document = server_push(user=item.user, priority="P2", category="todo", items=[item])
    document.pop("silent")
    document["priority"] = "P0"  # escalated: the push says so at its top level

    shown = pushed_worker.show(document)

    assert presentation(shown) == P0


@pytest.mark.parametrize(
    ("document", "title", "body", "tag"),
    [
        (
            {
                "type": "message",
                "seq": 4,
                "data": {"msg_id": "m1", "conversation_id": 7, "content": "Hi there"},
            },
            "New message",
            "Hi there",
            "msg:m1",
        ),
        (
            {
                "type": "message",
                "seq": 5,
                "data": {"msg_id": "m2", "msg_type": "file", "content": {"name": "a.pdf"}},
            },
            "New message",
            "File: a.pdf",
            "msg:m2",
        ),
        (
            {
                "type": "notification",
                "seq": 6,
                "data": {"id": 9, "title": "Build red", "content": "main", "priority": "P1"},
            },
            "Build red",
            "main",
            "ntf:9",
        ),
        (
            {
                "type": "batch",
                "count": 2,
                "items": [],
                "last": {
                    "type": "notification",
                    "seq": 8,
                    "data": {"id": 3, "title": "Canteen", "priority": "P3", "category": "news"},
                },
            },
            "2 new items",
            "Canteen",
            "batch:news",
        ),
    ],
    ids=["text message", "file message", "notification", "merged batch"],
)
def test_a_push_without_the_servers_title_and_body_falls_back_to_the_workers_own_text(
    pushed_worker, document, title, body, tag
):
    shown = pushed_worker.show(document)

    assert (shown["title"], shown["body"], shown["tag"]) == (title, body, tag)


def test_a_newer_push_about_the_same_notification_replaces_the_older_one(pushed_worker, notify):
    item = notify("Approval needed", "Invoice 12", priority="P1", category="approval")
    document = server_push(user=item.user, priority="P1", category="approval", items=[item])
    first = pushed_worker.show(document)

    pushed_worker.deliver({**document, "body": "Invoice 12, second reminder"})

    shown = pushed_worker.wait_until(lambda shown: shown[-1]["body"] == "Invoice 12, second reminder")
    assert [n["tag"] for n in shown] == [first["tag"]]


def test_a_click_on_a_notification_brings_the_open_chat_to_its_conversation(open_chat, alice, bob):
    conversation = conversation_get_or_create_direct(user_id=alice.pk, peer_id=bob.pk)
    page = open_chat(alice)
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    worker = page.context.service_workers[0]
    page.evaluate("window.loadedOnce = true")

    # What the `notificationclick` handler runs with the notification's conversationId. The
    # focus() at its end is refused here (no user gesture in the worker), the switch is not.
    worker.evaluate("(id) => openChat(id).catch(() => {})", conversation.pk)

    expect(page.locator("#pane-title")).to_have_text("Bob")
    assert page.evaluate("location.hash") == f"#c={conversation.pk}"
    assert page.evaluate("window.loadedOnce"), "the chat was reloaded, not switched"
    assert page.errors == []
