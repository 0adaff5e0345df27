"""`make bench`: IMS beside a stock-Channels baseline, measured in the same run.

Scenarios (DESIGN.md, performance targets), each beside the stock-Channels baseline:
  * 1:1 messages at a fixed offered rate: delivered per second, p50/p99 latency.
  * 1:1 messages as fast as the server answers (closed loop).
  * replay of N pending items on connect, beside a plain indexed read of them.
  * at each of --sizes N: N idle connections (memory per connection), a broadcast of one
    notification to those N online users (time to the last), and a reconnect storm of
    those N clients (time until all resumed, failed handshakes).
  * memory across --cycles connect/disconnect cycles.
The 1:1 pairs and the connections of the size scenarios are spread over --servers
processes of each server (the many-connection load generator over processes of its own:
bench/swarm.py).

Runs on whatever DATABASE_URL / REDIS_URL say; without them, on a scratch SQLite file
in bench/.var and the in-memory channel layer. Never point it at a database you care
about: it creates users and messages.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import sys
import time
from pathlib import Path

SET_UP_BATCH = 1000
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def configure_environment() -> dict[str, str]:
    """The environment shared by this process and the servers it starts."""
    env = {"DJANGO_SETTINGS_MODULE": "imsproject.settings", "DJANGO_DEBUG": "0"}
    if not os.environ.get("DATABASE_URL"):
        var = HERE / ".var"
        shutil.rmtree(var, ignore_errors=True)
        var.mkdir()
        env["IMS_VAR_DIR"] = str(var)
    # The benchmark measures delivery, not the per-connection send limiter.
    env.update(IMS_SEND_RATE_PER_SECOND="1000000", IMS_SEND_BURST="1000000", IMS_HEARTBEAT_SECONDS="600")
    os.environ.update(env)
    return env


def create_users(count: int, prefix: str) -> list[tuple[int, str]]:
    """`count` users with API tokens, made in bulk: [(id, token)]."""
    from rest_framework.authtoken.models import Token

    from messaging.models import User

    users = User.objects.bulk_create(
        [User(username=f"{prefix}{n}", password="!") for n in range(count)]  # noqa: S106
    )
    if users[0].pk is None:  # backends that cannot return ids from a bulk insert
        users = list(User.objects.filter(username__startswith=prefix).order_by("pk"))
    tokens = Token.objects.bulk_create([Token(user=user, key=Token.generate_key()) for user in users])
    return [(user.pk, token.key) for user, token in zip(users, tokens, strict=True)]


def store_pending(*, sender_id: int, receiver_id: int, count: int) -> None:
    """`count` messages pending for the receiver (set-up, not measured), stored through the
    service production uses, a thousand messages a transaction."""
    from messaging.services.messages import SendCommand, messages_send

    for start in range(0, count, SET_UP_BATCH):
        commands = [
            SendCommand(
                sender_id=sender_id,
                to=receiver_id,
                content=f"pending message {n}",
                client_msg_id=f"replay-{receiver_id}-{n}",
            )
            for n in range(start, min(start + SET_UP_BATCH, count))
        ]
        failures = [outcome for outcome in messages_send(commands=commands) if isinstance(outcome, Exception)]
        if failures:
            raise RuntimeError(f"setting up the replay failed: {failures[0]}")


def broadcast_notification(user_ids: list[int]) -> None:
    """One notification to every user, stored and published as the notifications app does."""
    from django.utils import timezone

    from messaging.api import NewItem, StreamEntry, append_to_streams

    now = timezone.now()
    data = {
        "id": f"bench-{time.monotonic_ns()}",
        "title": "Maintenance tonight",
        "content": "The VPN is down from 22:00 to 23:00.",
        "extra": {},
        "priority": "P1",
        "category": "announcement",
        "created_at": now.isoformat(),
    }
    append_to_streams(
        entries=[
            StreamEntry(
                recipients=[NewItem(user_id=uid, pending=True) for uid in user_ids],
                kind="notification",
                body={"data": data},
                created_at=now,
                priority="P1",
            )
        ]
    )


def indexed_read_seconds(user_id: int) -> float:
    from messaging.models import StreamItem

    started = time.monotonic()
    rows = list(
        StreamItem.objects.filter(user_id=user_id, seq__gt=0)
        .select_related("message")
        .order_by("seq")
        .values_list("seq", "message__content")
    )
    assert rows
    return time.monotonic() - started


def rss_kib(servers: list) -> int:
    return sum(server.rss_kib() for server in servers)


async def one_to_one(args: argparse.Namespace, ims: list, base: list, users: list) -> dict:
    """The pairs' users alternate over the server processes: with more than one, every
    message crosses from one process to another through Redis."""
    from bench import loadgen

    token = dict(users)
    server_of = {uid: n % len(ims) for n, (uid, _) in enumerate(users)}
    pair_ids = [(users[2 * i][0], users[2 * i + 1][0]) for i in range(args.pairs)]
    ims_url = lambda uid: ims[server_of[uid]].url(f"token={token[uid]}")  # noqa: E731
    base_url = lambda uid: base[server_of[uid]].url(f"user={uid}")  # noqa: E731
    results: dict = {}
    for name, rate in (("rate_low", args.rate / 4), ("rate", args.rate)):
        print(f"* {rate:g} messages/s for {args.seconds} s ...", flush=True)
        results[name] = {
            "ims": await loadgen.pairs_at_rate(
                ims_url, pair_ids, rate=rate, seconds=args.seconds, ims=True, run=f"{name}-i"
            ),
            "baseline": await loadgen.pairs_at_rate(
                base_url, pair_ids, rate=rate, seconds=args.seconds, ims=False, run=f"{name}-b"
            ),
        }
    print(f"* closed loop, window {args.window}, {args.seconds} s ...", flush=True)
    results["max"] = {
        "ims": await loadgen.pairs_closed_loop(
            ims_url, pair_ids, window=args.window, seconds=args.seconds, ims=True, run="max-i"
        ),
        "baseline": await loadgen.pairs_closed_loop(
            base_url, pair_ids, window=args.window, seconds=args.seconds, ims=False, run="max-b"
        ),
    }
    return results


def at_size(size: int, *, ims: bool, servers: list, urls: list[str], user_ids: list[int], trigger) -> dict:
    """N idle connections, a broadcast to their N users, a reconnect storm of them."""
    from bench.swarm import Swarm

    swarm = Swarm.for_connections(size)
    try:
        before = rss_kib(servers)
        opened = swarm.open(urls, ims=ims)
        time.sleep(3)
        after = rss_kib(servers)
        result: dict = {
            "idle": {
                "connections": opened["opened"],
                "failed": opened["failed"],
                "kib_per_connection": round((after - before) / max(opened["opened"], 1), 1),
                "rss_after_mib": round(after / 1024, 1),
            }
        }
        time.sleep(1)
        swarm.reset()
        swarm.expect_start("notification", opened["opened"])
        started = time.monotonic()
        trigger(user_ids)
        returned = time.monotonic()  # IMS: stored and committed; baseline: the request sent
        arrived = swarm.expect_collect()
        result["broadcast"] = {
            "recipients": opened["opened"],
            "received": arrived["received"],
            "seconds": round(arrived["last_at"] - started, 3) if arrived["last_at"] else None,
            "call_seconds": round(returned - started, 3),
        }
        time.sleep(2)  # the acks of the broadcast
        result["storm"] = swarm.storm()
        swarm.close()
    finally:
        swarm.exit()
    return result


def cycles(count: int, *, ims: bool, servers: list, urls: list[str]) -> dict:
    """Memory across `count` connect/disconnect cycles: after a tenth of them (warm) and at the end."""
    from bench.swarm import Swarm

    swarm = Swarm(2)
    try:
        warm = max(count // 10, 1)
        swarm.cycles([urls[n % len(urls)] for n in range(warm)], ims=ims)
        time.sleep(2)
        before = rss_kib(servers)
        started = time.monotonic()
        done = swarm.cycles([urls[n % len(urls)] for n in range(count)], ims=ims)
        seconds = time.monotonic() - started
        time.sleep(2)
        after = rss_kib(servers)
    finally:
        swarm.exit()
    return {
        **done,
        "per_second": round(done["cycles"] / seconds, 1),
        "rss_warm_mib": round(before / 1024, 1),
        "rss_end_mib": round(after / 1024, 1),
        "growth_percent": round(100 * (after - before) / before, 1),
    }


def baseline_broadcaster(base):
    """The baseline broadcasts from inside its server: one group_send per user."""
    import asyncio as _asyncio

    from websockets.asyncio.client import connect as ws_connect

    def trigger(user_ids: list[int]) -> None:
        async def go() -> None:
            async with ws_connect(base.url("user=0"), max_size=None) as ws:
                frame = {"type": "broadcast", "to": user_ids, "data": {"title": "Maintenance tonight"}}
                await ws.send(json.dumps(frame))
                await _asyncio.sleep(0.2)

        _asyncio.run(go())

    return trigger


def run_all(
    args: argparse.Namespace, env: dict[str, str], users: list, replays: dict, size_users: list
) -> dict:
    from bench.servers import Server

    logs = HERE / ".var" if (HERE / ".var").exists() else Path("/tmp")  # noqa: S108
    results: dict = {
        "settings": vars(args),
        "database": os.environ.get("DATABASE_URL", "sqlite (bench/.var)"),
        "channel_layer": "redis" if os.environ.get("REDIS_URL") else "in-memory",
    }
    servers_count = args.servers if os.environ.get("REDIS_URL") else 1
    results["servers"] = servers_count
    ims = [
        Server("imsproject.asgi:application", env, logs / f"ims-server-{n}.log") for n in range(servers_count)
    ]
    base = [
        Server("bench.baseline_asgi:application", env, logs / f"baseline-server-{n}.log")
        for n in range(servers_count)
    ]
    try:
        if not args.skip_messages:
            results.update(asyncio.run(one_to_one(args, ims, base, users)))
        from bench import loadgen

        results["replay"] = {}
        for count, (uid, key) in replays.items():
            print(f"* replay of {count} pending items ...", flush=True)
            results["replay"][count] = {
                "ims": asyncio.run(loadgen.drain_replay(ims[0].url(f"token={key}"))),
                "indexed_read_seconds": round(indexed_read_seconds(uid), 3),
            }
        results["sizes"] = {}
        for size in args.sizes:
            chosen = size_users[:size]
            ims_urls = [ims[n % len(ims)].url(f"token={key}") for n, (_, key) in enumerate(chosen)]
            base_urls = [base[n % len(base)].url(f"user={uid}") for n, (uid, _) in enumerate(chosen)]
            ids = [uid for uid, _ in chosen]
            print(f"* {size} connections: idle memory, broadcast, reconnect storm ...", flush=True)
            results["sizes"][size] = {
                "ims": at_size(
                    size, ims=True, servers=ims, urls=ims_urls, user_ids=ids, trigger=broadcast_notification
                ),
                "baseline": at_size(
                    size,
                    ims=False,
                    servers=base,
                    urls=base_urls,
                    user_ids=ids,
                    trigger=baseline_broadcaster(base[0]),
                ),
            }
            print(json.dumps(results["sizes"][size]), flush=True)
    finally:
        for server in ims + base:
            server.stop()
    if args.cycles:
        # Fresh servers: the memory freed after the size scenarios would hide any growth.
        print(f"* {args.cycles} connect/disconnect cycles ...", flush=True)
        few = size_users[:200]
        ims = [Server("imsproject.asgi:application", env, logs / "ims-cycles.log")]
        base = [Server("bench.baseline_asgi:application", env, logs / "baseline-cycles.log")]
        try:
            results["cycles"] = {
                "ims": cycles(
                    args.cycles, ims=True, servers=ims, urls=[ims[0].url(f"token={k}") for _, k in few]
                ),
                "baseline": cycles(
                    args.cycles, ims=False, servers=base, urls=[base[0].url(f"user={u}") for u, _ in few]
                ),
            }
        finally:
            ims[0].stop()
            base[0].stop()
    return results


def ratio(ims: float | None, base: float | None, *, higher_is_better: bool) -> str:
    if not ims or not base:
        return "n/a"
    value = ims / base if higher_is_better else base / ims
    return f"{value:.2f}x"


def report(results: dict) -> str:
    lines = [
        f"database: {results['database']}, channel layer: {results['channel_layer']}, "
        f"server processes of each kind: {results['servers']}",
        "",
        "| scenario | IMS | stock Channels baseline | IMS vs baseline |",
        "| --- | --- | --- | --- |",
    ]
    cell = lambda r: f"{r['per_second']}/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, lost {r['lost']}"  # noqa: E731
    for name in ("rate_low", "rate", "max"):
        if name not in results:
            continue
        ims, base = results[name]["ims"], results[name]["baseline"]
        label = "closed loop" if name == "max" else f"{ims['offered_per_second']:g}/s offered"
        lines.append(
            f"| 1:1 messages, {label} | {cell(ims)} | {cell(base)} | "
            f"{ratio(ims['per_second'], base['per_second'], higher_is_better=True)} rate |"
        )
    for replay in results.get("replay", {}).values():
        drained = replay["ims"]
        lines.append(
            f"| replay of {drained['items']} pending items | {drained['seconds']} s to the last item "
            f"| ({replay['indexed_read_seconds']} s to read them by index) | |"
        )
    for size, pair in results.get("sizes", {}).items():
        ims, base = pair["ims"], pair["baseline"]
        ii, bi = ims["idle"], base["idle"]
        lines.append(
            f"| {size} idle connections | {ii['kib_per_connection']} KiB each ({ii['failed']} failed) "
            f"| {bi['kib_per_connection']} KiB each ({bi['failed']} failed) "
            f"| {ratio(ii['kib_per_connection'], bi['kib_per_connection'], higher_is_better=False)} memory |"
        )
        ib, bb = ims["broadcast"], base["broadcast"]
        lines.append(
            f"| broadcast to {size} online users | last after {ib['seconds']} s ({ib['received']} received; "
            f"stored in {ib.get('call_seconds')} s) "
            f"| last after {bb['seconds']} s ({bb['received']} received) "
            f"| {ratio(ib['seconds'], bb['seconds'], higher_is_better=False)} faster |"
        )
        ist, bst = ims["storm"], base["storm"]
        lines.append(
            f"| reconnect storm of {size} | all resumed in {ist['seconds']} s, {ist['failed']} failed "
            f"| all open in {bst['seconds']} s, {bst['failed']} failed "
            f"| {ratio(ist['seconds'], bst['seconds'], higher_is_better=False)} |"
        )
    if "cycles" in results:
        ims, base = results["cycles"]["ims"], results["cycles"]["baseline"]
        fmt = lambda r: (  # noqa: E731
            f"{r['cycles']} cycles ({r['failed']} failed, {r['per_second']}/s), RSS {r['rss_warm_mib']} → "
            f"{r['rss_end_mib']} MiB ({r['growth_percent']:+} %)"
        )
        lines.append(f"| connect/disconnect cycles | {fmt(ims)} | {fmt(base)} | |")
    return "\n".join(lines)


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=50, help="sender/receiver pairs")
    parser.add_argument("--rate", type=float, default=1000, help="offered messages a second")
    parser.add_argument("--seconds", type=float, default=8, help="length of each load run")
    parser.add_argument("--window", type=int, default=4, help="unanswered sends per sender, closed loop")
    parser.add_argument(
        "--replay", type=sizes, default=[1000, 10_000], help="pending items to replay, e.g. 1000,10000"
    )
    parser.add_argument(
        "--sizes",
        type=sizes,
        default=[1000, 10_000],
        help="connections for idle/broadcast/storm, e.g. 1000,10000,19000",
    )
    parser.add_argument("--servers", type=int, default=1, help="server processes of each kind (Redis only)")
    parser.add_argument(
        "--cycles",
        type=int,
        default=100_000,
        help="connect/disconnect cycles for the memory check (after a warm-up tenth; 0 to skip)",
    )
    parser.add_argument("--skip-messages", action="store_true", help="leave out the 1:1 message scenarios")
    args = parser.parse_args()

    env = configure_environment()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    stamp = int(time.time())
    users = create_users(args.pairs * 2 + 2 + len(args.replay), prefix=f"bench{stamp}-")
    size_users = create_users(max(args.sizes or [0]) + 1, prefix=f"idle{stamp}-")
    replays = {}
    for n, count in enumerate(args.replay):
        receiver = users[-1 - n]
        store_pending(sender_id=users[0][0], receiver_id=receiver[0], count=count)
        replays[count] = receiver
    # This process stores the broadcasts, standing in for the application's own processes
    # (daphne, Celery), which freeze their startup objects (imsproject.asgi, .celery).
    gc.freeze()
    results = run_all(args, env, users, replays, size_users)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    print()
    print(report(results))
    print(f"\n(raw figures in {out / 'latest.json'})")


if __name__ == "__main__":
    main()
