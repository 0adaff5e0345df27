"""Demo personas for `make run`: alice, bob, carol and an `admin` superuser, with API tokens.

For development databases only: the passwords are fixed and printed. Running it again
creates nothing twice and never overwrites a password someone has changed since.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from rest_framework.authtoken.models import Token


@dataclass(frozen=True, kw_only=True)
class Persona:
    username: str
    display_name: str
    password: str
    is_admin: bool = False


# The demo passwords are public on purpose (README, "Quick start").
DEMO_USERS = (
    Persona(username="alice", display_name="Alice", password="alice-demo-password"),  # noqa: S106
    Persona(username="bob", display_name="Bob", password="bob-demo-password"),  # noqa: S106
    Persona(username="carol", display_name="Carol", password="carol-demo-password"),  # noqa: S106
    Persona(username="admin", display_name="Admin", password="admin-demo-password", is_admin=True),  # noqa: S106
)


@dataclass(frozen=True, kw_only=True)
class DemoLogin:
    persona: Persona
    user_id: int
    token: str
    created: bool
    password_works: bool


def demo_user_ensure(persona: Persona, *, reset_password: bool = False) -> DemoLogin:
    """Create the persona (with its password) if missing, and its API token if missing.

    An existing user keeps its password unless reset_password is set.
    """
    User = get_user_model()
    with transaction.atomic():
        user, created = User.objects.get_or_create(
            username=persona.username,
            defaults={
                "display_name": persona.display_name,
                "email": f"{persona.username}@example.com",
                "is_staff": persona.is_admin,
                "is_superuser": persona.is_admin,
            },
        )
        if created or reset_password:
            user.set_password(persona.password)
            user.save(update_fields=["password"])
        token, _ = Token.objects.get_or_create(user=user)
    return DemoLogin(
        persona=persona,
        user_id=user.pk,
        token=token.key,
        created=created,
        password_works=user.check_password(persona.password),
    )


class Command(BaseCommand):
    help = "Create the demo users alice, bob, carol and admin (idempotent) and print their logins and tokens."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where the server listens, for the printed examples (default: %(default)s).",
        )
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="Set the demo passwords again on users that already exist.",
        )
        parser.add_argument("--quiet", action="store_true", help="Create the users, print nothing.")

    def handle(self, *args: Any, base_url: str, reset_passwords: bool, quiet: bool, **options: Any) -> None:
        logins = [demo_user_ensure(persona, reset_password=reset_passwords) for persona in DEMO_USERS]
        if not quiet:
            self.stdout.write(self.render(logins, base_url.rstrip("/")))

    def render(self, logins: list[DemoLogin], base_url: str) -> str:
        ws_url = "ws" + base_url.removeprefix("http") + "/ws/"
        by_name = {login.persona.username: login for login in logins}
        alice, bob = by_name["alice"], by_name["bob"]
        lines = [
            "",
            self.style.MIGRATE_HEADING("IMS demo users (development only: these passwords are public)"),
            f"  {'username':<10}{'user id':<9}{'password':<22}API token",
        ]
        for login in logins:
            password = login.persona.password if login.password_works else "(not the demo one)"
            role = "  superuser" if login.persona.is_admin else ""
            lines.append(f"  {login.persona.username:<10}{login.user_id:<9}{password:<22}{login.token}{role}")
        if not all(login.password_works for login in logins):
            lines.append("  Changed passwords are kept; pass --reset-passwords to set the demo ones again.")
        send_frame = {"type": "send", "client_msg_id": "demo-1", "to": bob.user_id, "msg_type": "text"}
        send = json.dumps({**send_frame, "content": "Hi Bob"}, separators=(",", ":"))
        lines += [
            "",
            self.style.MIGRATE_HEADING("Try it"),
            f"  Admin:          {base_url}/admin/  (admin / {by_name['admin'].persona.password})",
            f"  Home page:      {base_url}/",
            "  WebSocket as bob (leave it open; frames are JSON, one a line):",
            f"    .venv/bin/python -m websockets {shlex.quote(f'{ws_url}?token={bob.token}')}",
            "  WebSocket as alice, then type this line to send bob a message:",
            f"    .venv/bin/python -m websockets {shlex.quote(f'{ws_url}?token={alice.token}')}",
            f"    {send}",
            '  Bob then sees {"type":"message",...}; acknowledge it with {"type":"ack","seqs":[<its seq>]}',
            "  REST as alice:",
            f'    curl -H "Authorization: Token {alice.token}" {base_url}/api/conversations/',
            "",
        ]
        return "\n".join(lines)
