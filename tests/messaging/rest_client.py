"""Helpers for the REST API tests: an authenticated client per persona, and row counts that
prove bad input changed nothing."""

from __future__ import annotations

from typing import Any

from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers, get_channel_layer
from rest_framework.test import APIClient

from messaging.models import Conversation, ConversationMember, Message, PendingItem, StreamItem, User
from messaging.services.messages import message_send
from tests.conftest import token_of


def api_as(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_of(user)}")
    return client


def row_counts() -> dict[str, int]:
    """Everything a send, a read or a group creation may write."""
    return {
        "conversations": Conversation.objects.count(),
        "members": ConversationMember.objects.count(),
        "messages": Message.objects.count(),
        "stream_items": StreamItem.objects.count(),
        "pending": PendingItem.objects.count(),
        "read": StreamItem.objects.filter(read_at__isnull=False).count(),
    }


def send(sender: User, content: str = "hi", **target: Any) -> Message:
    """Store a message through the service, as another client would have."""
    return message_send(sender_id=sender.pk, msg_type="text", content=content, **target).message


def use_fast_password_hashing(settings: Any) -> None:
    """PBKDF2's default cost (~0.5 s a user here) would dominate these tests; the personas'
    factory hashes a password, so call this from an autouse fixture, which runs first."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def fresh_channel_layer() -> Any:
    """A new in-memory (or Redis) layer, so groups and queues of other tests cannot leak in
    or out; call again at the end of the test."""
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    return get_channel_layer()
