"""`manage.py vapid_keys generate [--write [PATH]] [--keep-existing]` and `manage.py vapid_keys public`.

`generate` makes a new P-256 key pair. Without --write it prints the private key (for
IMS_VAPID_PRIVATE_KEY) and the public key; with --write it stores the private key as a
PEM file (by default <IMS_VAR_DIR>/vapid_private.pem, the file used when the setting is
unset) and prints only the public key. An existing key file is never replaced: browsers'
subscriptions are bound to it. `public` prints the key browsers subscribe with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications import vapid


class Command(BaseCommand):
    help = "Generate a VAPID key pair for Web Push, or print the public key in use."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        generate = actions.add_parser("generate", help="make a new key pair")
        generate.add_argument(
            "--write",
            nargs="?",
            const="",
            default=None,
            metavar="PATH",
            help=f"store the private key as PEM at PATH (default <IMS_VAR_DIR>/{vapid.DEFAULT_KEY_FILENAME})",
        )
        generate.add_argument(
            "--keep-existing",
            action="store_true",
            help="when a key is configured or the file exists, leave it and succeed (what `make run` does)",
        )
        actions.add_parser("public", help="print the application server key browsers subscribe with")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "public":
            self._public()
        else:
            self._generate(write=options["write"], keep_existing=options["keep_existing"])

    def _public(self) -> None:
        try:
            key = vapid.application_server_key()
        except vapid.VapidKeyError as exc:
            raise CommandError(str(exc)) from None
        if key is None:
            raise CommandError("no VAPID key: set IMS_VAPID_PRIVATE_KEY or run `vapid_keys generate --write`")
        self.stdout.write(key)

    def _generate(self, *, write: str | None, keep_existing: bool) -> None:
        if write is None:
            key = vapid.generate_private_key()
            self.stdout.write(f"IMS_VAPID_PRIVATE_KEY={vapid.private_key_b64url(key)}")
            self.stdout.write(f"IMS_VAPID_PUBLIC_KEY={vapid.public_key_b64url(key)}")
            return
        if not write and keep_existing and settings.IMS_VAPID_PRIVATE_KEY:
            self.stdout.write("IMS_VAPID_PRIVATE_KEY is set; no key file needed")
            return
        path = Path(write) if write else vapid.default_key_path()
        if path.exists():
            if keep_existing:
                self.stdout.write(f"VAPID key {path} exists; kept")
                return
            raise CommandError(f"{path} exists; subscriptions are bound to it, so it is not replaced")
        key = vapid.generate_private_key()
        try:
            vapid.write_private_key(key=key, path=path)
        except FileExistsError:
            # Another process wrote it between the check and the write: keep theirs.
            if keep_existing:
                return
            raise CommandError(
                f"{path} exists; subscriptions are bound to it, so it is not replaced"
            ) from None
        self.stdout.write(f"VAPID private key written to {path}")
        self.stdout.write(f"public key: {vapid.public_key_b64url(key)}")
