"""Sending a chat message: validate, store in every member's stream, publish on commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging import frames
from messaging.errors import BadRequest, IMSError
from messaging.models import Conversation, Message, StreamItem
from messaging.services.conversations import (
    Membership,
    conversation_memberships,
    direct_conversation_ids,
    require_membership,
)
from messaging.services.stream import NewItem, StreamEntry, stream_append_many

MAX_CLIENT_MSG_ID_LENGTH = 64
ATTACHMENT_FIELDS = {"url": str, "name": str, "size": int, "mime": str}


@dataclass(frozen=True)
class SendResult:
    message: Message
    sender_seq: int
    created: bool  # False when this was a retry of an already stored client_msg_id


def clean_client_msg_id(value: Any) -> str:
    if value is None:
        return uuid.uuid4().hex
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_CLIENT_MSG_ID_LENGTH:
        raise BadRequest(
            f"client_msg_id must be a non-empty string of at most {MAX_CLIENT_MSG_ID_LENGTH} characters",
            field="client_msg_id",
        )
    return value


def clean_content(msg_type: Any, content: Any) -> Any:
    """The content as stored, or BadRequest saying what is wrong with it."""
    if msg_type == Message.Type.TEXT:
        if not isinstance(content, str) or not content.strip():
            raise BadRequest("text content must be a non-empty string", field="content")
        if len(content) > settings.IMS_MAX_TEXT_LENGTH:
            raise BadRequest(
                f"text content is limited to {settings.IMS_MAX_TEXT_LENGTH} characters", field="content"
            )
        return content
    if msg_type in (Message.Type.IMAGE, Message.Type.FILE):
        if not isinstance(content, dict):
            raise BadRequest(
                f"{msg_type} content must be an object {{url, name, size, mime}}", field="content"
            )
        for name, kind in ATTACHMENT_FIELDS.items():
            value = content.get(name)
            if not isinstance(value, kind) or isinstance(value, bool) or value in ("", None):
                raise BadRequest(f"content.{name} must be a {kind.__name__}", field="content")
        if content["size"] < 0:
            raise BadRequest("content.size must not be negative", field="content")
        # "//host/x" and "/\\host/x" are not paths: browsers read both as another host.
        url = content["url"]
        if not url.startswith(("https://", "http://", "/")) or url.startswith(("//", "/\\")):
            raise BadRequest("content.url must be an http(s) URL or a path on this site", field="content")
        return {name: content[name] for name in ATTACHMENT_FIELDS}
    raise BadRequest("msg_type must be one of text, image, file", field="msg_type")


def clean_mentions(mentions: Any, *, member_ids: Sequence[int]) -> list[int]:
    if not isinstance(mentions, list | tuple) or not all(
        isinstance(m, int) and not isinstance(m, bool) for m in mentions
    ):
        raise BadRequest("mentions must be a list of user ids", field="mentions")
    strangers = sorted(set(mentions) - set(member_ids))
    if strangers:
        raise BadRequest(f"mentioned users are not in the conversation: {strangers}", field="mentions")
    return sorted(set(mentions))


@dataclass(frozen=True)
class SendCommand:
    """One message to send: the arguments of message_send."""

    sender_id: int
    content: Any
    msg_type: Any = Message.Type.TEXT
    to: int | None = None
    conversation_id: int | None = None
    client_msg_id: str | None = None
    mentions: Any = ()


Outcome = SendResult | IMSError


def message_send(
    *,
    sender_id: int,
    content: Any,
    msg_type: Any = Message.Type.TEXT,
    to: int | None = None,
    conversation_id: int | None = None,
    client_msg_id: str | None = None,
    mentions: Sequence[int] = (),
) -> SendResult:
    """Store a message in every member's stream; a repeated client_msg_id returns the first.

    Exactly one of `to` (a user, direct message) and `conversation_id` is given. Raises an
    IMSError, and stores nothing, when the input is not acceptable.
    """
    command = SendCommand(sender_id, content, msg_type, to, conversation_id, client_msg_id, mentions)
    (outcome,) = messages_send(commands=[command])
    if isinstance(outcome, IMSError):
        raise outcome
    return outcome


@dataclass
class _Draft:
    index: int
    message: Message
    member_ids: list[int]


def messages_send(*, commands: Sequence[SendCommand]) -> list[Outcome]:
    """message_send for many messages at once: one transaction and a fixed number of
    statements, whatever the number of messages and recipients.

    Each command gets its own outcome, in order: a SendResult, or the IMSError that kept
    it from being stored (the others are stored all the same).
    """
    outcomes: dict[int, Outcome] = {}
    keys: dict[int, str] = {}
    for index, command in enumerate(commands):
        try:
            keys[index] = clean_client_msg_id(command.client_msg_id)
        except IMSError as error:
            outcomes[index] = error
    outcomes.update(_retried(commands, keys))
    contents = _clean_contents(commands, pending=sorted(keys.keys() - outcomes.keys()), outcomes=outcomes)
    with transaction.atomic():
        drafts, repeats = _draft(commands, keys, contents, outcomes)
        outcomes.update(_store(drafts, commands, keys))
    for index, first in repeats.items():
        outcome = outcomes[first]
        outcomes[index] = replace(outcome, created=False) if isinstance(outcome, SendResult) else outcome
    return [outcomes[index] for index in range(len(commands))]


def _retried(commands: Sequence[SendCommand], keys: dict[int, str]) -> dict[int, SendResult]:
    """Outcomes of commands whose client_msg_id its sender already used: the first message."""
    if not keys:
        return {}
    candidates = Message.objects.filter(
        sender_id__in={commands[index].sender_id for index in keys}, client_msg_id__in=set(keys.values())
    )
    stored = {(m.sender_id, m.client_msg_id): m for m in candidates}
    wanted = {index: stored.get((commands[index].sender_id, key)) for index, key in keys.items()}
    found = {index: message for index, message in wanted.items() if message}
    if not found:
        return {}
    own = StreamItem.objects.filter(message__in=found.values(), is_own=True)
    # 0 once the sender's copy was purged after retention.
    seqs = dict(own.values_list("message_id", "seq"))
    return {index: SendResult(m, seqs.get(m.pk, 0), created=False) for index, m in found.items()}


def _clean_contents(
    commands: Sequence[SendCommand], *, pending: list[int], outcomes: dict[int, Outcome]
) -> dict[int, Any]:
    """Checks that need no database: the target's shape and the content."""
    contents = {}
    for index in pending:
        command = commands[index]
        try:
            if (command.to is None) == (command.conversation_id is None):
                raise BadRequest("give exactly one of `to` and `conversation_id`", field="to")
            contents[index] = clean_content(command.msg_type, command.content)
        except IMSError as error:
            outcomes[index] = error
    return contents


def _draft(
    commands: Sequence[SendCommand],
    keys: dict[int, str],
    contents: dict[int, Any],
    outcomes: dict[int, Outcome],
) -> tuple[list[_Draft], dict[int, int]]:
    """Unsaved messages of the acceptable commands, and repeats within this batch (index of a
    second command with the same sender and client_msg_id -> index of the first)."""
    direct = {}
    for index in [i for i in contents if commands[i].to is not None]:
        command = commands[index]
        try:  # before any conversation is opened, so a bad mention opens none
            clean_mentions(command.mentions, member_ids=[command.sender_id, command.to])
            direct[index] = (command.sender_id, command.to)
        except IMSError as error:
            outcomes[index] = error
            del contents[index]
    conversations = direct_conversation_ids(pairs=set(direct.values())) if direct else {}
    groups = {commands[i].conversation_id for i in contents if commands[i].to is None}
    memberships = conversation_memberships(conversation_ids=groups) if groups else {}
    now = timezone.now()
    drafts: list[_Draft] = []
    firsts: dict[tuple[int, str], int] = {}
    repeats: dict[int, int] = {}
    for index in sorted(contents):
        command = commands[index]
        try:
            if command.to is not None:
                conversation_id = conversations[command.sender_id, command.to]
                if isinstance(conversation_id, IMSError):
                    raise conversation_id
                member_ids, receiver_id = [command.sender_id, command.to], command.to
            else:
                conversation_id = command.conversation_id
                membership = require_membership(
                    conversation_id=conversation_id, user_id=command.sender_id, found=memberships
                )
                member_ids = membership.member_ids
                receiver_id = _direct_peer(membership, sender_id=command.sender_id)
            mentions = clean_mentions(command.mentions, member_ids=member_ids)
        except IMSError as error:
            outcomes[index] = error
            continue
        key = (command.sender_id, keys[index])
        if key in firsts:
            repeats[index] = firsts[key]
            continue
        firsts[key] = index
        message = Message(
            client_msg_id=keys[index],
            sender_id=command.sender_id,
            conversation_id=conversation_id,
            receiver_id=receiver_id,
            msg_type=command.msg_type,
            content=contents[index],
            mentions=mentions,
            created_at=now,
        )
        drafts.append(_Draft(index, message, member_ids))
    return drafts, repeats


def _direct_peer(membership: Membership, *, sender_id: int) -> int | None:
    """The other user of a direct conversation (the message's receiver); None in a group."""
    if membership.kind != Conversation.Kind.DIRECT or len(membership.member_ids) != 2:
        return None
    return next(user_id for user_id in membership.member_ids if user_id != sender_id)


def _store(drafts: list[_Draft], commands: Sequence[SendCommand], keys: dict[int, str]) -> dict[int, Outcome]:
    """Precondition: inside messages_send's transaction, everything validated."""
    if not drafts:
        return {}
    # One insert order for every batch, so two batches with the same client_msg_ids wait
    # for each other instead of deadlocking.
    drafts.sort(key=lambda draft: (draft.message.sender_id, draft.message.client_msg_id))
    Message.objects.bulk_create([draft.message for draft in drafts], ignore_conflicts=True)
    inserted = set(Message.objects.filter(pk__in=[d.message.pk for d in drafts]).values_list("pk", flat=True))
    # A concurrent retry of the same client_msg_id stored the others first.
    outcomes: dict[int, Outcome] = dict(
        _retried(commands, {d.index: keys[d.index] for d in drafts if d.message.pk not in inserted})
    )
    stored = [draft for draft in drafts if draft.message.pk in inserted]
    entries = [
        StreamEntry(
            recipients=[
                NewItem(user_id=uid, pending=uid != d.message.sender_id, is_own=uid == d.message.sender_id)
                for uid in d.member_ids
            ],
            kind=StreamItem.Kind.MESSAGE,
            frame_data=frames.message_data(d.message),
            created_at=d.message.created_at,
            message_id=d.message.pk,
            conversation_id=d.message.conversation_id,
        )
        for d in stored
    ]
    for draft, items in zip(stored, stream_append_many(entries=entries), strict=True):
        outcomes[draft.index] = SendResult(draft.message, items[draft.message.sender_id].seq, created=True)
    return outcomes
