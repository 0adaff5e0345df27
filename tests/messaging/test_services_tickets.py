"""WebSocket tickets: single use, valid for IMS_TICKET_TTL_SECONDS, only for active users."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.utils import timezone

from messaging.models import WsTicket
from messaging.services.tickets import ws_ticket_issue, ws_ticket_redeem

pytestmark = pytest.mark.django_db


def test_a_ticket_is_a_long_random_key_valid_for_the_configured_time(alice):
    before = timezone.now()
    ticket = ws_ticket_issue(user_id=alice.pk)

    assert len(ticket.key) >= 40
    assert ws_ticket_issue(user_id=alice.pk).key != ticket.key
    ttl = dt.timedelta(seconds=settings.IMS_TICKET_TTL_SECONDS)
    assert before + ttl <= ticket.expires_at <= timezone.now() + ttl


def test_a_ticket_works_once(alice):
    key = ws_ticket_issue(user_id=alice.pk).key

    assert ws_ticket_redeem(key=key) == alice
    assert ws_ticket_redeem(key=key) is None


def test_an_expired_ticket_does_not_work(alice):
    ticket = ws_ticket_issue(user_id=alice.pk)
    WsTicket.objects.filter(pk=ticket.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    assert ws_ticket_redeem(key=ticket.key) is None


def test_an_unknown_ticket_does_not_work(alice):
    ws_ticket_issue(user_id=alice.pk)

    assert ws_ticket_redeem(key="made-up") is None
    assert ws_ticket_redeem(key="") is None


def test_a_ticket_of_a_deactivated_user_does_not_work_and_is_used_up(alice):
    key = ws_ticket_issue(user_id=alice.pk).key
    alice.is_active = False
    alice.save()

    assert ws_ticket_redeem(key=key) is None
    assert not WsTicket.objects.exists()


def test_issuing_a_ticket_clears_out_expired_ones(alice, bob):
    old = ws_ticket_issue(user_id=bob.pk)
    WsTicket.objects.filter(pk=old.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    fresh = ws_ticket_issue(user_id=alice.pk)

    assert list(WsTicket.objects.values_list("key", flat=True)) == [fresh.key]
