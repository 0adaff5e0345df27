"""Reads of conversations: members, summaries for the list, history pages, unread counts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from messaging.errors import Forbidden, NotFound
from messaging.models import Conversation, ConversationMember, Message, StreamItem


@dataclass(frozen=True, kw_only=True)
class Membership:
    kind: str
    member_ids: list[int]


def conversation_memberships(*, conversation_ids: Collection[int]) -> dict[int, Membership]:
    """Kind and members of each conversation that exists, in two queries."""
    kinds = dict(Conversation.objects.filter(pk__in=conversation_ids).values_list("pk", "kind"))
    members: dict[int, list[int]] = defaultdict(list)
    rows = ConversationMember.objects.filter(conversation_id__in=kinds).values_list(
        "conversation_id", "user_id"
    )
    for conversation_id, user_id in rows:
        members[conversation_id].append(user_id)
    return {pk: Membership(kind=kind, member_ids=members[pk]) for pk, kind in kinds.items()}


def require_membership(*, conversation_id: int, user_id: int, found: dict[int, Membership]) -> Membership:
    """The conversation's membership if the user belongs to it; raises not_found or forbidden."""
    membership = found.get(conversation_id)
    if membership is None:
        raise NotFound(f"conversation {conversation_id} does not exist", field="conversation_id")
    if user_id not in membership.member_ids:
        raise Forbidden(f"you are not a member of conversation {conversation_id}", field="conversation_id")
    return membership


def conversation_member_ids(*, conversation_id: int, user_id: int) -> list[int]:
    """Members of a conversation the user belongs to; raises not_found or forbidden."""
    found = conversation_memberships(conversation_ids=[conversation_id])
    return require_membership(conversation_id=conversation_id, user_id=user_id, found=found).member_ids


def unread_counts(*, user_id: int, conversation_ids: list[int]) -> dict[int, int]:
    """Unread messages from others per conversation. A conversation's `conversation` items
    (created, renamed, members changed) carry its id too, but are not messages to read."""
    rows = (
        StreamItem.objects.filter(
            user_id=user_id,
            conversation_id__in=conversation_ids,
            read_at__isnull=True,
            is_own=False,
            kind=StreamItem.Kind.MESSAGE,
        )
        .values("conversation_id")
        .annotate(unread=Count("id"))
    )
    return {row["conversation_id"]: row["unread"] for row in rows}


def conversation_history(*, conversation_id: int) -> QuerySet[Message]:
    """Newest first; ids are time ordered, so a cursor on id pages stably."""
    return Message.objects.filter(conversation_id=conversation_id).order_by("-id")


@dataclass(frozen=True, kw_only=True)
class ConversationSummary:
    conversation: Conversation  # memberships (with their users) prefetched
    unread_count: int
    last_message: Message | None


def conversation_summaries(*, user_id: int, conversation_id: int | None = None) -> list[ConversationSummary]:
    """The user's conversations (or just one), latest activity first, with members, unread
    count and last message: four queries however many conversations there are."""
    newest = Message.objects.filter(conversation_id=OuterRef("pk")).order_by("-id")
    conversations = Conversation.objects.filter(memberships__user_id=user_id)
    if conversation_id is not None:
        conversations = conversations.filter(pk=conversation_id)
    rows = list(
        conversations.annotate(
            last_message_id=Subquery(newest.values("id")[:1]),
            last_activity_at=Coalesce(Subquery(newest.values("created_at")[:1]), "created_at"),
        )
        .prefetch_related(
            Prefetch(
                "memberships", queryset=ConversationMember.objects.select_related("user").order_by("user_id")
            )
        )
        .order_by("-last_activity_at", "-id")
    )
    unread = unread_counts(user_id=user_id, conversation_ids=[c.pk for c in rows])
    last = Message.objects.in_bulk([c.last_message_id for c in rows if c.last_message_id])
    return [
        ConversationSummary(
            conversation=c, unread_count=unread.get(c.pk, 0), last_message=last.get(c.last_message_id)
        )
        for c in rows
    ]


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """How far a message got: of its recipients, how many have it and how many read it."""

    recipients: int
    delivered: int  # read implies delivered
    read: int


def message_deliveries(*, message_ids: Collection[Any]) -> dict[Any, Delivery]:
    """Delivery of each message to its recipients (not the sender's own copy), one query."""
    rows = (
        StreamItem.objects.filter(message_id__in=message_ids, is_own=False)
        .values("message_id")
        .annotate(
            recipients=Count("id"),
            delivered=Count("id", filter=Q(delivered_at__isnull=False)),
            read=Count("id", filter=Q(read_at__isnull=False)),
        )
    )
    return {
        row["message_id"]: Delivery(
            recipients=row["recipients"], delivered=row["delivered"], read=row["read"]
        )
        for row in rows
    }
