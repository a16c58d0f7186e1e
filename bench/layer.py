"""Channel layers compared on this machine: the project's Postgres layer, channels_redis'
RedisPubSubChannelLayer (as pglayer/redis_layer.py extends it) and channels-postgres 1.1.4.

    .venv/bin/python bench/layer.py      (or: .venv/bin/python -m bench.layer)

For each layer, between this process and another one (testkit/layer_peer.py):
- round trip: send to the peer's channel, which answers on ours (median and p90);
- deliveries per second to a group of 1, 100 and 1,000 members in the peer: this process
  sends M messages to the group one after another, as the relay does; the rate is members x M
  over the time from the first send to the last member's last message (median of 3 rounds).
Postgres is DATABASE_URL's server or the embedded one (a scratch database, dropped at the
end); Redis is REDIS_URL or 127.0.0.1:6379 (skipped when absent). Queues are made large
enough that nothing is dropped: this measures throughput, not overflow. Prints a Markdown
table and writes bench/results/layer.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if sys.path[0] != str(ROOT):  # run as a script (bench/layer.py), not as -m bench.layer
    sys.path[0] = str(ROOT)

from bench.common import machine_facts, markdown_table, scratch_database, server_url, write_results  # noqa: E402
from core.database import django_database  # noqa: E402
from testkit.layer_peer import REDIS_URL, redis_reachable  # noqa: E402
from testkit.processes import Process  # noqa: E402

PEER = ROOT / "tests" / "layer_peer.py"
SETTINGS = "bench.layer_settings"
ROUND_TRIPS, WARM_UP = 1000, 100
GROUPS = {1: 1000, 100: 200, 1000: 40}  # members: messages sent in a round
ROUNDS = 3
UNBOUNDED = 1_000_000  # queue capacity: nothing dropped while measuring throughput
TIMEOUT = 60.0


def layers(database: str) -> dict[str, tuple[str, dict[str, Any]]]:
    tag = uuid.uuid4().hex[:8]
    return {
        "project Postgres layer": (
            "pglayer.layer.PostgresChannelLayer",
            {"conninfo": database, "capacity": UNBOUNDED},
        ),
        "RedisPubSubChannelLayer": (
            "pglayer.redis_layer.RedisPubSubChannelLayer",
            {"hosts": [REDIS_URL], "prefix": f"bench{tag}.", "capacity": UNBOUNDED},
        ),
        "channels-postgres 1.1.4": (  # CONFIG: a Django DATABASES entry
            "channels_postgres.core.PostgresChannelLayer",
            {**django_database(database), "TIME_ZONE": None},
        ),
    }


def migrate(database: str) -> None:
    """The project's migrations and channels-postgres's."""
    env = {**os.environ, "DATABASE_URL": database, "DJANGO_SETTINGS_MODULE": SETTINGS}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


class Bench:
    def __init__(self, database: str, path: str, config: dict[str, Any]) -> None:
        from django.utils.module_loading import import_string

        self.database, self.path, self.config = database, path, config
        self.layer = import_string(path)(**config)

    def peer(self, *role: str) -> Process:
        argv = [sys.executable, str(PEER), self.path, json.dumps(self.config), *role]
        env = {"DATABASE_URL": self.database, "DJANGO_SETTINGS_MODULE": SETTINGS}
        return Process(argv, env, "peer")

    async def round_trips(self) -> dict[str, float]:
        peer = self.peer("echo")
        try:
            channel = (await line(peer, "^channel ")).split()[1]
            mine = await self.layer.new_channel()
            for n in range(-WARM_UP, 0):
                await self.ping(channel, mine, n, retry_after=1.0)
            times = []
            for n in range(ROUND_TRIPS):
                start = time.perf_counter()
                await self.ping(channel, mine, n)
                times.append(time.perf_counter() - start)
        finally:
            peer.kill()
        measured = sorted(times)
        return {
            "median_ms": statistics.median(measured) * 1000,
            "p90_ms": measured[int(len(measured) * 0.9)] * 1000,
        }

    async def ping(self, channel: str, mine: str, n: int, retry_after: float | None = None) -> None:
        """Until the answer to ping `n` is in. Warm-up pings are sent again when unanswered:
        channels-postgres loses messages sent while its listener starts."""
        while True:
            await self.layer.send(channel, {"type": "ping", "reply_to": mine, "n": n})
            try:
                while (await asyncio.wait_for(self.layer.receive(mine), retry_after or TIMEOUT))["n"] != n:
                    pass  # the answer to an earlier, repeated warm-up ping
                return
            except TimeoutError:
                if retry_after is None:
                    raise

    async def deliveries(self, members: int, messages: int) -> dict[str, Any]:
        group = f"bench.{members}"
        peer = self.peer("members", group, str(members), "--count", str(messages))
        try:
            while True:  # warm-ups until every member has one (see testkit/layer_peer.py)
                await self.layer.group_send(group, {"type": "bench.warm", "n": -1})
                try:
                    await asyncio.to_thread(peer.wait_for, "^ready$", 0.3)
                    break
                except AssertionError:
                    continue
            seconds = []
            for first in range(0, ROUNDS * messages, messages):
                after = len(peer.lines)
                start = time.time()
                for n in range(first, first + messages):
                    await self.layer.group_send(group, {"type": "bench.item", "n": n, "text": "x" * 100})
                seconds.append(float((await line(peer, "^done ", after)).split()[1]) - start)
            _, repeats, _, gaps = (await line(peer, "^repeats ", after)).split()
        finally:
            peer.kill()
        return {
            "members": members,
            "messages_per_round": messages,
            "seconds": seconds,
            "deliveries_per_s": members * messages / statistics.median(seconds),
            "repeats": int(repeats),
            "gaps": int(gaps),
        }


async def line(peer: Process, pattern: str, after: int = 0) -> str:
    return await asyncio.to_thread(peer.wait_for, pattern, TIMEOUT, after=after)


async def measure(bench: Bench) -> dict[str, Any]:
    result: dict[str, Any] = {"round_trip": await bench.round_trips(), "groups": []}
    progress(f"  round trip: {result['round_trip']}")
    for members, messages in GROUPS.items():
        result["groups"].append(await bench.deliveries(members, messages))
        progress(f"  group: {result['groups'][-1]}")
    await bench.layer.flush()
    return result


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def table(results: dict[str, Any]) -> str:
    headers = ["layer", "round trip median", "p90", *(f"group of {m:,}" for m in GROUPS)]
    rows = []
    for name, result in results.items():
        if "skipped" in result:
            rows.append([name, f"skipped: {result['skipped']}", *[""] * (1 + len(GROUPS))])
            continue
        rt = result["round_trip"]
        rates = [f"{g['deliveries_per_s']:,.0f}/s" for g in result["groups"]]
        rows.append([name, f"{rt['median_ms']:.2f} ms", f"{rt['p90_ms']:.2f} ms", *rates])
    return markdown_table(headers, rows)


def main() -> None:
    with scratch_database(server_url(), "bench_layer") as database:
        migrate(database)
        os.environ.update(DATABASE_URL=database, DJANGO_SETTINGS_MODULE=SETTINGS)
        import django

        django.setup()
        machine = machine_facts(database)
        results: dict[str, Any] = {}
        for name, (path, config) in layers(database).items():
            if "Redis" in name and not redis_reachable():
                results[name] = {"skipped": f"no Redis at {REDIS_URL}"}
                continue
            progress(f"measuring {name} ...")
            results[name] = asyncio.run(measure(Bench(database, path, config)))
    print(table(results))
    write_results("layer", machine, results)


if __name__ == "__main__":
    main()
