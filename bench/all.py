"""Every benchmark, one after another, then docs/benchmarks.md from their results.

    .venv/bin/python -m bench.all [--only capture,relay,layer,e2e,load,edge] [--report-only]
        [--quick] [--database-url URL]

Each benchmark runs as its own `python -m bench.X` (the arguments are in PLAN: the defaults,
relay's steady run shortened), with DATABASE_URL set when --database-url is given; a failing
one is reported and the others still run. The relay runs once per channel layer, the redis
ones only when Redis answers. --quick runs everything with tiny arguments to check that the
pipeline works; its figures mean nothing. Then bench/report.py writes docs/benchmarks.md and
docs/img/*.png from bench/results/*.json (--report-only: that alone). On a quiet 2-core
machine the whole run takes about 15 minutes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

from bench import report
from bench.common import RESULTS_DIR
from testkit.layer_peer import redis_reachable
from testkit.processes import ROOT


@dataclass(frozen=True)
class Run:
    benchmark: str  # what --only names
    results: str  # bench/results/<results>.json
    argv: tuple[str, ...]  # after `python -m`
    quick: tuple[str, ...] = ()  # `--option value` pairs that --quick sets
    needs_redis: bool = False

    @property
    def command(self) -> str:
        return " ".join(["python", "-m", *self.argv])


PLAN = (
    Run("capture", "capture", ("bench.capture",), ("--seconds", "1", "--rounds", "1")),
    Run("layer", "layer", ("bench.layer",)),
    Run("relay", "relay-postgres", ("bench.relay", "--layer", "postgres", "--seconds", "10"),
        ("--rows", "5000", "--seconds", "2")),
    Run("relay", "relay-redis", ("bench.relay", "--layer", "redis", "--seconds", "10"),
        ("--rows", "5000", "--seconds", "2"), needs_redis=True),
    Run("e2e", "e2e", ("bench.e2e",),
        ("--seconds", "2", "--step-seconds", "1", "--clients", "1,100", "--max-deliveries", "8000")),
    Run("load", "load", ("bench.load",),
        ("--clients", "100", "--idle-seconds", "1", "--seconds", "1", "--drain-seconds", "30")),
    Run("edge", "edge", ("bench.edge",), ("--resume-mb", "10", "--resumers", "1", "--stream-mb", "10")),
)  # fmt: skip
NAMES = sorted({run.benchmark for run in PLAN})


def default_commands() -> dict[str, str]:
    """Results name -> the command that writes it, for results all.py did not record."""
    return {
        **{run.results: run.command for run in PLAN},
        "capture-variants": "python -m bench.capture --variants",
    }


def with_options(argv: tuple[str, ...], options: tuple[str, ...]) -> list[str]:
    """`argv` with each `--option value` pair of `options` in place of the same option's value,
    or after it when it has none."""
    out = list(argv)
    for name, value in zip(options[::2], options[1::2], strict=True):
        if name in out:
            out[out.index(name) + 1] = value
        else:
            out += [name, value]
    return out


def run_one(run: Run, quick: bool, env: dict[str, str]) -> tuple[str, bool, float]:
    argv = with_options(run.argv, run.quick if quick else ())
    print(f"\n## {' '.join(['python', '-m', *argv])}", flush=True)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, env=env, check=False)
    return " ".join(["python", "-m", *argv]), done.returncode == 0, time.monotonic() - started


def record(commands: dict[str, str]) -> None:
    """Remember which command wrote each results file, for the report (bench/results/all.json)."""
    path = RESULTS_DIR / "all.json"
    known = json.loads(path.read_text())["commands"] if path.exists() else {}
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    path.write_text(json.dumps({"updated": now, "commands": {**known, **commands}}, indent=2) + "\n")


def run_all(only: list[str], quick: bool, database_url: str | None) -> list[str]:
    """Run the plan; the benchmarks that failed."""
    env = {**os.environ, **({"DATABASE_URL": database_url} if database_url else {})}
    redis = redis_reachable()
    commands: dict[str, str] = {}
    failed: list[str] = []
    for run in (r for r in PLAN if r.benchmark in only):
        if run.needs_redis and not redis:
            print(f"\n## {run.command}: skipped, Redis does not answer (REDIS_URL)", flush=True)
            continue
        command, ok, seconds = run_one(run, quick, env)
        print(f"## {'done' if ok else 'FAILED'} in {seconds:.0f} s", flush=True)
        if ok:
            commands[run.results] = command
        else:
            failed.append(run.results)
    record(commands)
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(NAMES), help=f"comma-separated, of: {', '.join(NAMES)}")
    parser.add_argument("--report-only", action="store_true", help="only rewrite docs/benchmarks.md")
    parser.add_argument("--quick", action="store_true", help="tiny runs that check the pipeline")
    parser.add_argument("--database-url", help="server to measure (default: DATABASE_URL, else embedded)")
    args = parser.parse_args()
    only = args.only.split(",")
    if unknown := set(only) - set(NAMES):
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    failed = [] if args.report_only else run_all(only, args.quick, args.database_url)
    print(f"\nwritten: {report.write(default_commands())}")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
