"""docs/benchmarks.md and its plots (docs/img/*.png), from the JSON files in bench/results/.

Called by bench/all.py (also alone: `.venv/bin/python -m bench.all --report-only`). Each
benchmark's section has its figures against their goals, the command that produced them and
the machine they were measured on; a benchmark without results says how to produce them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from bench import capture, e2e, edge, layer, load, relay, soak
from bench.common import RESULTS_DIR, markdown_table

DOCS = Path(__file__).resolve().parent.parent / "docs"
REPORT = DOCS / "benchmarks.md"
IMAGES = DOCS / "img"
LAYER_NAMES = ("postgres", "redis")
RELAY_RATE_GOAL = f"≥ {relay.GOAL_CHANGES_PER_S:,}"
RELAY_LAG_GOAL = f"< {relay.GOAL_LAG_P99_MS:g}"

Result = dict[str, Any]  # one results file: {"benchmark", "machine", "results"}
Section = Callable[[Result, str], list[str]]  # a results file and its command -> Markdown parts

INTRO = """\
# Benchmarks

Written by `python -m bench.all` from `bench/results/*.json`; do not edit by hand
(`python -m bench.all --report-only` rewrites it from the JSON files). What each benchmark
does and its options: `bench/README.md` and each module's docstring. Every figure comes with
the machine it was measured on: with 2 cores, whatever else runs moves them, so look at the
load average (taken before and after the run) before comparing two reports.
"""


def load_results(name: str) -> Result | None:
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def machine_line(machine: dict[str, Any]) -> str:
    pg = machine.get("postgres", {})
    start = machine.get("load_average_1m_at_start", machine.get("load_average_1m", "?"))
    return (
        f"Measured {machine['date']} on {machine['cores']} cores ({machine['cpu']}), load average"
        f" (1 min) {start} at start and {machine.get('load_average_1m_at_end', '?')} at end;"
        f" PostgreSQL {pg.get('server_version', '?')} (fsync={pg.get('fsync')},"
        f" synchronous_commit={pg.get('synchronous_commit')}, shared_buffers={pg.get('shared_buffers')}),"
        f" Python {machine.get('python', '?')}."
    )


def provenance(command: str, machine: dict[str, Any]) -> str:
    return f"`{command}`. {machine_line(machine)}"


def image(fig: Figure, name: str, alt: str) -> str:
    """Save a plot to docs/img/<name>.png; the Markdown that shows it."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(IMAGES / f"{name}.png", dpi=110)
    plt.close(fig)
    return f"![{alt}](img/{name}.png)"


def grouped_bars(groups: list[str], series: dict[str, list[float]], ylabel: str, title: str) -> Figure:
    """One bar per series within each group."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        ax.bar([g + i * width for g in range(len(groups))], values, width, label=label)
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))], groups)
    ax.set(ylabel=ylabel, title=title)
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return fig


# Capture.


def capture_section(doc: Result, command: str) -> list[str]:
    measured = doc["results"]["measured"]
    groups = [f"{w} writer{'s' if w > 1 else ''}" for w in capture.WRITERS]
    series = {
        t: [measured[t][f"writers_{w}"]["inserts_per_second"] for w in capture.WRITERS] for t in measured
    }
    fig = grouped_bars(groups, series, "single-row inserts/s", "Insert throughput with and without capture")
    return [
        "## Capture: what the trigger costs a writer",
        provenance(command, doc["machine"]),
        markdown_table(capture.SUMMARY_HEADERS, capture.summary_rows(measured)),
        "CPU per insert by part: the writers and their server processes, the relay's reading"
        " (its thread and connections), Postgres's own processes; beside it, what it adds to plain's:",
        markdown_table(capture.PARTS_HEADERS, capture.parts_rows(measured)),
        *wal_parts(measured),
        image(fig, "capture", "inserts/s, plain and captured, 1 and 8 writers"),
    ]


def capture_variants_section(doc: Result, command: str) -> list[str]:
    settings, measured = doc["results"]["settings"], doc["results"]["measured"]
    return [
        "### Where the cost goes (`--variants`)",
        provenance(capture_variants_command(command, settings), doc["machine"]),
        markdown_table(capture.DETAIL_HEADERS, capture.detail_rows(measured)),
        markdown_table(capture.PARTS_HEADERS, capture.parts_rows(measured)),
        *wal_parts(measured),
        "\n".join(f"- {name}: {text}" for name, text in settings["tables"].items()),
    ]


def wal_parts(measured: dict[str, Any]) -> list[str]:
    return [
        "WAL written per insert (every commit waits for its flush); with `--waits`, the 8 writers'"
        " server processes by what they were doing, on average how many: waiting for their client's"
        " next statement, running, waiting on the WAL (its lock, write or flush), other:",
        markdown_table(capture.WAL_HEADERS, capture.wal_rows(measured)),
    ]


def capture_variants_command(command: str, settings: dict[str, Any]) -> str:
    """`command` with the options this run was given (the results record them)."""
    variants = [t for t in settings["tables"] if t in capture.VARIANTS]
    options = [f"--tables {','.join(variants)}"] if set(variants) != set(capture.VARIANTS) else []
    options += [
        f"--{name} {value:g}"
        for name, value in settings.items()
        if capture.DEFAULTS.get(name, value) != value
    ]
    options += ["--waits"] if settings.get("waits") else []
    return " ".join([command, *options])


# Channel layers.


def layer_section(doc: Result, command: str) -> list[str]:
    results = {name: r for name, r in doc["results"].items() if "skipped" not in r}
    members = [f"group of {g['members']:,}" for g in next(iter(results.values()))["groups"]]
    series = {name: [g["deliveries_per_s"] for g in r["groups"]] for name, r in results.items()}
    fig = grouped_bars(members, series, "deliveries/s (log)", "Channel layers: deliveries to a group")
    fig.axes[0].set_yscale("log")
    return [
        "## Channel layers: round trip and group deliveries between two processes",
        provenance(command, doc["machine"]),
        layer.table(doc["results"]),
        image(fig, "layer", "deliveries/s to groups of 1, 100 and 1,000 members, per layer"),
    ]


# Relay.


def relay_section(docs: dict[str, Result], commands: dict[str, str]) -> list[str]:
    """One table with a column per channel layer measured."""
    names = list(docs)
    burst = {n: docs[n]["results"]["burst"] for n in names}
    steady = {n: docs[n]["results"]["steady"] for n in names}
    first = next(iter(burst.values()))
    rate = next(iter(steady.values()))["rate_per_s"]
    rows = [
        [f"burst of {first['rows']:,} rows: relayed changes/s"]
        + [f"{burst[n]['relayed_per_s']:,}" for n in names]
        + [RELAY_RATE_GOAL],
        ["burst: commit → member received all (s)", *(burst[n]["until_all_received_s"] for n in names), ""],
        [f"steady {rate:g}/s: lag p50 (ms)", *(steady[n]["lag_p50_ms"] for n in names), ""],
        [f"steady {rate:g}/s: lag p99 (ms)", *(steady[n]["lag_p99_ms"] for n in names), RELAY_LAG_GOAL],
    ]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.4))
    labels = [n.removeprefix("relay-") for n in names]
    left.bar(labels, [burst[n]["relayed_per_s"] for n in names], color="tab:blue")
    left.axhline(relay.GOAL_CHANGES_PER_S, color="tab:red", linestyle="--", label="goal")
    left.set(title=f"burst of {first['rows']:,} rows", ylabel="relayed changes/s")
    left.legend(fontsize="small")
    for q, color in (("p50", "tab:green"), ("p99", "tab:orange")):
        right.plot(labels, [steady[n][f"lag_{q}_ms"] for n in names], "o", color=color, label=q)
    right.axhline(relay.GOAL_LAG_P99_MS, color="tab:red", linestyle="--", label="p99 goal")
    right.set(title=f"steady {rate:g}/s: commit → member", ylabel="ms")
    right.margins(x=0.4)
    right.legend(fontsize="small")
    parts = ["## Relay: cdc_listen to a group member in another process"]
    parts += [f"{n.removeprefix('relay-')}: {provenance(commands[n], docs[n]['machine'])}" for n in names]
    return [
        *parts,
        markdown_table(["figure", *labels, "goal"], rows),
        image(fig, "relay", "relay burst throughput and steady lag per channel layer"),
    ]


# End to end.


def e2e_section(doc: Result, command: str) -> list[str]:
    results = doc["results"]
    plots = []
    if any(m.get("latency") for m in results["layers"].values()):
        plots.append(image(latency_plot(results), "e2e-latency", "latency percentiles against changes/s"))
    if any(m.get("fanout") for m in results["layers"].values()):
        plots.append(image(fanout_plot(results), "e2e-fanout", "deliveries/s against clients per layer"))
    kept = [
        f"The {part} part: {provenance(run['command'], run['machine'])}"
        for part, run in results.get("kept", {}).items()
    ]
    return [
        "## End to end: COMMIT to websocket client",
        provenance(results.get("command", command), doc["machine"]),
        *kept,
        e2e.tables(results),
        *plots,
        E2E_NOTES.rstrip(),
    ]


E2E_NOTES = """\
How to read these: CPU columns are % of one core over the writing time (the machine column
is every process, out of cores x 100). A step that does not count is marked in the summary's
"then stopped by". When the web process is near 100% the figure is its single core; when the
machine column is near its maximum the processes are competing for the cores (on 2 cores
Postgres, cdc_listen, the writer and the load generators share them with the web process);
the clients' CPU per delivery beside the web's shows the load generator costs less than what
it measures. `missed` changes after the drain count as infinitely late in the percentiles;
`repairs` are connections that re-read changes from the log (more waited for them than
`LIVE_SEND_BUDGET_BYTES`, or the channel layer dropped messages).

What a delivery costs: a web process joins each group once (consumers/hub.py), decodes each
relayed batch once and queues it to each of its connections in that group; the connection's
writer task filters it, checks it was not sent before, and writes the text the relay
encoded, through the server's own `send` (consumers/edge.py `keep_server_send`). What is left
per delivery is mostly the server's frame write: a profile of uvicorn at 1,000 clients put
about 40% of the web's time in the socket write itself. uvicorn (wsproto on uvloop) costs
about half of daphne's CPU per delivery at 1,000 connections, which is why it is the default
(core/commands.py `WEB_SERVERS`; docs/operations.md, "Which web server"); at 1 and 100
connections the two are close. For more than one core's worth, run a web process per core:
the layer fans out once per process.
"""


def latency_plot(results: dict[str, Any]) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    styles = {"p50_ms": "-", "p95_ms": "--", "p99_ms": ":"}
    for color, (layer_name, measured) in zip(
        ("tab:blue", "tab:orange"), results["layers"].items(), strict=False
    ):
        steps = [s for s in measured.get("latency", []) if s.get("writers", 1) == 1]
        for key, style in styles.items():
            ax.plot([s["rate"] for s in steps], [s[key] for s in steps], style, marker="o", color=color,
                    label=f"{layer_name} {key.removesuffix('_ms')}")  # fmt: skip
    ax.axhline(e2e.GOAL_P99_MS, color="tab:red", linewidth=0.8, linestyle=":", label="p99 goal at 100/s")
    ax.axhline(e2e.GOAL_P50_MS, color="tab:red", linewidth=0.8, linestyle="-", label="p50 goal at 100/s")
    ax.set(xscale="log", xlabel="changes/s (1 client)", ylabel="ms", title="COMMIT → change received")
    ax.legend(fontsize="x-small", ncols=2)
    ax.grid(alpha=0.3)
    return fig


def fanout_plot(results: dict[str, Any]) -> Figure:
    """Left: the figure per client count; right: p95 against deliveries/s for every step."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    for layer_name, measured in results["layers"].items():
        fanout = measured.get("fanout", [])
        best = [(f["clients"], (f["best"] or {}).get("deliveries_per_s", 0)) for f in fanout]
        left.plot(*zip(*best, strict=True), marker="o", label=layer_name)
        for f in fanout:
            steps = [s for s in f["steps"] if s["p95_ms"] is not None]
            right.plot([s["deliveries_per_s"] for s in steps], [s["p95_ms"] for s in steps], marker=".",
                       label=f"{layer_name}, {f['clients']:,} clients")  # fmt: skip
    left.axhline(e2e.GOAL_DELIVERIES, color="tab:red", linestyle="--", label="goal at 1,000 clients")
    left.set(xscale="log", xlabel="clients", ylabel="deliveries/s with p95 ≤ 200 ms", title="Fan-out")
    right.axhline(e2e.FANOUT_P95_MS, color="tab:red", linestyle="--", label="200 ms")
    right.set(xscale="log", yscale="log", xlabel="deliveries/s", ylabel="p95 ms", title="Every step")
    for ax in (left, right):
        ax.legend(fontsize="x-small")
        ax.grid(alpha=0.3)
    return fig


def load_section(doc: Result, command: str) -> list[str]:
    results = doc["results"]
    verdict = (
        "every connection got every change" if results["every_change_arrived"] else "changes went missing"
    )
    return [
        f"## {results['clients']:,} connections on one web process ({results['server']},"
        f" {results['layer']} layer): {verdict}",
        provenance(results.get("command", command), doc["machine"]),
        load.table(results),
        LOAD_NOTES.rstrip(),
    ]


LOAD_NOTES = """\
At 100 changes/s every connection subscribed to everything means 100,000 deliveries/s, beyond
what one web process sends (see the fan-out above): the clients fall behind during the write
and catch up afterwards, so the latency here is mostly queueing. What this table checks is
that nothing is lost on the way: when more waits for a connection than
`LIVE_SEND_BUDGET_BYTES`, it is dropped and the connection re-reads it from the change log,
and every connection must still end with every change, in order, once. Those repairs queue
for the web process's pool of 10 database connections (up to 60 s each), so none has to give
up and close the connection.
"""


def edge_section(doc: Result, command: str) -> list[str]:
    results = doc["results"]
    return [
        f"## The delivery edge: what a hostile client makes the web process ({results['server']}) hold",
        provenance(results.get("command", command), doc["machine"]),
        edge.table(results["scenarios"]),
        EDGE_NOTES.rstrip(),
    ]


EDGE_NOTES = """\
Growth is the web process's peak resident memory during the scenario (sampled every 20 ms)
less what it held before, after a warm-up of 10 MB through one client (the allocator's first
high-water mark is nobody's doing). A resume streams the missed changes from a server-side
cursor, a page at a time as the client acknowledges them. A slow reader is one that stops
acknowledging: the server stops sending to it at 4 MiB unacknowledged and closes it with
4013 after 10 s; meanwhile what is relayed waits for its writer, at most
`LIVE_SEND_BUDGET_BYTES`, past which it is dropped and re-read from the log. Two things were found
with this benchmark: a group message of 500 changes of 100 KB is 50 MB held whole by every
receiving process (the relay now sends about a MiB per message), and a cache of decoded
group messages kept hundreds of them alive (now 4).
"""


def edge_goal_rows(results: dict[str, Any]) -> list[list[object]]:
    rows: list[list[object]] = []
    for s in results["scenarios"]:
        goal = edge.goal_mb(s)
        if goal is not None:
            met = s["web_growth_mb"] < goal and edge.delivered(s)
            rows.append(
                [
                    f"edge: {s['scenario']}: web growth (MB)",
                    s["web_growth_mb"],
                    f"< {goal:g} ({_met(met)})",
                ]
            )
    return rows


SOAK_COMMAND = "python -m bench.soak --seconds 600"

SOAK_NOTES = """\
The soak is a check, not a speed test: it runs by itself (`bench/soak.py`, not `bench.all`),
for 60 seconds in the test suite (tests/system/test_soak.py). Two writers commit inserts, updates
and deletes of articles and posts (a fifth of the posts private) at 40 transactions a
second; 50 anonymous clients, each on one or two filtered subscriptions, resume after every
drop from the last position they received. One fault every 10 seconds; after each, a probe
article and post are written and the recovery time is until every client has both. The
verdict compares each client's record with the change log: every change after the client's
first `subscribed` that its filters select, none missing, none twice, in the log's order.
Recovery after a web server restart is mostly its own start (importing Django) and the
clients' reconnect backoff (capped at 2 s).
"""


def soak_section(doc: Result, command: str) -> list[str]:
    results = {k: v for k, v in doc["results"].items() if k in soak.Report.__dataclass_fields__}
    report = soak.Report(**results)
    problems = report.problems
    verdict = f"{len(problems)} problems" if problems else "nothing lost, nothing twice, all in commit order"
    return [
        f"## Fault-injection soak: {verdict}",
        provenance(command, doc["machine"]),
        report.table(),
        *(f"- {problem}" for problem in problems[:20]),
        SOAK_NOTES.rstrip(),
    ]


# The whole page.


def summary(docs: dict[str, Result | None]) -> str:
    """The goals, one row each, from whatever results exist."""
    rows: list[list[object]] = []
    if cap := docs.get("capture"):
        measured = capture.summary_rows(cap["results"]["measured"])
        for r in measured[: len(capture.WRITERS)]:
            rows.append([f"capture, {r[0].split(':')[0]}: time per insert / plain's", r[3], r[4]])
    for name in (f"relay-{n}" for n in LAYER_NAMES):
        if doc := docs.get(name):
            rows += relay_goal_rows(name, doc["results"])
    if doc := docs.get("e2e"):
        rows += e2e_goal_rows(doc["results"])
    if doc := docs.get("edge"):
        rows += edge_goal_rows(doc["results"])
    if doc := docs.get("load"):
        r = doc["results"]
        figure = f"load: {r['clients']:,} connections got every change, no error or disconnect"
        rows.append([figure, "yes" if r["every_change_arrived"] else "no", "yes"])
    return markdown_table(["goal", "measured", "wanted"], rows)


def relay_goal_rows(name: str, results: dict[str, Any]) -> list[list[object]]:
    burst, steady = results["burst"], results["steady"]
    rate_met = burst["relayed_per_s"] >= relay.GOAL_CHANGES_PER_S
    lag_met = steady["lag_p99_ms"] < relay.GOAL_LAG_P99_MS
    return [
        [f"{name}: burst changes/s", f"{burst['relayed_per_s']:,}", f"{RELAY_RATE_GOAL} ({_met(rate_met)})"],
        [
            f"{name}: lag p99 at {steady['rate_per_s']:g}/s (ms)",
            steady["lag_p99_ms"],
            f"{RELAY_LAG_GOAL} ({_met(lag_met)})",
        ],
    ]


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def e2e_goal_rows(results: dict[str, Any]) -> list[list[object]]:
    rows: list[list[object]] = []
    for r in e2e.latency_rows(results):
        if r[-1]:  # the rate with a goal
            label = f"e2e {r[0]}: p50 / p99 at {r[1]} changes/s, 1 client (ms)"
            rows.append([label, f"{r[3]} / {r[5]}", r[-1]])
    for r in e2e.fanout_rows(results):
        if r[-1]:
            rows.append([f"e2e {r[0]}: deliveries/s at {r[1]} clients, p95 ≤ 200 ms", r[2], r[-1]])
    for run, measured in results["layers"].items():
        for f in measured.get("fanout", []):
            per_delivery = ((f["best"] or {}).get("cpu_us_per_delivery") or {}).get("web")
            if f["clients"] == e2e.GOAL_CLIENTS and per_delivery is not None:
                met = per_delivery <= e2e.GOAL_US_PER_DELIVERY
                label = f"e2e {run}: web CPU per delivery at {f['clients']:,} clients (µs)"
                rows.append([label, per_delivery, f"≤ {e2e.GOAL_US_PER_DELIVERY:g} ({_met(met)})"])
    return rows


def commands_run() -> dict[str, str]:
    """The commands bench/all.py last ran, by results name (bench/results/all.json)."""
    path = RESULTS_DIR / "all.json"
    return json.loads(path.read_text())["commands"] if path.exists() else {}


def write(default_commands: dict[str, str]) -> Path:
    """Rewrite docs/benchmarks.md and its plots from bench/results/."""
    commands = {**default_commands, **commands_run()}
    docs = {name: load_results(name) for name in commands}
    sections: list[str] = [INTRO.rstrip(), "## Goals\n\n" + summary(docs)]
    single: dict[str, Section] = {
        "capture": capture_section,
        "capture-variants": capture_variants_section,
        "layer": layer_section,
    }
    for name, section in single.items():
        sections += _section(docs, commands, name, section)
    relays = {n: d for n in (f"relay-{layer}" for layer in LAYER_NAMES) if (d := docs.get(n))}
    sections += relay_section(relays, commands) if relays else [_missing("relay", commands["relay-postgres"])]
    sections += _section(docs, commands, "e2e", e2e_section)
    sections += _section(docs, commands, "load", load_section)
    sections += _section(docs, commands, "edge", edge_section)
    sections += _section({"soak": load_results("soak")}, {"soak": SOAK_COMMAND}, "soak", soak_section)
    REPORT.write_text("\n\n".join(sections).rstrip() + "\n")
    return REPORT


def _section(
    docs: dict[str, Result | None],
    commands: dict[str, str],
    name: str,
    make: Callable[[Result, str], list[str]],
) -> list[str]:
    doc = docs.get(name)
    return make(doc, commands[name]) if doc else [_missing(name, commands[name])]


def _missing(name: str, command: str) -> str:
    return f"## {name}\n\nNo results yet: run `{command}`."
