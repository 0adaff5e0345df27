"""The sign-in guard: wrong passwords for one account or from one address are slowed, then
refused for a while, on every path that turns a password into credentials (the login page,
the admin's login, POST /api/auth/token/).

Each password check is counted as a failure before it runs, in one short transaction that
holds the rows of its account and its address, and is given back when it succeeds. So a
hundred attempts sent at once are counted one by one: none slips past a check whose
failure the others have not recorded yet. Nothing waits in the server: an attempt that
comes too early is refused at once with the seconds left, and its password is never checked.

Accounts are keyed by the username as typed, whether or not the user exists, so unknown and
known usernames get the same answers at every stage. The address is REMOTE_ADDR, the ASGI
scope's client: behind a proxy, daphne fills it from X-Forwarded-For when started with
--proxy-headers. This module never reads that header, which any client can forge.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from messaging.errors import RateLimited
from messaging.models import SigninFailures, User

logger = logging.getLogger(__name__)

Kind = SigninFailures.Kind

# Attempts whose client address is unknown (a unix socket without proxy headers) share one.
UNKNOWN_ADDRESS = "unknown"
SUBJECT_MAX_LENGTH = SigninFailures._meta.get_field("subject").max_length or 255


@dataclass(frozen=True, kw_only=True)
class SigninAttempt:
    """One password check under way, already counted as a failure of its account and address."""

    account: str
    address: str
    account_failures: int
    address_failures: int


def account_key(username: str) -> str:
    """The account failures count against: "Alice " and "alice" are one."""
    return User.normalize_username(username).strip().casefold()[:SUBJECT_MAX_LENGTH]


def address_key(remote_addr: str | None) -> str:
    """The address failures count against. An IPv6 client stands for its /64, which one
    subscriber usually holds whole."""
    if not remote_addr:
        return UNKNOWN_ADDRESS
    try:
        ip = ipaddress.ip_address(remote_addr)
    except ValueError:
        return remote_addr[:SUBJECT_MAX_LENGTH]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def _limits(kind: str) -> tuple[int, int]:
    """(slow after, lock after) failures."""
    if kind == Kind.ACCOUNT:
        return settings.IMS_SIGNIN_ACCOUNT_SLOW_AFTER, settings.IMS_SIGNIN_ACCOUNT_LOCK_AFTER
    return settings.IMS_SIGNIN_ADDRESS_SLOW_AFTER, settings.IMS_SIGNIN_ADDRESS_LOCK_AFTER


def wait_seconds(row: SigninFailures, *, now: dt.datetime) -> float:
    """How long the next password check of this account or address must still wait."""
    slow_after, lock_after = _limits(row.kind)
    if row.failures < slow_after:
        return 0.0
    if row.failures >= lock_after:
        pause = float(settings.IMS_SIGNIN_LOCKOUT_SECONDS)
    else:
        # Growing by one step a failure, not doubling: the address's 25 slowed attempts
        # (50 s the longest wait) then fit in one window, so a patient guesser still meets
        # the lock; doubling would make the waits, not the lock, the limit.
        pause = settings.IMS_SIGNIN_DELAY_SECONDS * (row.failures - slow_after + 1)
    return max(0.0, (row.last_failed_at + dt.timedelta(seconds=pause) - now).total_seconds())


def signin_attempt_start(
    *, username: str, remote_addr: str | None, now: dt.datetime | None = None
) -> SigninAttempt:
    """Count a password check as a failure before it runs; or, when its account or address
    must wait, raise RateLimited with the seconds left (the password is then never checked)."""
    now = now or timezone.now()
    keys: dict[str, str] = {Kind.ACCOUNT: account_key(username), Kind.ADDRESS: address_key(remote_addr)}
    # A plain read first: the attempts refused, most of a flood, write nothing.
    _refuse_if_early(_rows(keys).values(), now=now)
    with transaction.atomic():
        rows = _locked_rows(keys, now=now)
        _refuse_if_early(rows.values(), now=now)
        for row in rows.values():
            if now >= row.window_started_at + dt.timedelta(seconds=settings.IMS_SIGNIN_LOCKOUT_SECONDS):
                row.failures, row.window_started_at = 0, now
            row.failures += 1
            row.last_failed_at = now
            row.save(update_fields=["failures", "window_started_at", "last_failed_at"])
    return SigninAttempt(
        account=keys[Kind.ACCOUNT],
        address=keys[Kind.ADDRESS],
        account_failures=rows[Kind.ACCOUNT].failures,
        address_failures=rows[Kind.ADDRESS].failures,
    )


def signin_attempt_failed(*, attempt: SigninAttempt) -> None:
    """The password was wrong: the attempt stays counted. The one that reaches a lock logs it."""
    for kind, subject, failures in (
        (Kind.ACCOUNT, attempt.account, attempt.account_failures),
        (Kind.ADDRESS, attempt.address, attempt.address_failures),
    ):
        if failures == _limits(kind)[1]:
            logger.warning(
                "sign-in locked for %s %r after %d failed attempts: refused for %d s",
                kind,
                subject,
                failures,
                settings.IMS_SIGNIN_LOCKOUT_SECONDS,
            )


def signin_attempt_succeeded(*, attempt: SigninAttempt) -> None:
    """The password was right: the account's failures are forgotten; the address gets back
    only the attempt it lent, since others behind it (one office NAT) may still be guessing."""
    with transaction.atomic():
        SigninFailures.objects.filter(kind=Kind.ACCOUNT, subject=attempt.account).delete()
        SigninFailures.objects.filter(kind=Kind.ADDRESS, subject=attempt.address, failures__gt=0).update(
            failures=F("failures") - 1
        )


@contextmanager
def signin_guard(*, username: str, remote_addr: str | None) -> Iterator[None]:
    """Around one password check: RateLimited before it when it must wait; the block raising
    counts as a failure, the block ending as a success."""
    attempt = signin_attempt_start(username=username, remote_addr=remote_addr)
    try:
        yield
    except Exception:
        signin_attempt_failed(attempt=attempt)
        raise
    signin_attempt_succeeded(attempt=attempt)


def signin_failures_forget(*, username: str | None = None, remote_addr: str | None = None) -> int:
    """Lift the refusal of an account, an address or both at once (an operator's unlock);
    the number of records forgotten."""
    keys: dict[str, str] = {}
    if username is not None:
        keys[Kind.ACCOUNT] = account_key(username)
    if remote_addr is not None:
        keys[Kind.ADDRESS] = address_key(remote_addr)
    if not keys:
        return 0
    deleted, _ = SigninFailures.objects.filter(_matching(keys)).delete()
    return deleted


def signin_failures_purge(*, now: dt.datetime | None = None) -> int:
    """Delete the records that hold nothing back any more: no wait left, window over."""
    now = now or timezone.now()
    longest_wait_seconds = max(
        settings.IMS_SIGNIN_LOCKOUT_SECONDS,
        settings.IMS_SIGNIN_DELAY_SECONDS
        * max(settings.IMS_SIGNIN_ACCOUNT_LOCK_AFTER, settings.IMS_SIGNIN_ADDRESS_LOCK_AFTER),
    )
    deleted, _ = SigninFailures.objects.filter(
        last_failed_at__lt=now - dt.timedelta(seconds=longest_wait_seconds)
    ).delete()
    return deleted


def _refuse_if_early(rows: Iterable[SigninFailures], *, now: dt.datetime) -> None:
    wait = max((wait_seconds(row, now=now) for row in rows), default=0.0)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        unit = "second" if seconds == 1 else "seconds"
        raise RateLimited(
            f"Too many sign-in attempts. Try again in {seconds} {unit}.", retry_after_seconds=seconds
        )


def _matching(keys: dict[str, str]) -> Q:
    query = Q()
    for kind, subject in keys.items():
        query |= Q(kind=kind, subject=subject)
    return query


def _rows(keys: dict[str, str], *, lock: bool = False) -> dict[str, SigninFailures]:
    # Locked in one order (account before address) by every caller: no deadlock.
    rows = SigninFailures.objects.filter(_matching(keys)).order_by("kind", "subject")
    if lock:
        rows = rows.select_for_update()
    return {row.kind: row for row in rows}


def _locked_rows(keys: dict[str, str], *, now: dt.datetime) -> dict[str, SigninFailures]:
    """The rows of these keys, made when missing, locked until the transaction ends."""
    while True:
        rows = _rows(keys, lock=True)
        missing = [kind for kind in keys if kind not in rows]
        if not missing:
            return rows
        # Another attempt may insert the same row meanwhile (then this one is ignored), and
        # the purge may delete a stale row between here and the next read (then it is
        # inserted again on the next turn, fresh, so the purge cannot take it twice).
        SigninFailures.objects.bulk_create(
            [
                SigninFailures(
                    kind=kind, subject=keys[kind], failures=0, window_started_at=now, last_failed_at=now
                )
                for kind in missing
            ],
            ignore_conflicts=True,
        )
