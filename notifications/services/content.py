"""What a push says: title, body and the item frames it carries, built from the stream."""

from __future__ import annotations

from typing import Any

from messaging.api import Priority, item_frames
from messaging.models import User
from notifications.models import PushJob
from notifications.providers import PushMessage

MAX_BODY_CHARS = 200
# "3 new announcements": the noun of a merged push, by category.
PLURALS = {
    "alert": "alerts",
    "security": "security notices",
    "chat": "messages",
    "mention": "mentions",
    "todo": "to-dos",
    "approval": "approvals",
    "announcement": "announcements",
    "news": "news items",
}
# Long enough for a phone that is off over a weekend; the stream keeps the item anyway.
PUSH_TTL_SECONDS = 3 * 24 * 3600


def shorten(text: str, *, limit: int = MAX_BODY_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _message_text(data: dict[str, Any]) -> str:
    content = data.get("content")
    if isinstance(content, dict):  # image or file
        return f"[{data.get('msg_type')}] {content.get('name', '')}"
    return str(content)


def _title_and_body(frame: dict[str, Any]) -> tuple[str, str]:
    data = frame["data"]
    if frame["type"] == "message":
        sender = User.objects.filter(pk=data["sender_id"]).first()
        return (str(sender) if sender else "New message"), shorten(_message_text(data))
    return data.get("title", ""), shorten(data.get("content", ""))


def push_message(*, job: PushJob, item_ids: list[int]) -> PushMessage:
    """The push for these still-pending items of the job: one item as itself, several as a
    `batch` ("3 new announcements") that replaces the user's earlier one of that category."""
    by_id = item_frames(item_ids=item_ids)
    frames = sorted(by_id.values(), key=lambda frame: frame["seq"])
    last = frames[-1]
    if len(frames) == 1:
        title, body = _title_and_body(last)
        payload = last
        collapse_key = f"ims:{job.user_id}:{last['seq']}"
    else:
        categories = {job.category} | {
            frame["data"].get("category") for frame in frames if frame["type"] != "message"
        }
        noun = PLURALS.get(job.category, "notifications") if len(categories) == 1 else "notifications"
        title, body = f"{len(frames)} new {noun}", _title_and_body(last)[0]
        payload = {"type": "batch", "count": len(frames), "items": frames, "last": last}
        collapse_key = (
            f"ims:{job.user_id}:{job.category}"
            if job.priority == Priority.P3
            else f"ims:{job.user_id}:{last['seq']}"
        )
    return PushMessage(
        title=title,
        body=body,
        payload=payload,
        # How loud each priority is, per channel, follows from it (providers/presentation.py).
        priority=job.priority,  # type: ignore[arg-type]  # a Priority value, checked on the way in
        collapse_key=collapse_key,
        ttl_seconds=PUSH_TTL_SECONDS,
    )
