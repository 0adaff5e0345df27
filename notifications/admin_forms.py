"""The admin's "send an announcement" form: shape only; notification_send decides the rest."""

from __future__ import annotations

from typing import Any

from django import forms

from messaging.api import Priority
from messaging.models import User
from notifications.models import Category

EVERYONE = "all"
CHOSEN = "chosen"


class AnnouncementForm(forms.Form):
    title = forms.CharField(max_length=200)
    content = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.P3)
    category = forms.ChoiceField(choices=Category.choices, initial=Category.ANNOUNCEMENT)
    audience = forms.ChoiceField(
        choices=[(EVERYONE, "Every active user"), (CHOSEN, "These users")],
        initial=EVERYONE,
        widget=forms.RadioSelect,
    )
    usernames = forms.CharField(
        required=False,
        help_text="With “These users”: usernames separated by commas or spaces.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("audience") != CHOSEN:
            data["recipients"] = EVERYONE
            return data
        names = set((data.get("usernames") or "").replace(",", " ").split())
        if not names:
            raise forms.ValidationError("Name at least one user, or choose every active user.")
        found = dict(User.objects.filter(username__in=names, is_active=True).values_list("username", "pk"))
        unknown = sorted(names - found.keys())
        if unknown:
            raise forms.ValidationError(f"No active user named: {', '.join(unknown)}")
        data["recipients"] = sorted(found.values())
        return data
