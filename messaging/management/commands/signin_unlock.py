"""Lift a sign-in refusal at once: `manage.py signin_unlock alice`, `--address 203.0.113.7`.

For the operator whose own account is locked out of the admin, or a user who cannot wait
IMS_SIGNIN_LOCKOUT_SECONDS.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from messaging.services.signin import signin_failures_forget


class Command(BaseCommand):
    help = "Forget the failed sign-ins of an account (the username as typed) and/or a client address."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username", nargs="?", help="the account, as people type its username")
        parser.add_argument("--address", help="a client address (an IPv6 address unlocks its /64)")

    def handle(
        self, *args: Any, username: str | None = None, address: str | None = None, **options: Any
    ) -> None:
        if username is None and address is None:
            raise CommandError("give a username, --address, or both")
        forgotten = signin_failures_forget(username=username, remote_addr=address)
        self.stdout.write(f"forgot {forgotten} record(s) of failed sign-ins")
