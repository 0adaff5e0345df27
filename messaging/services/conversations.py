"""Conversations: direct ones open on the first message, groups are created explicitly."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from messaging.errors import BadRequest, Forbidden, IMSError, NotFound
from messaging.models import Conversation, ConversationMember

User = get_user_model()


def direct_key(user_a: int, user_b: int) -> str:
    low, high = sorted((user_a, user_b))
    return f"{low}:{high}"


def direct_conversation_ids(*, pairs: Collection[tuple[int, int]]) -> dict[tuple[int, int], int | IMSError]:
    """For each (user, peer): the id of their direct conversation, opened on first use, or
    the error that rules it out. Two queries, plus a few for each conversation opened."""
    active = set(
        User.objects.filter(pk__in={peer for _, peer in pairs}, is_active=True).values_list("pk", flat=True)
    )
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


@dataclass(frozen=True)
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
    return {pk: Membership(kind, members[pk]) for pk, kind in kinds.items()}


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
