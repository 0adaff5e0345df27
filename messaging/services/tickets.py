"""Single-use WebSocket tickets (PROTOCOL.md: `?ticket=T`, valid for 30 seconds)."""

from __future__ import annotations

import datetime as dt
import secrets

from django.conf import settings
from django.utils import timezone

from messaging.models import User, WsTicket


def ws_ticket_issue(*, user_id: int) -> WsTicket:
    now = timezone.now()
    # Tickets nobody redeemed would pile up; dropping them here needs no periodic task.
    WsTicket.objects.filter(expires_at__lte=now).delete()
    return WsTicket.objects.create(
        key=secrets.token_urlsafe(32),
        user_id=user_id,
        expires_at=now + dt.timedelta(seconds=settings.IMS_TICKET_TTL_SECONDS),
    )


def ws_ticket_redeem(*, key: str) -> User | None:
    """The active user the ticket was issued to, or None. A ticket works once."""
    ticket = WsTicket.objects.filter(key=key, expires_at__gt=timezone.now()).select_related("user").first()
    if ticket is None:
        return None
    # Only the request whose delete removed the row may use it: two racing redeems get one user.
    deleted, _ = WsTicket.objects.filter(key=key).delete()
    if not deleted or not ticket.user.is_active:
        return None
    return ticket.user
