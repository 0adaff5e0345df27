"""The chat UI in a real browser against a real daphne: two people, live ticks, replay,
restarts, uploads, escaping, and groups."""

from __future__ import annotations

import json
import struct
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from messaging.models import Conversation, Message
from messaging.services.conversations import conversation_get_or_create_direct
from messaging.services.receipts import items_mark_read
from tests.browser.conftest import session_cookie
from tests.conftest import token_of
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def direct(a, b) -> Conversation:
    return conversation_get_or_create_direct(user_id=a.pk, peer_id=b.pk)


def send(page, text: str) -> None:
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")


def message(page, text: str):
    return page.locator(".msg", has_text=text)


def png_bytes(width: int = 4, height: int = 3) -> bytes:
    """A small valid PNG, so the browser really decodes the thumbnail."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x4f\x46\xe5" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_two_people_chat_both_ways_and_see_their_ticks_turn_to_read(open_chat, alice, bob):
    chat = direct(alice, bob)
    alice_page = open_chat(alice, f"#c={chat.pk}")
    bob_page = open_chat(bob, f"#c={chat.pk}")

    send(alice_page, "Hi Bob, lunch?")
    expect(message(bob_page, "Hi Bob, lunch?")).to_be_visible()
    # Bob's page is open on the conversation, so the message is read at once.
    expect(message(alice_page, "Hi Bob, lunch?").locator(".tick")).to_have_attribute("aria-label", "Read")

    send(bob_page, "Sure, 12:30")
    expect(message(alice_page, "Sure, 12:30")).to_be_visible()
    expect(message(bob_page, "Sure, 12:30").locator(".tick")).to_have_attribute("aria-label", "Read")
    # Own messages sit on the other side from the peer's.
    expect(message(alice_page, "Hi Bob, lunch?")).to_have_class("msg own")
    expect(message(alice_page, "Sure, 12:30")).to_have_class("msg other")
    assert alice_page.errors == bob_page.errors == []


def test_a_message_sent_while_the_receivers_page_is_closed_appears_when_it_opens(open_chat, alice, bob):
    chat = direct(alice, bob)
    alice_page = open_chat(alice, f"#c={chat.pk}")
    send(alice_page, "Are you there?")
    expect(message(alice_page, "Are you there?").locator(".tick")).to_have_attribute("aria-label", "Sent")

    bob_page = open_chat(bob)
    item = bob_page.locator(f".conversation-item[data-conversation-id='{chat.pk}']")
    expect(item.locator(".badge")).to_have_attribute("aria-label", "1 unread message")
    item.click()
    expect(message(bob_page, "Are you there?")).to_be_visible()
    expect(item.locator(".badge")).to_have_count(0)
    expect(message(alice_page, "Are you there?").locator(".tick")).to_have_attribute("aria-label", "Read")

    alice_page.reload()  # the history says how far it got, so the tick stays
    expect(message(alice_page, "Are you there?").locator(".tick")).to_have_attribute("aria-label", "Read")


def test_a_message_typed_while_the_server_restarts_arrives_without_a_reload(open_chat, server, alice, bob):
    chat = direct(alice, bob)
    alice_page = open_chat(alice, f"#c={chat.pk}")
    bob_page = open_chat(bob, f"#c={chat.pk}")

    server.kill()
    expect(alice_page.locator("#connection-state")).not_to_have_attribute("data-state", "open")
    send(alice_page, "Sent while the server was down")
    expect(message(alice_page, "Sent while the server was down").locator(".tick")).to_have_attribute(
        "aria-label", "Sending"
    )
    server.start()

    expect(message(bob_page, "Sent while the server was down")).to_be_visible()
    expect(message(alice_page, "Sent while the server was down").locator(".tick")).to_have_attribute(
        "aria-label", "Read"
    )
    expect(alice_page.locator("#connection-state")).to_have_attribute("data-state", "open")
    # Exactly once, on both sides.
    expect(message(bob_page, "Sent while the server was down")).to_have_count(1)
    expect(message(alice_page, "Sent while the server was down")).to_have_count(1)


def test_a_message_read_while_the_senders_page_was_offline_shows_read_after_it_reconnects(
    open_chat, server, alice, bob
):
    chat = direct(alice, bob)
    alice_page = open_chat(alice, f"#c={chat.pk}")
    send(alice_page, "Read this while I am away")
    tick = message(alice_page, "Read this while I am away").locator(".tick")
    expect(tick).to_have_attribute("aria-label", "Sent")

    server.kill()  # the receipt of Bob's read has no socket of Alice's to go to
    expect(alice_page.locator("#connection-state")).not_to_have_attribute("data-state", "open")
    msg_id = Message.objects.get(content="Read this while I am away").pk
    # As Bob's phone would on another server; from a thread, as playwright's loop runs here.
    with ThreadPoolExecutor(1) as other_server:
        assert other_server.submit(items_mark_read, user_id=bob.pk, msg_ids=[str(msg_id)]).result() == 1
        other_server.submit(connections.close_all).result()
    server.start()

    expect(alice_page.locator("#connection-state")).to_have_attribute("data-state", "open")
    expect(tick).to_have_attribute("aria-label", "Read")  # no reload
    assert alice_page.errors == []


def test_markup_in_a_message_shows_as_text_and_runs_nothing(open_chat, alice, bob):
    chat = direct(alice, bob)
    alice_page = open_chat(alice, f"#c={chat.pk}")
    bob_page = open_chat(bob, f"#c={chat.pk}")
    dialogs = []
    bob_page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    payload = "<img src=x onerror=alert(1)>"

    send(alice_page, payload)

    expect(bob_page.locator(".msg .text", has_text=payload)).to_be_visible()
    expect(bob_page.locator(".conversation-preview", has_text=payload)).to_be_visible()
    assert bob_page.locator(".messages img").count() == 0
    bob_page.wait_for_timeout(300)  # an onerror would have fired by now
    assert dialogs == []


def test_an_uploaded_image_is_a_thumbnail_for_members_and_404_for_anyone_else(
    open_chat, browser, server, alice, bob, carol, tmp_path
):
    chat = direct(alice, bob)
    alice_page = open_chat(alice, f"#c={chat.pk}")
    bob_page = open_chat(bob, f"#c={chat.pk}")
    picture = tmp_path / "team.png"
    picture.write_bytes(png_bytes())

    alice_page.set_input_files("#file-input", str(picture))

    thumbnail = bob_page.locator(".msg img.thumb")
    expect(thumbnail).to_be_visible()
    expect(thumbnail).to_have_attribute("alt", "team.png")
    assert bob_page.evaluate("img => img.naturalWidth", thumbnail.element_handle()) == 4
    url = thumbnail.get_attribute("src")

    stranger = browser.new_context()
    try:
        stranger.add_cookies([session_cookie(carol, server.origin)])
        assert stranger.request.get(server.origin + url).status == 404
    finally:
        stranger.close()
    assert bob_page.context.request.get(server.origin + url).status == 200


def test_a_group_created_by_one_member_appears_on_another_members_open_page(open_chat, alice, bob, carol):
    direct(alice, bob)
    direct(alice, carol)
    alice_page = open_chat(alice)
    bob_page = open_chat(bob)

    alice_page.click("#new-conversation")
    alice_page.fill("#group-title", "Launch crew")
    for name in ("Bob", "Carol"):
        alice_page.fill("#people-search", name.lower())
        alice_page.locator(".person", has_text=name).click()
    alice_page.click("#people-submit")

    expect(alice_page.locator("#pane-title")).to_have_text("Launch crew")
    expect(bob_page.locator(".conversation-title", has_text="Launch crew")).to_be_visible()
    send(alice_page, "Welcome aboard")
    bob_page.locator(".conversation-item", has_text="Launch crew").click()
    expect(message(bob_page, "Welcome aboard")).to_be_visible()


def notify_over_rest(server, *, sender, **body) -> None:
    """POST /api/notifications/ to the live server, as a business service would."""
    request = urllib.request.Request(  # noqa: S310  (our own local server, http)
        f"{server.origin}/api/notifications/",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Token {token_of(sender)}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  (our own local server)
        assert response.status == 201


def test_a_p0_notification_opens_a_banner_that_stays_until_acknowledged(open_chat, server, alice):
    ops = UserFactory(username="ops", is_staff=True)
    Token.objects.create(user=ops)
    page = open_chat(alice)

    notify_over_rest(
        server,
        sender=ops,
        user_ids=[alice.pk],
        title="Database down",
        content="db-1 stopped answering",
        priority="P0",
        category="alert",
    )

    banner = page.locator(".p0-banner", has_text="Database down")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("role", "alert")
    expect(page.locator("#bell-badge")).to_have_text("1")
    page.reload()  # still unread: it stays
    expect(banner).to_be_visible()

    banner.get_by_role("button", name="Acknowledge").click()
    expect(banner).to_have_count(0)
    page.reload()  # read on the server, not only on this page
    page.locator("#bell-badge").wait_for(state="hidden")
    expect(page.locator(".p0-banner")).to_have_count(0)
    assert page.errors == []
