"""Conversations: direct ones open on the first message, groups are created explicitly."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging.errors import BadRequest, Forbidden, IMSError, NotFound
from messaging.ids import require_ids
from messaging.models import Conversation, ConversationMember, Priority, StreamItem
from messaging.selectors.conversations import conversation_member_ids
from messaging.selectors.users import active_user_ids
from messaging.services.stream import NewItem, StreamEntry, stream_append
from messaging.services.text import require_text


def direct_key(user_a: int, user_b: int) -> str:
    low, high = sorted((user_a, user_b))
    return f"{low}:{high}"


def direct_conversation_ids(
    *, pairs: Collection[tuple[int, int]], active_ids: Collection[int] | None = None
) -> dict[tuple[int, int], int | IMSError]:
    """For each (user, peer): the id of their direct conversation, opened on first use, or
    the error that rules it out. Two queries, plus a few for each conversation opened; one
    fewer when the caller read which peers are active (`active_ids`, a superset is fine)."""
    peers = {peer for _, peer in pairs}
    active = active_user_ids(user_ids=peers) if active_ids is None else peers & set(active_ids)
    keys = {direct_key(*pair) for pair in pairs}
    known = dict(Conversation.objects.filter(direct_key__in=keys).values_list("direct_key", "pk"))
    outcomes: dict[tuple[int, int], int | IMSError] = {}
    for user_id, peer_id in pairs:
        if peer_id == user_id:
            outcomes[user_id, peer_id] = BadRequest("a direct message needs another user as `to`", field="to")
        elif peer_id not in active:
            outcomes[user_id, peer_id] = NotFound(f"user {peer_id} does not exist", field="to")
        else:
            key = direct_key(user_id, peer_id)
            if key not in known:
                known[key] = _open_direct(key=key, user_id=user_id, peer_id=peer_id).pk
            outcomes[user_id, peer_id] = known[key]
    return outcomes


def _open_direct(*, key: str, user_id: int, peer_id: int) -> Conversation:
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


def conversation_get_or_create_direct(*, user_id: int, peer_id: int) -> Conversation:
    """The one direct conversation of two users, created on first use."""
    outcome = direct_conversation_ids(pairs=[(user_id, peer_id)])[user_id, peer_id]
    if isinstance(outcome, IMSError):
        raise outcome
    return Conversation.objects.get(pk=outcome)


def _group_title(title: str) -> str:
    title = require_text(title, field="title").strip()
    if not title:
        raise BadRequest("a group needs a title", field="title")
    return title


def _require_active_users(user_ids: Collection[int]) -> None:
    unknown = sorted(set(user_ids) - active_user_ids(user_ids=user_ids))
    if unknown:
        raise NotFound(f"unknown users: {unknown}", field="member_ids")


def _require_group_member(*, conversation_id: int, user_id: int) -> tuple[Conversation, list[int]]:
    """The group (row-locked, so changes to one group queue up) and its member ids."""
    member_ids = conversation_member_ids(conversation_id=conversation_id, user_id=user_id)
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    if conversation.kind != Conversation.Kind.GROUP:
        raise BadRequest(
            "the members and title of a direct conversation cannot change", field="conversation_id"
        )
    return conversation, member_ids


def _publish_change(
    conversation: Conversation,
    *,
    event: str,
    actor_id: int,
    member_ids: Sequence[int],
    also: Sequence[int] = (),
) -> None:
    """A `conversation` item in the stream of every member (and of `also`: a removed member
    learns it was removed). The actor's own copy is not pending, like a sent message's."""
    data = {
        "id": conversation.pk,
        "kind": conversation.kind,
        "title": conversation.title,
        "member_ids": sorted(member_ids),
    }
    recipients = sorted(set(member_ids) | set(also))
    stream_append(
        entry=StreamEntry(
            recipients=[
                NewItem(user_id=uid, pending=uid != actor_id, is_own=uid == actor_id) for uid in recipients
            ],
            kind=StreamItem.Kind.CONVERSATION,
            body={"event": event, "data": data},
            created_at=timezone.now(),
            conversation_id=conversation.pk,
            priority=Priority.P2,
        )
    )


def conversation_create_group(*, creator_id: int, title: str, member_ids: Sequence[int]) -> Conversation:
    """A group of the creator and the given users (all must exist and be active); every
    member's stream gets a `conversation` item `created`."""
    title = _group_title(title)
    require_ids(member_ids, field="member_ids")
    wanted = set(member_ids) | {creator_id}
    if len(wanted) > settings.IMS_MAX_GROUP_MEMBERS:
        raise BadRequest(f"a group has at most {settings.IMS_MAX_GROUP_MEMBERS} members", field="member_ids")
    _require_active_users(wanted)
    with transaction.atomic():
        conversation = Conversation.objects.create(
            kind=Conversation.Kind.GROUP, title=title, created_by_id=creator_id
        )
        ConversationMember.objects.bulk_create(
            [ConversationMember(conversation=conversation, user_id=uid) for uid in sorted(wanted)]
        )
        _publish_change(conversation, event="created", actor_id=creator_id, member_ids=sorted(wanted))
    return conversation


def conversation_add_members(*, conversation_id: int, actor_id: int, user_ids: Sequence[int]) -> Conversation:
    """Any member of a group may add active users; members already in are skipped."""
    require_ids([conversation_id], field="conversation_id")
    require_ids(user_ids, field="user_ids")
    with transaction.atomic():
        conversation, member_ids = _require_group_member(conversation_id=conversation_id, user_id=actor_id)
        new = sorted(set(user_ids) - set(member_ids))
        if len(member_ids) + len(new) > settings.IMS_MAX_GROUP_MEMBERS:
            raise BadRequest(
                f"a group has at most {settings.IMS_MAX_GROUP_MEMBERS} members", field="user_ids"
            )
        _require_active_users(new)
        if new:
            ConversationMember.objects.bulk_create(
                [ConversationMember(conversation=conversation, user_id=uid) for uid in new]
            )
            _publish_change(
                conversation, event="member_added", actor_id=actor_id, member_ids=[*member_ids, *new]
            )
    return conversation


def conversation_remove_member(*, conversation_id: int, actor_id: int, user_id: int) -> Conversation:
    """A member leaves (removes itself), or the group's creator removes another member."""
    require_ids([conversation_id], field="conversation_id")
    require_ids([user_id], field="user_id")
    with transaction.atomic():
        conversation, member_ids = _require_group_member(conversation_id=conversation_id, user_id=actor_id)
        if user_id != actor_id and conversation.created_by_id != actor_id:
            raise Forbidden("only the group's creator removes other members", field="user_id")
        if user_id not in member_ids:
            raise NotFound(
                f"user {user_id} is not a member of conversation {conversation_id}", field="user_id"
            )
        ConversationMember.objects.filter(conversation=conversation, user_id=user_id).delete()
        remaining = [uid for uid in member_ids if uid != user_id]
        _publish_change(
            conversation, event="member_removed", actor_id=actor_id, member_ids=remaining, also=[user_id]
        )
    return conversation


def conversation_rename(*, conversation_id: int, actor_id: int, title: str) -> Conversation:
    """Any member of a group may rename it."""
    require_ids([conversation_id], field="conversation_id")
    title = _group_title(title)
    with transaction.atomic():
        conversation, member_ids = _require_group_member(conversation_id=conversation_id, user_id=actor_id)
        if conversation.title != title:
            conversation.title = title
            conversation.save(update_fields=["title"])
            _publish_change(conversation, event="renamed", actor_id=actor_id, member_ids=member_ids)
    return conversation
