"""Runs completed: from webhook to completed run, against a bare Temporal loop in the same run.

Starts its own Kafka and Temporal dev server (SQLite with the WAL pragmas, as `make run` does),
then `hookline gateway`, `hookline triggers` and `hookline worker` (the shell runner; the agent
runs `true`) and, in a process of its own, the bare baseline's worker (bench/bare_temporal.py).

1. burst: --runs single-alert Alertmanager notifications, 32 connections, for a one-step and a
   three-step definition (steps one after the other); runs completed/s from the first request to
   the last run's close.
2. latency: one-step runs offered at --rate per second for --seconds; for each, the time from
   the gateway's 202 to the run's close in Temporal (same clock), p50 and p99.
3. bare: start a one-activity workflow and wait for its end, --runs of them at 64 at a time,
   one Python worker process: a no-op activity, an activity that spawns `true`, and one that
   spawns `true` on a separate task queue (as Hookline's runner pools are).
4. rounds: steps 1 and 3 are repeated --rounds times, Hookline and the bare loops in turn; every
   round is printed, and the ratio compares each side's best round (the machine's slow stretches
   move CPU per run by ~15 %, on whichever side they land).

Targets (issue 18, 2 cores): one-step ≥ 1.5x the best bare loop, three-step ≥ 1.0x it,
202 → completed p50 ≤ 150 ms at 20 runs/s.

    .venv/bin/python bench/runs.py [--runs 1000] [--rounds 2] [--rate 20] [--seconds 15] [--local-pools shell]
        [--interpreter]   # triggers.interpreter: the triggers host the interpreter, runs start eagerly
        [--temporal postgres]   # the Temporal server proper on PostgreSQL (make temporal-server first)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bare_temporal import LOCAL, SHAPES, run_loop  # noqa: E402
from bench.ingest import wait_ready  # noqa: E402
from bench.stack import PostgresTemporal, cpu_s, quiet_logs, start_stack  # noqa: E402
from gateway.sources.alertmanager import alert_dedupe_key  # noqa: E402
from hookline.runs import event_run_id  # noqa: E402
from hookline.stack import free_port  # noqa: E402
from hookline.temporal import connect  # noqa: E402

BARE_CONCURRENCY = 64
POST_CONNECTIONS = 32


def definition(kind: str, steps: int) -> dict[str, Any]:
    names = [f"step {i + 1}" for i in range(steps)]
    return {
        "id": kind,
        "name": kind,
        "trigger": {"type": "webhook", "source": "alertmanager", "filter": [f'bench="{kind}"']},
        "steps": [
            {"name": name, "agent": "noop", **({"requires": [names[i - 1]]} if i else {})}
            for i, name in enumerate(names)
        ],
    }


DEFINITIONS = {"one-step": definition("one-step", 1), "three-step": definition("three-step", 3)}


def notification(kind: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((ROOT / "tests" / "data" / "alertmanager-firing.json").read_text())
    doc["alerts"] = doc["alerts"][:1]
    doc["alerts"][0]["fingerprint"] = uuid.uuid4().hex[:16]
    doc["alerts"][0]["labels"]["bench"] = kind
    return doc


class CpuPerRun:
    """CPU per run of each named process over a measured stretch: where a run's cost goes."""

    def __init__(self, readers: dict[str, Callable[[], float]]) -> None:
        self.readers = readers  # by name, the CPU seconds its process (or processes) used so far
        self.rows: dict[str, dict[str, float]] = {}

    async def measure(self, name: str, runs: int, work: Any) -> Any:
        before = {p: read() for p, read in self.readers.items()}
        result = await work
        self.rows[name] = {p: (read() - before[p]) * 1000 / runs for p, read in self.readers.items()}
        return result

    def print(self) -> None:
        names = list(self.readers)
        print("CPU per run, ms (user + system of each process over the stretch, divided by its runs):")
        print(f"  {'':<18}" + "".join(f"{n:>10}" for n in names) + f"{'total':>10}")
        for row, spent in self.rows.items():
            cells = "".join(f"{spent[n]:10.1f}" for n in names)
            print(f"  {row:<18}{cells}{sum(spent.values()):10.1f}")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def completed_query(kind: str) -> str:
    """`kind`'s completed runs (not its flow-control lanes or wait mailboxes)."""
    return f"WorkflowType = 'HooklineRun' AND HooklineDefinitionId = '{kind}' AND ExecutionStatus = 'Completed'"


async def closed(client: Any, kind: str, n: int, timeout: float = 600) -> dict[str, tuple[datetime, datetime]]:
    """Run id → (start, close) of `kind`'s completed runs, once `n` of them have completed."""
    query = completed_query(kind)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await client.count_workflows(query)).count >= n:
            break
        await asyncio.sleep(0.5)
    else:
        raise TimeoutError(f"fewer than {n} {kind} runs completed within {timeout:g}s")
    runs = {}
    async for w in client.list_workflows(query):
        runs[w.id] = (w.start_time, w.close_time)
    return runs


async def post_all(port: int, docs: list[dict[str, Any]], rate: float | None) -> list[float]:
    """POST every notification (at `rate` per second, or as fast as 32 connections go); the
    time of each 202."""
    url = f"http://127.0.0.1:{port}/hooks/alertmanager"
    accepted: list[float] = [0.0] * len(docs)
    semaphore = asyncio.Semaphore(POST_CONNECTIONS)
    connector = aiohttp.TCPConnector(limit=POST_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(i: int, doc: dict[str, Any]) -> None:
            async with semaphore, session.post(url, json=doc) as r:
                if r.status != 202:
                    raise RuntimeError(f"{r.status}: {await r.text()}")
                accepted[i] = time.time()

        t0 = time.monotonic()
        tasks = []
        for i, doc in enumerate(docs):
            if rate is not None:
                await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(post(i, doc)))
        await asyncio.gather(*tasks)
    return accepted


async def burst(port: int, client: Any, kind: str, n: int) -> float:
    """Runs completed/s of `n` new runs of `kind` (runs of it completed before, such as a
    warm-up's, are not counted)."""
    before = (await client.count_workflows(completed_query(kind))).count
    first = time.time()
    await post_all(port, [notification(kind) for _ in range(n)], None)
    runs = await closed(client, kind, before + n)
    last = max(end.timestamp() for _, end in runs.values())
    return n / (last - first)


def run_id(kind: str, doc: dict[str, Any]) -> str:
    alert = doc["alerts"][0]
    key = alert_dedupe_key(doc["receiver"], alert["fingerprint"], alert["startsAt"], "firing")
    return event_run_id(kind, "alertmanager", key)


async def latency(port: int, client: Any, rate: int, seconds: int, done_before: int) -> dict[str, float]:
    docs = [notification("one-step") for _ in range(rate * seconds)]
    accepted = await post_all(port, docs, rate)
    runs = await closed(client, "one-step", done_before + len(docs))
    lat = [
        (runs[run_id("one-step", doc)][1].timestamp() - t202) * 1000 for doc, t202 in zip(docs, accepted, strict=True)
    ]
    return {"runs": len(docs), "p50": pct(lat, 50), "p99": pct(lat, 99)}


#: The triggers' counters `started_eagerly` reads, by what it calls them.
STARTS = {"hookline_triggers_workflows_started": "started", "hookline_triggers_eager_starts": "eager"}


async def started_eagerly(port: int) -> tuple[float, float]:
    """The triggers' runs started so far, and how many of them eagerly (their /metrics)."""
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as r:
        text = await r.text()
    totals = {"started": 0.0, "eager": 0.0}
    for family in text_string_to_metric_families(text):
        if (counted := STARTS.get(family.name)) is not None:
            totals[counted] += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return totals["started"], totals["eager"]


async def main(args: argparse.Namespace) -> None:
    quiet_logs()
    agents = 'agents:\n  noop: {command: ["true"], timeout_s: 10}\n'
    stack = await start_stack("runs", DEFINITIONS.values(), agents, temporal=args.temporal)
    with stack:  # stopped at the end; its folder kept if the bench fails
        temporal = stack.temporal
        port, worker_port, triggers_port = free_port(), free_port(), free_port()
        env = stack.env(
            HOOKLINE_GATEWAY__PORT=str(port),
            HOOKLINE_WORKER__PORT=str(worker_port),
            HOOKLINE_TRIGGERS__PORT=str(triggers_port),
            HOOKLINE_TEMPORAL__LOCAL_POOLS=json.dumps(args.local_pools),
            HOOKLINE_TRIGGERS__INTERPRETER=json.dumps(args.interpreter),
        )
        pids = {component: stack.start(component, env).pid for component in ("gateway", "triggers", "worker")}
        bare_queue = f"bare-{uuid.uuid4().hex[:6]}"
        bare_argv = [sys.executable, str(ROOT / "bench" / "bare_temporal.py"), "worker"]
        pids["bare"] = stack.spawn([*bare_argv, "--address", temporal.address, "--queue", bare_queue], env).pid
        pids["kafka"] = stack.servers.kafka.pid or 0
        readers: dict[str, Callable[[], float]] = {name: partial(cpu_s, pid) for name, pid in pids.items()}
        server = stack.servers.temporal
        if isinstance(server, PostgresTemporal):
            readers["temporal"], readers["postgres"] = server.cpu_s, server.postgres_cpu_s
        else:
            readers["temporal"] = partial(cpu_s, server.pid)
        cpu = CpuPerRun(readers)
        await wait_ready(f"http://127.0.0.1:{port}/readyz", timeout=60)
        await wait_ready(f"http://127.0.0.1:{worker_port}/readyz", timeout=60)
        client = await connect(temporal)
        await asyncio.sleep(2)  # the triggers join their group
        server_kind = (
            "the Temporal server proper (4 services, 4 history shards) on PostgreSQL"
            if args.temporal == "postgres"
            else "Temporal dev server (SQLite, WAL)"
        )
        print(f"{server_kind}, Kafka KRaft; {os.cpu_count()} cores; {datetime.now(UTC):%Y-%m-%d}")
        print(f"temporal.local_pools: {args.local_pools or 'none (every step through its pool queue)'}")
        if args.interpreter:
            print("triggers.interpreter: true (the triggers run the interpreter too and start runs eagerly)")
        warm = 50
        await burst(port, client, "one-step", warm)
        await asyncio.wait_for(run_loop(client, bare_queue, "noop", warm, BARE_CONCURRENCY), 120)

        # Rounds, each measuring every shape once, Hookline's and the bare loop's in turn: a slow
        # stretch of a shared machine (its CPU per run moves ~15 % between stretches) then lands
        # on both sides alike, and each side is taken at its best round.
        rounds: list[dict[str, float]] = []
        eager: list[str] = []  # with --interpreter: how many of each burst's starts were eager
        for r in range(1, args.rounds + 1):
            results: dict[str, float] = {}
            for kind in ("one-step", "three-step"):
                started_0, eagerly_0 = await started_eagerly(triggers_port)
                results[kind] = await cpu.measure(f"{kind} #{r}", args.runs, burst(port, client, kind, args.runs))
                started, eagerly = await started_eagerly(triggers_port)
                started, eagerly = started - started_0, eagerly - eagerly_0
                eager.append(f"{kind} #{r} {eagerly:.0f} of {started:.0f} ({eagerly / max(started, 1):.0%})")
            for shape in (*SHAPES, LOCAL):
                # Bounded: a bare worker that died (its log is the stack's components.log) stops the bench.
                loop = asyncio.wait_for(run_loop(client, bare_queue, shape, args.runs, BARE_CONCURRENCY), 600)
                results[f"bare {shape}"] = await cpu.measure(f"bare {shape} #{r}", args.runs, loop)
            rounds.append(results)
        lat = await latency(port, client, args.rate, args.seconds, warm + args.rounds * args.runs)

        def best_bare(results: dict[str, float]) -> float:
            return max(results[f"bare {s}"] for s in SHAPES)

        print(f"runs completed/s, {args.runs} runs each (Hookline: 32 connections posting; bare: 64 at a time):")
        for r, results in enumerate(rounds, 1):
            ratios = ", ".join(f"{k} {results[k] / best_bare(results):.2f}x" for k in ("one-step", "three-step"))
            print(f"  round {r}: " + "  ".join(f"{k} {v:.1f}" for k, v in results.items()) + f"   ({ratios})")
        best_of = {name: max(results[name] for results in rounds) for name in rounds[0]}
        best = best_bare(best_of)
        print(f"each at its best of {len(rounds)} round(s), against the best bare loop's best round:")
        for name, value in best_of.items():
            target = {
                "one-step": " (target >= 1.5x)",
                "three-step": " (target >= 1.0x)",
                f"bare {LOCAL}": " (reference only: not one of the baseline's shapes)",
            }.get(name, "")
            print(f"  {name:<18} {value:7.1f}/s   {value / best:5.2f}x the best bare loop{target}")
        if args.interpreter:
            print("runs started eagerly (the triggers' own count): " + ", ".join(eager))
        print(
            f"202 -> run completed, one step, {args.rate}/s for {args.seconds}s ({lat['runs']:.0f} runs): "
            f"p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms   (target: p50 <= 150 ms)"
        )
        cpu.print()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every shape; each side at its best")
    parser.add_argument("--rate", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument(
        "--temporal",
        choices=("dev", "postgres"),
        default="dev",
        help="the dev server (SQLite) or the Temporal server proper on PostgreSQL (built with make temporal-server)",
    )
    parser.add_argument(
        "--local-pools", nargs="*", default=[], help="temporal.local_pools for Hookline (e.g. shell); default none"
    )
    parser.add_argument(
        "--interpreter",
        action="store_true",
        help="triggers.interpreter for Hookline: the triggers host the interpreter and start runs eagerly",
    )
    asyncio.run(main(parser.parse_args()))
