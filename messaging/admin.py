"""The Django admin of messaging: every message with its delivery per recipient, the streams,
the offline queue and presence. Staff only, as the admin always is.

Streams are append-only and gap free, so their rows are read-only here: editing a seq, a
status or a pending entry by hand would break what PROTOCOL.md promises clients. Lists
annotate their counts with correlated subqueries (each evaluated only for the rows shown)
and select their related rows, so a page is a fixed number of queries however long it is.
Tables grow to millions of rows, so their lists skip the full count and facet counts.
"""

from __future__ import annotations

import datetime as dt
import uuid
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, TypedDict

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from messaging.admin_base import ReadOnlyAdminMixin
from messaging.models import (
    Connection,
    Conversation,
    ConversationMember,
    ItemStatus,
    Message,
    PendingItem,
    SigninFailures,
    StreamCounter,
    StreamItem,
    User,
)
from messaging.services.messages import ATTACHMENT_FIELDS
from messaging.services.signin import wait_seconds

if TYPE_CHECKING:
    # django-stubs-ext is a development dependency: the rows the lists below annotate.
    from django_stubs_ext import WithAnnotations

    class ConversationCounts(TypedDict):
        member_total: int
        message_total: int

    class DeliveryCounts(TypedDict):
        recipients: int
        delivered: int
        read: int

    class PendingMark(TypedDict):
        is_pending: bool


# Inlines render one form a row; a broadcast to 10,000 users would make a page of 10,000.
MAX_INLINE_ROWS = 200


def count_of(queryset: QuerySet, *, outer: str) -> Coalesce:
    """COUNT(*) of `queryset` rows whose `outer` column matches the annotated row's pk."""
    counted = (
        queryset.filter(**{outer: OuterRef("pk")})
        .order_by()
        .values(outer)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def displayable(text: str) -> str:
    """Text a page can encode: a lone surrogate stored before such text was refused shows as
    U+FFFD instead of failing the whole page."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class FirstRowsInline(admin.TabularInline):
    """Shows at most MAX_INLINE_ROWS rows of the object on the page, ordered by `row_order`.

    Subclasses name their `fk_name`: the rows are picked before the formset filters by it.
    """

    row_order: tuple[str, ...] = ("pk",)
    fk_name: str
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request).order_by(*self.row_order)
        object_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if object_id is None:
            return queryset
        shown = queryset.filter(**{self.fk_name: object_id}).values_list("pk", flat=True)[:MAX_INLINE_ROWS]
        return queryset.filter(pk__in=list(shown))


# --- users -------------------------------------------------------------------------------


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (*(DjangoUserAdmin.fieldsets or ()), ("Profile", {"fields": ("display_name", "time_zone")}))
    list_display = ("username", "display_name", "email", "is_staff", "is_active")


# --- conversations -----------------------------------------------------------------------


class MemberInline(FirstRowsInline):
    model = ConversationMember
    fk_name = "conversation"
    row_order = ("user_id",)
    fields = ("user", "joined_at")
    readonly_fields = ("joined_at",)
    raw_id_fields = ("user",)
    verbose_name_plural = f"members (the first {MAX_INLINE_ROWS} by user id)"

    def _is_group(self, obj: Conversation | None) -> bool:
        return obj is not None and obj.kind == Conversation.Kind.GROUP

    # A direct conversation is exactly its two users (its direct_key says so): fixed here.
    def has_add_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return self._is_group(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return self._is_group(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return self._is_group(obj) and super().has_delete_permission(request, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("user")


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "__str__", "kind", "member_count", "message_count", "created_by", "created_at")
    list_display_links = ("id", "__str__")
    list_filter = ("kind", "created_at")
    list_select_related = ("created_by",)
    search_fields = ("title", "=memberships__user__username")
    ordering = ("-id",)
    fields = ("kind", "title", "direct_key", "created_by", "created_at", "member_count", "message_count")
    readonly_fields = ("kind", "direct_key", "created_by", "created_at", "member_count", "message_count")
    inlines = (MemberInline,)
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_total=count_of(ConversationMember.objects.all(), outer="conversation"),
                message_total=count_of(Message.objects.all(), outer="conversation"),
            )
        )

    @admin.display(description="members", ordering="member_total")
    def member_count(self, obj: WithAnnotations[Conversation, ConversationCounts]) -> int:
        return obj.member_total

    @admin.display(description="messages", ordering="message_total")
    def message_count(self, obj: WithAnnotations[Conversation, ConversationCounts]) -> int:
        return obj.message_total

    # Conversations come from the API (a direct one per pair, groups with their creator);
    # deleting one would cut holes in the streams of all its members.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return False


# --- messages ----------------------------------------------------------------------------


class DeliveryInline(ReadOnlyAdminMixin, FirstRowsInline):
    """The message's item in each member's stream: its delivery to that user."""

    model = StreamItem
    fk_name = "message"
    row_order = ("is_own", "user_id")
    # Not "pending": that name is the reverse one-to-one, read with a query a row.
    fields = ("user", "seq", "is_own", "status", "delivered_at", "read_at", "waiting")
    readonly_fields = fields
    verbose_name = "delivery"
    verbose_name_plural = f"delivery per recipient (the first {MAX_INLINE_ROWS}; own copy last)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[StreamItem]:
        return (
            super()
            .get_queryset(request)
            .select_related("user")
            .annotate(is_pending=Exists(PendingItem.objects.filter(item=OuterRef("pk"))))
        )

    @admin.display(description="pending", boolean=True)
    def waiting(self, obj: WithAnnotations[StreamItem, PendingMark]) -> bool:
        return obj.is_pending


@admin.register(Message)
class MessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("msg_id", "sender", "conversation", "msg_type", "created_at", "short_content", "delivery")
    list_filter = ("msg_type", "created_at")
    list_select_related = ("sender", "conversation")
    search_fields = ("=client_msg_id", "=sender__username")
    # Ids are UUIDv7: ordering by id is ordering by time, on the primary key index.
    ordering = ("-id",)
    fields = (
        "msg_id",
        "client_msg_id",
        "sender",
        "receiver",
        "conversation",
        "msg_type",
        "body",
        "mentions",
        "created_at",
        "delivery",
        "all_items",
    )
    readonly_fields = fields
    inlines = (DeliveryInline,)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        received = StreamItem.objects.filter(is_own=False)
        return (
            super()
            .get_queryset(request)
            .annotate(
                recipients=count_of(received, outer="message"),
                delivered=count_of(
                    received.filter(status__in=[ItemStatus.DELIVERED, ItemStatus.READ]), outer="message"
                ),
                read=count_of(received.filter(status=ItemStatus.READ), outer="message"),
            )
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Message], search_term: str
    ) -> tuple[QuerySet[Message], bool]:
        """A msg_id is looked up by primary key; anything else by client_msg_id or sender."""
        try:
            msg_id = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(pk=msg_id), False

    @admin.display(description="msg_id", ordering="id")
    def msg_id(self, obj: Message) -> str:
        return obj.msg_id

    @admin.display(description="content")
    def short_content(self, obj: Message) -> str:
        if obj.msg_type == Message.Type.TEXT:
            text = displayable(str(obj.content))
            return text if len(text) <= 60 else f"{text[:59]}…"
        if isinstance(obj.content, dict):
            return displayable(f"[{obj.msg_type}] {obj.content.get('name', '')}")
        return ""

    @admin.display(description="content")
    def body(self, obj: Message) -> str:
        """Text as written; an attachment as its fields. Escaped: never rendered as HTML."""
        if isinstance(obj.content, dict):
            # In the protocol's order: jsonb on PostgreSQL stores keys in an order of its own.
            return displayable(", ".join(f"{name}: {obj.content.get(name)}" for name in ATTACHMENT_FIELDS))
        return displayable(str(obj.content))

    @admin.display(description="delivery")
    def delivery(self, obj: WithAnnotations[Message, DeliveryCounts]) -> str:
        if not obj.recipients:
            return "no recipient items kept"
        return f"{obj.delivered}/{obj.recipients} delivered, {obj.read} read"

    @admin.display(description="stream items")
    def all_items(self, obj: Message) -> str:
        url = reverse("admin:messaging_streamitem_changelist")
        return format_html(
            '<a href="{}?message__id__exact={}">every stream item of this message</a>', url, obj.pk
        )


# --- streams and the offline queue ---------------------------------------------------------


@admin.register(StreamItem)
class StreamItemAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "user",
        "seq",
        "kind",
        "priority",
        "status",
        "is_own",
        "message_link",
        "created_at",
        "delivered_at",
        "read_at",
    )
    list_display_links = ("seq",)
    list_filter = ("kind", "status", "priority", "is_own", "created_at")
    list_select_related = ("user",)
    search_fields = ("=user__username",)
    ordering = ("-created_at",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description="message", ordering="message_id")
    def message_link(self, obj: StreamItem) -> str:
        if obj.message_id is None:
            return "—"
        url = reverse("admin:messaging_message_change", args=[obj.message_id])
        return format_html('<a href="{}">{}</a>', url, obj.message_id)


class YesNoFilter(admin.SimpleListFilter):
    """A yes / no filter on one condition, which each subclass defines."""

    no_label = "No"

    @abstractmethod
    def condition(self) -> Q:
        """The rows the filter's "yes" keeps; "no" keeps the others."""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", self.no_label)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(self.condition())
        if self.value() == "no":
            return queryset.exclude(self.condition())
        return queryset


class ExpiredFilter(YesNoFilter):
    title = "expired"
    parameter_name = "expired"

    def condition(self) -> Q:
        return Q(expires_at__lte=timezone.now())


@admin.register(PendingItem)
class PendingItemAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The offline queue: items no connection of their user has acked yet."""

    list_display = ("user", "seq", "kind", "created_at", "expires_at", "expired")
    list_filter = (ExpiredFilter, "item__kind", "created_at")
    list_select_related = ("user", "item")
    search_fields = ("=user__username",)
    ordering = ("expires_at",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description="kind", ordering="item__kind")
    def kind(self, obj: PendingItem) -> str:
        return obj.item.get_kind_display()

    @admin.display(description="expired", boolean=True)
    def expired(self, obj: PendingItem) -> bool:
        return obj.expires_at <= timezone.now()


@admin.register(StreamCounter)
class StreamCounterAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("user", "last_seq")
    list_select_related = ("user",)
    search_fields = ("=user__username",)
    ordering = ("user_id",)


# --- presence ------------------------------------------------------------------------------


class OnlineFilter(YesNoFilter):
    title = "alive"
    parameter_name = "alive"
    no_label = "No: silent for two heartbeats"

    def condition(self) -> Q:
        return Q(last_seen_at__gt=stale_before())


def stale_before() -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=2 * settings.IMS_HEARTBEAT_SECONDS)


@admin.register(Connection)
class ConnectionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Open WebSockets. Rows go when the socket closes or the reaper finds them silent."""

    list_display = ("user", "channel_name", "connected_at", "last_seen_at", "alive")
    list_filter = (OnlineFilter,)
    list_select_related = ("user",)
    search_fields = ("=user__username",)
    ordering = ("-connected_at",)

    @admin.display(description="alive", boolean=True)
    def alive(self, obj: Connection) -> bool:
        return obj.last_seen_at > stale_before()


# --- sign-in -------------------------------------------------------------------------------


@admin.register(SigninFailures)
class SigninFailuresAdmin(admin.ModelAdmin):
    """Accounts and addresses with recent failed sign-ins. Deleting a row lifts its refusal
    at once (`manage.py signin_unlock` does the same from a shell)."""

    list_display = ("kind", "subject", "failures", "last_failed_at", "refused_for")
    list_filter = ("kind",)
    search_fields = ("=subject",)
    ordering = ("-last_failed_at",)

    def has_add_permission(self, request: HttpRequest, obj: SigninFailures | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SigninFailures | None = None) -> bool:
        return False

    @admin.display(description="refused for")
    def refused_for(self, obj: SigninFailures) -> str:
        seconds = wait_seconds(obj, now=timezone.now())
        return f"{seconds:.0f} s" if seconds else "-"


# WsTicket is not registered: its key is a live credential for 30 seconds.
