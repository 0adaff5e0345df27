"""Conversations: direct ones open on the first message, groups are created explicitly."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from messaging.errors import BadRequest, Forbidden, NotFound
from messaging.models import Conversation, ConversationMember

User = get_user_model()


def direct_key(user_a: int, user_b: int) -> str:
    low, high = sorted((user_a, user_b))
    return f"{low}:{high}"


def conversation_get_or_create_direct(*, user_id: int, peer_id: int) -> Conversation:
    """The one direct conversation of two users, created on first use."""
    if peer_id == user_id:
        raise BadRequest("a direct message needs another user as `to`", field="to")
    if not User.objects.filter(pk=peer_id, is_active=True).exists():
        raise NotFound(f"user {peer_id} does not exist", field="to")
    key = direct_key(user_id, peer_id)
    existing = Conversation.objects.filter(direct_key=key).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                kind=Conversation.Kind.DIRECT, direct_key=key, created_by_id=user_id
            )
            ConversationMember.objects.bulk_create(
                [ConversationMember(conversation=conversation, user_id=uid) for uid in (user_id, peer_id)]
            )
            return conversation
    except IntegrityError:
        # Another first message opened it a moment ago.
        return Conversation.objects.get(direct_key=key)


def conversation_member_ids(*, conversation_id: int, user_id: int) -> list[int]:
    """Members of a conversation the user belongs to; raises not_found or forbidden."""
    member_ids = list(
        ConversationMember.objects.filter(conversation_id=conversation_id).values_list("user_id", flat=True)
    )
    if user_id in member_ids:
        return member_ids
    if member_ids or Conversation.objects.filter(pk=conversation_id).exists():
        raise Forbidden(f"you are not a member of conversation {conversation_id}", field="conversation_id")
    raise NotFound(f"conversation {conversation_id} does not exist", field="conversation_id")


def conversation_create_group(*, creator_id: int, title: str, member_ids: Sequence[int]) -> Conversation:
    """A group of the creator and the given users (all must exist and be active)."""
    title = title.strip()
    if not title:
        raise BadRequest("a group needs a title", field="title")
    wanted = set(member_ids) | {creator_id}
    if len(wanted) > settings.IMS_MAX_GROUP_MEMBERS:
        raise BadRequest(f"a group has at most {settings.IMS_MAX_GROUP_MEMBERS} members", field="member_ids")
    found = set(User.objects.filter(pk__in=wanted, is_active=True).values_list("pk", flat=True))
    unknown = sorted(wanted - found)
    if unknown:
        raise NotFound(f"unknown users: {unknown}", field="member_ids")
    with transaction.atomic():
        conversation = Conversation.objects.create(
            kind=Conversation.Kind.GROUP, title=title, created_by_id=creator_id
        )
        ConversationMember.objects.bulk_create(
            [ConversationMember(conversation=conversation, user_id=uid) for uid in sorted(wanted)]
        )
    return conversation
