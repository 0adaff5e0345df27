"""Reactions to Django's own signals: a user who loses access loses its open sockets.

PROTOCOL.md's close code 4403: deactivation (admin, shell, API), a deleted API token, a
logout. These publish a revoke event on commit (the fast path); the per-process stream poll
closes a deactivated user's sockets anyway, on every server process, within
IMS_STREAM_POLL_SECONDS.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save
from rest_framework.authtoken.models import Token

from messaging import delivery


def close_sockets_of_deactivated_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    if not instance.is_active:
        delivery.publish_revoke_on_commit(instance.pk)


def close_sockets_of_deleted_token(sender: Any, instance: Token, **kwargs: Any) -> None:
    delivery.publish_revoke_on_commit(instance.user_id)


def close_sockets_of_logged_out_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and session_key:
        delivery.publish_revoke_on_commit(user.pk, session_key=session_key)


def connect() -> None:
    post_save.connect(
        close_sockets_of_deactivated_user, sender=get_user_model(), dispatch_uid="ims-revoke-inactive"
    )
    post_delete.connect(close_sockets_of_deleted_token, sender=Token, dispatch_uid="ims-revoke-token")
    user_logged_out.connect(close_sockets_of_logged_out_session, dispatch_uid="ims-revoke-logout")
