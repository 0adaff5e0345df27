"""Sending chat messages: validate, store in every member's stream, publish on commit.

Every edge (WebSocket, REST, Python API) hands its sends here after checking only their
shape; every rule about what may be sent lives in this module.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging import frames
from messaging.errors import BadRequest, Forbidden, IMSError, NotFound
from messaging.ids import MAX_ID, require_ids
from messaging.models import Conversation, Message, StreamItem
from messaging.selectors.conversations import conversation_memberships, require_membership
from messaging.selectors.users import active_user_ids
from messaging.services.conversations import direct_conversation_ids
from messaging.services.stream import NewItem, StreamEntry, stream_append_many
from messaging.services.text import require_clean_strings, require_text
from messaging.sql.inserts import insert_messages
from messaging.sql.pairs import pairs_in

MAX_CLIENT_MSG_ID_LENGTH = 64
ATTACHMENT_FIELDS = {"url": str, "name": str, "size": int, "mime": str}


@dataclass(frozen=True, kw_only=True)
class SendResult:
    message: Message
    sender_seq: int
    created: bool  # False when this was a retry of an already stored client_msg_id


Outcome = SendResult | IMSError


@dataclass(frozen=True, kw_only=True)
class SendCommand:
    """One message to send, as an edge received it: the arguments of message_send."""

    sender_id: int
    content: Any
    msg_type: Any = Message.Type.TEXT
    to: int | None = None
    conversation_id: int | None = None
    client_msg_id: str | None = None
    mentions: Any = ()


@dataclass(eq=False)
class SendRequest:
    """One message on its way through messages_send. Each step fills in what it learns, or
    fails the request with its own error; a failed request is skipped by later steps."""

    command: SendCommand
    client_msg_id: str = ""
    content: Any = None
    repeat_of: SendRequest | None = None  # the same sender and client_msg_id earlier in the batch
    outcome: Outcome | None = None

    @property
    def open(self) -> bool:
        return self.outcome is None and self.repeat_of is None


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where a request's message goes, as _resolve_targets found it."""

    conversation_id: int
    receiver_id: int | None  # the peer of a direct conversation
    member_ids: list[int]  # the active members: the streams the message goes to
    mentions: list[int]


def clean_client_msg_id(value: Any) -> str:
    if value is None:
        return uuid.uuid4().hex
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_CLIENT_MSG_ID_LENGTH:
        raise BadRequest(
            f"client_msg_id must be a non-empty string of at most {MAX_CLIENT_MSG_ID_LENGTH} characters",
            field="client_msg_id",
        )
    return require_text(value, field="client_msg_id")


def clean_content(msg_type: Any, content: Any) -> Any:
    """The content as stored, or BadRequest saying what is wrong with it."""
    if msg_type == Message.Type.TEXT:
        if not isinstance(content, str) or not content.strip():
            raise BadRequest("text content must be a non-empty string", field="content")
        if len(content) > settings.IMS_MAX_TEXT_LENGTH:
            raise BadRequest(
                f"text content is limited to {settings.IMS_MAX_TEXT_LENGTH} characters", field="content"
            )
        return require_text(content, field="content")
    if msg_type in (Message.Type.IMAGE, Message.Type.FILE):
        if not isinstance(content, dict):
            raise BadRequest(
                f"{msg_type} content must be an object {{url, name, size, mime}}", field="content"
            )
        for name, kind in ATTACHMENT_FIELDS.items():
            value = content.get(name)
            if not isinstance(value, kind) or isinstance(value, bool) or value in ("", None):
                raise BadRequest(f"content.{name} must be a {kind.__name__}", field="content")
        if not 0 <= content["size"] <= MAX_ID:
            raise BadRequest(f"content.size must be an integer from 0 to {MAX_ID}", field="content")
        # "//host/x" and "/\\host/x" are not paths: browsers read both as another host.
        url = content["url"]
        if not url.startswith(("https://", "http://", "/")) or url.startswith(("//", "/\\")):
            raise BadRequest("content.url must be an http(s) URL or a path on this site", field="content")
        return require_clean_strings({name: content[name] for name in ATTACHMENT_FIELDS}, field="content")
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


def message_send(**command: Any) -> SendResult:
    """Store a message in every member's stream; a repeated client_msg_id returns the first.

    Takes SendCommand's fields as keywords. Exactly one of `to` (a user, direct message)
    and `conversation_id` is given. Raises an IMSError, and stores nothing, when the input
    is not acceptable.
    """
    (outcome,) = messages_send(commands=[SendCommand(**command)])
    if isinstance(outcome, IMSError):
        raise outcome
    return outcome


def messages_send(*, commands: Sequence[SendCommand]) -> list[Outcome]:
    """message_send for many messages at once: one transaction and a fixed number of
    statements, whatever the number of messages and recipients.

    Each command gets its own outcome, in order: a SendResult, or the IMSError that kept
    it from being stored (the others are stored all the same).
    """
    requests = [SendRequest(command=command) for command in commands]
    _check_input(requests)
    _answer_retries(requests)
    with transaction.atomic():
        targets = _resolve_targets(requests)
        _store(requests, targets)
    return [_outcome(request) for request in requests]


def _outcome(request: SendRequest) -> Outcome:
    """The request's outcome; a repeat within the batch gets the first one's, as a retry."""
    if request.repeat_of is not None:
        first = _outcome(request.repeat_of)
        return replace(first, created=False) if isinstance(first, SendResult) else first
    if request.outcome is None:
        raise RuntimeError("messages_send left a request without an outcome")
    return request.outcome


def _failing(requests: Sequence[SendRequest], check: Any) -> None:
    """Run check(request) on each open request; an IMSError fails that request alone."""
    for request in requests:
        if request.open:
            try:
                check(request)
            except IMSError as error:
                request.outcome = error


def _check_input(requests: Sequence[SendRequest]) -> None:
    """Checks that need no database: the id, the target's shape, the content."""

    def check(request: SendRequest) -> None:
        command = request.command
        request.client_msg_id = clean_client_msg_id(command.client_msg_id)
        if (command.to is None) == (command.conversation_id is None):
            raise BadRequest("give exactly one of `to` and `conversation_id`", field="to")
        target = "to" if command.to is not None else "conversation_id"
        require_ids([command.to if command.to is not None else command.conversation_id], field=target)
        request.content = clean_content(command.msg_type, command.content)

    _failing(requests, check)


def _answer_retries(requests: Sequence[SendRequest]) -> None:
    """Requests whose client_msg_id their sender already used get the first message."""
    keyed = [r for r in requests if r.open]
    if not keyed:
        return
    keys = sorted({(r.command.sender_id, r.client_msg_id) for r in keyed})
    stored = Message.objects.filter(pairs_in(Message, ("sender", "client_msg_id"), keys))
    by_key = {(m.sender_id, m.client_msg_id): m for m in stored}
    found = {
        r: by_key[r.command.sender_id, r.client_msg_id]
        for r in keyed
        if (r.command.sender_id, r.client_msg_id) in by_key
    }
    if not found:
        return
    own = StreamItem.objects.filter(message__in=found.values(), is_own=True)
    # 0 once the sender's copy was purged after retention.
    seqs = dict(own.values_list("message_id", "seq"))
    for request, message in found.items():
        request.outcome = SendResult(message=message, sender_seq=seqs.get(message.pk, 0), created=False)


def _resolve_targets(requests: Sequence[SendRequest]) -> dict[SendRequest, Target]:
    """The conversation, members and mentions of each request that stays open; opens direct
    conversations.

    Only active users send and receive: a deactivated user is refused as `to` and as the
    peer of a direct conversation named by id, and gets nothing from its groups.
    """
    open_requests = [r for r in requests if r.open]
    groups = {r.command.conversation_id for r in open_requests if r.command.conversation_id is not None}
    memberships = conversation_memberships(conversation_ids=groups) if groups else {}
    people = {r.command.sender_id for r in open_requests} | {
        r.command.to for r in open_requests if r.command.to
    }
    people.update(uid for m in memberships.values() for uid in m.member_ids)
    active = active_user_ids(user_ids=people)

    def check_sender_and_mentions(request: SendRequest) -> None:
        command = request.command
        if command.sender_id not in active:
            raise Forbidden("this account is deactivated")
        if command.to is not None:  # before any conversation is opened, so a bad mention opens none
            # A message to nobody is not_found, whatever it mentions.
            if command.to != command.sender_id and command.to not in active:
                raise NotFound(f"user {command.to} does not exist", field="to")
            clean_mentions(command.mentions, member_ids=[command.sender_id, command.to])

    _failing(requests, check_sender_and_mentions)
    pairs = {(r.command.sender_id, r.command.to) for r in requests if r.open and r.command.to is not None}
    conversations = direct_conversation_ids(pairs=pairs, active_ids=active) if pairs else {}

    targets: dict[SendRequest, Target] = {}

    def resolve(request: SendRequest) -> None:
        command = request.command
        receiver_id: int | None = None
        if command.to is not None:
            conversation_id = conversations[command.sender_id, command.to]
            if isinstance(conversation_id, IMSError):
                raise conversation_id
            receiver_id = command.to
            member_ids = [command.sender_id, command.to]
        elif command.conversation_id is not None:
            conversation_id = command.conversation_id
            membership = require_membership(
                conversation_id=conversation_id, user_id=command.sender_id, found=memberships
            )
            if membership.kind == Conversation.Kind.DIRECT and len(membership.member_ids) == 2:
                peer = next(uid for uid in membership.member_ids if uid != command.sender_id)
                if peer not in active:
                    raise NotFound(f"user {peer} does not exist", field="conversation_id")
                receiver_id = peer
            member_ids = [uid for uid in membership.member_ids if uid in active]
        else:
            raise RuntimeError("_check_input let through a send without a target")
        targets[request] = Target(
            conversation_id=conversation_id,
            receiver_id=receiver_id,
            member_ids=member_ids,
            mentions=clean_mentions(command.mentions, member_ids=member_ids),
        )

    _failing(requests, resolve)
    return targets


def _store(requests: Sequence[SendRequest], targets: dict[SendRequest, Target]) -> None:
    """Precondition: inside messages_send's transaction, every open request in `targets`."""
    firsts: dict[tuple[int, str], SendRequest] = {}
    drafts: list[tuple[SendRequest, Message]] = []
    now = timezone.now()
    for request in requests:
        if not request.open:
            continue
        key = (request.command.sender_id, request.client_msg_id)
        if key in firsts:
            request.repeat_of = firsts[key]
            continue
        firsts[key] = request
        target = targets[request]
        message = Message(
            client_msg_id=request.client_msg_id,
            sender_id=request.command.sender_id,
            conversation_id=target.conversation_id,
            receiver_id=target.receiver_id,
            msg_type=request.command.msg_type,
            content=request.content,
            mentions=target.mentions,
            created_at=now,
        )
        drafts.append((request, message))
    if not drafts:
        return
    # One insert order for every batch, so two batches with the same client_msg_ids wait
    # for each other instead of deadlocking.
    drafts.sort(key=lambda draft: (draft[0].command.sender_id, draft[0].client_msg_id))
    inserted = insert_messages(messages=[message for _, message in drafts])
    # A concurrent retry of the same client_msg_id stored the others first.
    _answer_retries([request for request, message in drafts if message.pk not in inserted])
    stored = [(request, message) for request, message in drafts if request.outcome is None]
    entries = [_stream_entry(message, targets[request].member_ids) for request, message in stored]
    for (request, message), items in zip(stored, stream_append_many(entries=entries), strict=True):
        request.outcome = SendResult(message=message, sender_seq=items[message.sender_id].seq, created=True)


def _stream_entry(message: Message, member_ids: Sequence[int]) -> StreamEntry:
    return StreamEntry(
        recipients=[
            NewItem(user_id=uid, pending=uid != message.sender_id, is_own=uid == message.sender_id)
            for uid in member_ids
        ],
        kind=StreamItem.Kind.MESSAGE,
        body={"data": frames.message_data(message)},
        created_at=message.created_at,
        message_id=message.pk,
        conversation_id=message.conversation_id,
    )
