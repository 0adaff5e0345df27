"""Push dispatch through the Web Push provider, against a local push endpoint.

Figures (issue: notifications and third-party push):
  * pushes a second: N users offline, each with one Web Push subscription and one item
    pending past IMS_PUSH_GRACE_SECONDS; the dispatcher claims them all and the push jobs
    run as Celery's `send_push` would, `--workers` at a time (threads in this process,
    like a worker's pool); beside it the provider's floor, the same number of raw
    pywebpush calls to the same endpoint.
  * dispatch latency: from the moment an item is due (pending past its grace) to the
    push request reaching the endpoint, p50 / p99, for that burst and for single P0
    items sent one at a time (a P0's commit enqueues the dispatcher at once).

The endpoint is a local HTTP server that answers 201 like a push service and records
when each request arrived. Run by `make bench` after bench/run.py, or alone:
`.venv/bin/python bench/push.py --users 500`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


class Endpoint:
    """A push service on 127.0.0.1: 201 to every POST, arrival times kept by path."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                endpoint.arrivals.setdefault(self.path, time.time())
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(201)
                self.send_header("Location", f"{self.path}/m")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def configure(var: Path) -> None:
    var.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="imsproject.settings",
        IMS_PUSH_GRACE_SECONDS="0",
        # The endpoint is a local server, which the default endpoint policy refuses.
        IMS_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS="1",
        IMS_WEBPUSH_ALLOWED_HOSTS="127.0.0.1",
        # Jobs run in this process; what the dispatcher enqueues goes nowhere.
        CELERY_BROKER_URL="memory://",
    )
    if not os.environ.get("DATABASE_URL"):
        os.environ["IMS_VAR_DIR"] = str(var)
    import django

    django.setup()
    from django.core.management import call_command

    from notifications import vapid

    key_path = var / "bench_vapid.pem"
    vapid.write_private_key(key=vapid.generate_private_key(), path=key_path)
    from django.conf import settings

    settings.IMS_VAPID_PRIVATE_KEY = str(key_path)
    call_command("migrate", verbosity=0)


def subscribers(endpoint: Endpoint, count: int, prefix: str) -> list[int]:
    """`count` users, each with a Web Push subscription at the local endpoint."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from messaging.models import User
    from notifications import vapid
    from notifications.services.devices import device_register

    users = User.objects.bulk_create([User(username=f"{prefix}{n}", password="!") for n in range(count)])  # noqa: S106
    if users[0].pk is None:
        users = list(User.objects.filter(username__startswith=prefix).order_by("pk"))
    keys = {
        "p256dh": vapid.public_key_b64url(ec.generate_private_key(ec.SECP256R1())),
        "auth": vapid.b64url_encode(os.urandom(16)),
    }
    for user in users:
        device_register(
            user_id=user.pk,
            kind="webpush",
            subscription={"endpoint": f"{endpoint.url}/push/{user.pk}", "keys": keys},
        )
    return [user.pk for user in users]


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50_ms": round(at(0.5) * 1000, 1), "p99_ms": round(at(0.99) * 1000, 1)}


def run_jobs(*, workers: int) -> int:
    from notifications.models import PushJob
    from notifications.services.push import push_job_send

    job_ids = list(PushJob.objects.filter(state="queued").values_list("pk", flat=True))

    def send(job_id: int) -> None:
        from django.db import connection

        push_job_send(job_id=job_id)
        connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(send, job_ids))
    return len(job_ids)


def burst(endpoint: Endpoint, *, users: int, workers: int, prefix: str) -> dict:
    from notifications.api import send_notification
    from notifications.services.dispatch import push_dispatch

    ids = subscribers(endpoint, users, prefix)
    send_notification(
        ids, "Expense report approved", "Your report was approved.", priority="P1", category="approval"
    )
    due = time.time()  # grace 0: every item is due now
    push_dispatch(now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    sent = run_jobs(workers=workers)
    arrived = [endpoint.arrivals[f"/push/{uid}"] for uid in ids if f"/push/{uid}" in endpoint.arrivals]
    elapsed = max(arrived) - due
    return {
        "users": users,
        "jobs": sent,
        "pushed": len(arrived),
        "per_second": round(len(arrived) / elapsed, 1),
        **percentiles([at - due for at in arrived]),
    }


def p0_one_at_a_time(endpoint: Endpoint, *, count: int, prefix: str) -> dict:
    from notifications.api import send_notification
    from notifications.services.dispatch import push_dispatch

    ids = subscribers(endpoint, count, prefix)
    latencies = []
    for uid in ids:
        due = time.time()
        send_notification([uid], "Disk full", "db-1 at 99 %", priority="P0", category="alert")
        push_dispatch()  # the task a P0's commit enqueues, run here as a worker would
        run_jobs(workers=1)
        latencies.append(endpoint.arrivals[f"/push/{uid}"] - due)
    return {"items": count, **percentiles(latencies)}


def provider_floor(endpoint: Endpoint, *, pushes: int, workers: int) -> dict:
    """Raw pywebpush to the same endpoint: what the provider costs without IMS around it."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from django.conf import settings
    from pywebpush import webpush

    from notifications import vapid

    keys = {
        "p256dh": vapid.public_key_b64url(ec.generate_private_key(ec.SECP256R1())),
        "auth": vapid.b64url_encode(os.urandom(16)),
    }
    body = json.dumps({"type": "notification", "data": {"title": "Expense report approved"}})

    def push(n: int) -> None:
        webpush(
            {"endpoint": f"{endpoint.url}/raw/{n}", "keys": keys},
            data=body,
            vapid_private_key=settings.IMS_VAPID_PRIVATE_KEY,
            vapid_claims={"sub": "mailto:bench@localhost"},
            ttl=60,
        )

    started = time.time()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(push, range(pushes)))
    return {"pushes": pushes, "per_second": round(pushes / (time.time() - started), 1)}


def report(results: dict) -> str:
    b, p0, floor = results["burst"], results["p0"], results["floor"]
    return "\n".join(
        [
            f"database: {results['database']}, {results['workers']} push workers",
            "",
            "| scenario | IMS | raw pywebpush (provider floor) |",
            "| --- | --- | --- |",
            f"| {b['users']} pending items past grace, one Web Push each | {b['per_second']}/s, "
            f"due → endpoint p50 {b['p50_ms']} ms, p99 {b['p99_ms']} ms, pushed {b['pushed']}/{b['users']} "
            f"| {floor['per_second']}/s (IMS at {round(b['per_second'] / floor['per_second'], 2)} of it) |",
            f"| {p0['items']} P0 items one at a time | stored → endpoint p50 {p0['p50_ms']} ms, "
            f"p99 {p0['p99_ms']} ms | |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=500, help="offline users with an item due")
    parser.add_argument("--p0", type=int, default=50, help="P0 items sent one at a time")
    parser.add_argument("--workers", type=int, default=2, help="push jobs at a time (a worker's pool)")
    args = parser.parse_args()
    configure(HERE / ".var-push")
    endpoint = Endpoint()
    stamp = int(time.time())
    results = {
        "database": os.environ.get("DATABASE_URL", "sqlite (bench/.var-push)"),
        "workers": args.workers,
        "burst": burst(endpoint, users=args.users, workers=args.workers, prefix=f"push{stamp}-"),
        "p0": p0_one_at_a_time(endpoint, count=args.p0, prefix=f"p0{stamp}-"),
        "floor": provider_floor(endpoint, pushes=args.users, workers=args.workers),
    }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "push.json").write_text(json.dumps(results, indent=2))
    print(report(results))
    print(f"\n(raw figures in {out / 'push.json'})")


if __name__ == "__main__":
    main()
