"""Reads. Replay reads pages by index, one query a page."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Min, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from messaging import frames
from messaging.models import (
    Conversation,
    ConversationMember,
    Message,
    StreamCounter,
    StreamItem,
)

STREAM_ROW_FIELDS = ("seq", "kind", "payload", *(f"message__{name}" for name in frames.MESSAGE_FIELDS))


@dataclass(frozen=True)
class Page:
    items: list[frames.Frame]  # `message` / `notification` frames, seq ascending
    more: bool


def stream_last_seq(*, user_id: int) -> int:
    return StreamCounter.objects.filter(user_id=user_id).values_list("last_seq", flat=True).first() or 0


def _page(queryset: QuerySet[StreamItem], limit: int) -> Page:
    rows = list(queryset.order_by("seq").values_list(*STREAM_ROW_FIELDS)[: limit + 1])
    return Page(items=[frames.stream_row_frame(row) for row in rows[:limit]], more=len(rows) > limit)


def pending_items_page(*, user_id: int, after_seq: int, upto_seq: int, limit: int) -> Page:
    """Unexpired pending items with after_seq < seq <= upto_seq, oldest first."""
    items = StreamItem.objects.filter(
        user_id=user_id, seq__gt=after_seq, seq__lte=upto_seq, pending__expires_at__gt=timezone.now()
    )
    return _page(items, limit)


def stream_items_page(*, user_id: int, after_seq: int, upto_seq: int, limit: int) -> Page:
    """Every kept item with after_seq < seq <= upto_seq, pending or not."""
    items = StreamItem.objects.filter(user_id=user_id, seq__gt=after_seq, seq__lte=upto_seq)
    return _page(items, limit)


def stream_is_truncated(*, user_id: int, after_seq: int, upto_seq: int) -> bool:
    """True when some item in (after_seq, upto_seq] was purged: the client reloads history."""
    if upto_seq <= after_seq:
        return False
    first_kept = StreamItem.objects.filter(user_id=user_id, seq__gt=after_seq).aggregate(first=Min("seq"))[
        "first"
    ]
    return first_kept is None or first_kept > after_seq + 1


def conversations_for_user(*, user_id: int) -> QuerySet[Conversation]:
    return (
        Conversation.objects.filter(memberships__user_id=user_id)
        .prefetch_related("memberships")
        .order_by("-id")
    )


def unread_counts(*, user_id: int, conversation_ids: list[int]) -> dict[int, int]:
    rows = (
        StreamItem.objects.filter(
            user_id=user_id, conversation_id__in=conversation_ids, read_at__isnull=True, is_own=False
        )
        .values("conversation_id")
        .annotate(unread=Count("id"))
    )
    return {row["conversation_id"]: row["unread"] for row in rows}


def conversation_history(*, conversation_id: int) -> QuerySet[Message]:
    """Newest first; ids are time ordered, so a cursor on id pages stably."""
    return Message.objects.filter(conversation_id=conversation_id).order_by("-id")


@dataclass(frozen=True)
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
    return [ConversationSummary(c, unread.get(c.pk, 0), last.get(c.last_message_id)) for c in rows]
