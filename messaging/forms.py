"""The login page's and the admin's sign-in forms: Django's own, behind the sign-in guard
(messaging.services.signin). imsproject.urls puts them in place."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from messaging.errors import RateLimited
from messaging.services.signin import signin_guard


class SigninForm(AuthenticationForm):
    """The login page's form (/login/). Django's password check (authenticate(), then
    confirm_login_allowed()) runs only when the account and the address may try again, and
    its outcome is counted either way."""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or not password:
            return super().clean()  # no password check: nothing to count
        remote_addr = self.request.META.get("REMOTE_ADDR") if self.request is not None else None
        try:
            with signin_guard(username=username, remote_addr=remote_addr):
                return super().clean()
        except RateLimited as refused:
            raise ValidationError(refused.detail, code="too_many_attempts") from None


class AdminSigninForm(SigninForm, AdminAuthenticationForm):
    """The admin's login form (/admin/login/). Its refusal of a non-staff account with the
    right password counts as a failure: Django words it as a wrong password, and the
    answers after it must not tell the two apart either."""
