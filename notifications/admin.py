"""The Django admin of notifications: notifications with recipient and read counts, devices,
push jobs and attempts (with a retry action for failed ones), expiry runs, and which push
providers are configured. Staff only, as the admin always is, and each page and action
only with its Django model permission, like every other model: viewing push jobs and
attempts needs `view_pushjob` / `view_pushattempt`, retrying failed pushes `retry_pushjob`.

Push records are the history of what happened on the wire: read-only here. A device may be
renamed or switched off, never re-pointed (its address is its identity).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from messaging.api import ReadOnlyAdminMixin
from messaging.errors import IMSError
from messaging.models import StreamItem
from notifications.admin_forms import AnnouncementForm
from notifications.models import Device, ExpiryRun, Notification, PushAttempt, PushJob
from notifications.models.push import RETRY_PERMISSION
from notifications.providers import all_providers
from notifications.services.dispatch import push_jobs_retry
from notifications.services.notifications import notification_send


def read_counts(notification_ids: list[int]) -> Counter:
    """How many recipients read each notification: one query for a whole page."""
    rows = (
        StreamItem.objects.filter(
            kind=StreamItem.Kind.NOTIFICATION, payload__data__id__in=notification_ids, read_at__isnull=False
        )
        .values_list("payload__data__id", flat=True)
        .iterator()
    )
    return Counter(rows)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Sent notifications are history (read-only); "Add" sends a new one, to everyone or to
    chosen users, through notification_send like any other app."""

    list_display = ("id", "title", "priority", "category", "sender", "recipient_count", "reads", "created_at")
    list_filter = ("priority", "category")
    search_fields = ("title",)
    readonly_fields = ("reads",)
    show_full_result_count = False

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        counts = read_counts([notification.pk for notification in changelist.result_list])
        for notification in changelist.result_list:
            notification.read_count = counts.get(notification.pk, 0)
        return changelist

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.has_perm("notifications.add_notification")

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = AnnouncementForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                notification = notification_send(
                    recipients=form.cleaned_data["recipients"],
                    title=form.cleaned_data["title"],
                    content=form.cleaned_data["content"],
                    priority=form.cleaned_data["priority"],
                    category=form.cleaned_data["category"],
                    sender_user_id=request.user.pk,
                )
            except IMSError as error:
                form.add_error(error.field if error.field in form.fields else None, error.detail)
            else:
                self.message_user(request, f"Sent to {notification.recipient_count} users.", messages.SUCCESS)
                return redirect("admin:notifications_notification_change", notification.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Send an announcement",
            "form": form,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/notifications/notification/send.html", context)

    @admin.display(description="read by")
    def reads(self, obj: Notification) -> int:
        if not hasattr(obj, "read_count"):
            return read_counts([obj.pk]).get(obj.pk, 0)
        return obj.read_count

    @admin.display(description="sender")
    def sender(self, obj: Notification) -> str:
        return obj.sender_service or str(obj.sender_user or "")


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "kind",
        "name",
        "active",
        "deactivated_reason",
        "created_at",
        "last_used_at",
    )
    list_filter = ("kind", "active")
    search_fields = ("user__username", "name")
    fields = ("user", "kind", "name", "address", "active", "deactivated_reason", "created_at", "last_used_at")
    readonly_fields = ("user", "kind", "address", "deactivated_reason", "created_at", "last_used_at")
    list_select_related = ("user",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # devices register themselves (POST /api/devices/)


class ProvidersNoteMixin(admin.ModelAdmin):
    """Says on the list which providers are configured, so a failure's cause is one glance away."""

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        for provider in all_providers():
            level = messages.INFO if provider.is_configured() else messages.WARNING
            self.message_user(request, provider.describe_configuration(), level=level)
        return super().changelist_view(request, extra_context)


@admin.action(description="Retry the selected failed pushes", permissions=["retry"])
def retry_failed(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    job_ids = (
        queryset.values_list("pk", flat=True)
        if queryset.model is PushJob
        else queryset.exclude(job=None).values_list("job_id", flat=True)
    )
    count = push_jobs_retry(job_ids=list(job_ids))
    modeladmin.message_user(request, f"{count} failed push(es) queued again; the others had not failed.")


class RetryPushMixin(admin.ModelAdmin):
    """The retry action, for holders of notifications.retry_pushjob (rows stay read-only)."""

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"notifications.{RETRY_PERMISSION}")


@admin.register(PushJob)
class PushJobAdmin(RetryPushMixin, ProvidersNoteMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "key",
        "user",
        "device",
        "priority",
        "category",
        "rung",
        "state",
        "tries",
        "created_at",
    )
    list_filter = ("state", "priority", "rung")
    list_select_related = ("user", "device")
    actions = [retry_failed]
    show_full_result_count = False


@admin.register(PushAttempt)
class PushAttemptAdmin(RetryPushMixin, ProvidersNoteMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "provider",
        "outcome",
        "status_code",
        "rung",
        "latency_ms",
        "device",
        "error",
    )
    list_filter = ("outcome", "provider", "rung")
    list_select_related = ("device",)
    actions = [retry_failed]
    show_full_result_count = False


@admin.register(ExpiryRun)
class ExpiryRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("ran_at", "pending_expired", "items_deleted")
