"""`make bench`: IMS beside a stock-Channels baseline, measured in the same run.

Scenarios (DESIGN.md, performance targets):
  * 1:1 messages at a fixed offered rate: delivered per second, p50/p99 latency.
  * 1:1 messages as fast as the server answers (closed loop).
  * replay of 10,000 pending items on connect, beside a plain indexed read of them.
  * memory per idle connection held by one server process.

Runs on whatever DATABASE_URL / REDIS_URL say; without them, on a scratch SQLite file
in bench/.var and the in-memory channel layer. Never point it at a database you care
about: it creates users and messages.
"""

from __future__ import annotations

import argparse
import asyncio
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
                client_msg_id=f"replay-{n}",
            )
            for n in range(start, min(start + SET_UP_BATCH, count))
        ]
        failures = [outcome for outcome in messages_send(commands=commands) if isinstance(outcome, Exception)]
        if failures:
            raise RuntimeError(f"setting up the replay failed: {failures[0]}")


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


async def idle_memory(server, urls: list[str], *, ims: bool) -> dict[str, float]:
    from bench import loadgen

    warm = await loadgen.hold_idle(urls[:1], ims=ims)
    await asyncio.sleep(1)
    before = server.rss_kib()
    held = await loadgen.hold_idle(urls[1:], ims=ims)
    await asyncio.sleep(2)
    after = server.rss_kib()
    for ws in warm + held:
        await ws.close()
    count = len(held)
    return {
        "connections": count,
        "rss_before_mib": round(before / 1024, 1),
        "rss_after_mib": round(after / 1024, 1),
        "kib_per_connection": round((after - before) / count, 1),
    }


async def scenarios(args: argparse.Namespace, env: dict[str, str], users: list, idle_users: list) -> dict:
    from bench import loadgen
    from bench.servers import Server

    logs = HERE / ".var" if (HERE / ".var").exists() else Path("/tmp")  # noqa: S108
    token = dict(users)
    pair_ids = [(users[2 * i][0], users[2 * i + 1][0]) for i in range(args.pairs)]
    results: dict = {
        "settings": vars(args),
        "database": os.environ.get("DATABASE_URL", "sqlite (bench/.var)"),
        "channel_layer": "redis" if os.environ.get("REDIS_URL") else "in-memory",
    }

    ims = Server("imsproject.asgi:application", env, logs / "ims-server.log")
    base = Server("bench.baseline_asgi:application", env, logs / "baseline-server.log")
    ims_url = lambda uid: ims.url(f"token={token[uid]}")  # noqa: E731
    base_url = lambda uid: base.url(f"user={uid}")  # noqa: E731
    try:
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
        print(f"* replay of {args.replay} pending items ...", flush=True)
        results["replay"] = {"ims": await loadgen.drain_replay(ims_url(users[-1][0]))}
        print(f"* {args.connections} idle connections ...", flush=True)
        results["idle"] = {
            "ims": await idle_memory(ims, [ims.url(f"token={key}") for _, key in idle_users], ims=True),
            "baseline": await idle_memory(
                base, [base.url(f"user={uid}") for uid, _ in idle_users], ims=False
            ),
        }
    finally:
        ims.stop()
        base.stop()
    return results


def report(results: dict) -> str:
    lines = [
        f"database: {results['database']}, channel layer: {results['channel_layer']}",
        "",
        "| scenario | IMS | stock Channels baseline |",
        "| --- | --- | --- |",
    ]
    for name in ("rate_low", "rate", "max"):
        ims, base = results[name]["ims"], results[name]["baseline"]
        label = (
            "closed loop" if name == "max" else f"{results[name]['ims']['offered_per_second']:g}/s offered"
        )
        cell = lambda r: f"{r['per_second']}/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, lost {r['lost']}"  # noqa: E731
        lines.append(f"| 1:1 messages, {label} | {cell(ims)} | {cell(base)} |")
    replay = results["replay"]
    lines.append(
        f"| replay of {replay['ims']['items']} pending items | {replay['ims']['seconds']} s to the last item "
        f"| {replay['baseline_indexed_read_seconds']} s to read them by index |"
    )
    idle = results["idle"]
    lines.append(
        f"| {idle['ims']['connections']} idle connections | {idle['ims']['kib_per_connection']} KiB each "
        f"| {idle['baseline']['kib_per_connection']} KiB each |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=50, help="sender/receiver pairs")
    parser.add_argument("--rate", type=float, default=1000, help="offered messages a second")
    parser.add_argument("--seconds", type=float, default=8, help="length of each load run")
    parser.add_argument("--window", type=int, default=4, help="unanswered sends per sender, closed loop")
    parser.add_argument("--replay", type=int, default=10_000, help="pending items to replay")
    parser.add_argument("--connections", type=int, default=2000, help="idle connections to hold")
    args = parser.parse_args()

    env = configure_environment()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    stamp = int(time.time())
    users = create_users(args.pairs * 2 + 2, prefix=f"bench{stamp}-")
    idle_users = create_users(args.connections + 1, prefix=f"idle{stamp}-")
    replay_receiver = users[-1][0]
    store_pending(sender_id=users[-2][0], receiver_id=replay_receiver, count=args.replay)
    results = asyncio.run(scenarios(args, env, users, idle_users))
    results["replay"]["baseline_indexed_read_seconds"] = round(indexed_read_seconds(replay_receiver), 3)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    print()
    print(report(results))
    print(f"\n(raw figures in {out / 'latest.json'})")


if __name__ == "__main__":
    main()
