"""Flow control's cost: events through a lane (docs/flow-control.md) beside direct starts, at 100
and 1,000 events/s offered, in one run.

Starts its own Kafka and Temporal dev server (SQLite with the WAL pragmas, as `make run` does),
then `hookline gateway`, `hookline triggers` and `hookline worker` (the shell runner; the agent
runs `true`). Two definitions differ only in flow control: `direct` starts each event's run at
once; `lane` has `concurrency: {key: service, limit: 1000}` over 10 services, a limit no run
waits for, so what it adds is the lane itself: a signal-with-start instead of a start, the lane's
workflow tasks, the run started as its child and its end reported back to the lane.

For each offered rate, each path in turn gets --seconds of Alertmanager notifications of 10 alerts
(rate / 10 notifications a second); measured until every run has completed:
- runs started/s, first to last start (what Temporal and the path sustain);
- gateway 202 -> run started, p50 and p99 (same clock);
- runs completed/s, first 202 to the last close;
- CPU per event (ms): the triggers, the worker (with the steps it spawns) and the Temporal server
  over the phase, read from /proc; the gateway's share is the same on both paths and left out.

    .venv/bin/python bench/flow.py [--seconds 5] [--rates 100 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import wait_ready  # noqa: E402
from bench.runs import closed as completed  # noqa: E402
from bench.runs import pct  # noqa: E402
from bench.stack import quiet_logs, start_stack  # noqa: E402
from gateway.sources.alertmanager import alert_dedupe_key  # noqa: E402
from hookline.runs import event_run_id  # noqa: E402
from hookline.stack import free_port  # noqa: E402
from hookline.temporal import connect  # noqa: E402

PATHS = ("direct", "lane")
SERVICES = 10
PER_NOTIFICATION = 10
POST_CONNECTIONS = 32
#: Numbers the alerts of all notifications, which spread over the keys in turn.
_NUMBERED = itertools.count()


def definition(path: str) -> dict[str, Any]:
    flow = {"concurrency": {"key": "${{ labels.service }}", "limit": 1000}} if path == "lane" else {}
    return {
        "id": path,
        "name": path,
        "trigger": {"type": "webhook", "source": "alertmanager", "filter": [f'bench="{path}"'], **flow},
        "steps": [{"name": "step", "agent": "noop"}],
    }


def notification(path: str, keys: int) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((ROOT / "tests" / "data" / "alertmanager-firing.json").read_text())
    template = doc["alerts"][0]
    doc["alerts"] = []
    for _ in range(PER_NOTIFICATION):
        alert = json.loads(json.dumps(template))
        alert["fingerprint"] = uuid.uuid4().hex[:16]
        alert["labels"].update(bench=path, service=f"svc-{next(_NUMBERED) % keys}")
        doc["alerts"].append(alert)
    return doc


def run_ids(path: str, doc: dict[str, Any]) -> list[str]:
    return [
        event_run_id(path, "alertmanager", alert_dedupe_key(doc["receiver"], a["fingerprint"], a["startsAt"], "firing"))
        for a in doc["alerts"]
    ]


def cpu_s(pid: int) -> float:
    """CPU seconds of `pid` and of its children it has waited for (the steps' processes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


@dataclass
class Phase:
    events: int
    started_per_s: float
    start_p50_ms: float
    start_p99_ms: float
    completed_per_s: float
    cpu_ms: dict[str, float]


async def offer(port: int, docs: list[dict[str, Any]], per_s: float) -> list[float]:
    """POST the notifications at `per_s` a second (32 connections); the time of each 202."""
    url = f"http://127.0.0.1:{port}/hooks/alertmanager"
    accepted = [0.0] * len(docs)
    gate = asyncio.Semaphore(POST_CONNECTIONS)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POST_CONNECTIONS)) as session:

        async def post(i: int, doc: dict[str, Any]) -> None:
            async with gate, session.post(url, json=doc) as reply:
                if reply.status != 202:
                    raise RuntimeError(f"{reply.status}: {await reply.text()}")
                accepted[i] = time.time()

        t0, tasks = time.monotonic(), []
        for i, doc in enumerate(docs):
            await asyncio.sleep(max(0.0, t0 + i / per_s - time.monotonic()))
            tasks.append(asyncio.create_task(post(i, doc)))
        await asyncio.gather(*tasks)
    return accepted


async def phase(
    port: int, client: Any, path: str, rate: int, seconds: float, pids: dict[str, int], keys: int = SERVICES
) -> Phase:
    docs = [notification(path, keys) for _ in range(round(rate * seconds / PER_NOTIFICATION))]
    runs_of = f"WorkflowType = 'HooklineRun' AND HooklineDefinitionId = '{path}'"
    done_before = (await client.count_workflows(runs_of)).count
    cpu = {name: cpu_s(pid) for name, pid in pids.items()}
    accepted = await offer(port, docs, rate / PER_NOTIFICATION)
    runs = await completed(client, path, done_before + len(docs) * PER_NOTIFICATION, timeout=1800)
    used = {name: cpu_s(pid) - cpu[name] for name, pid in pids.items()}
    mine = [(runs[run], t202) for doc, t202 in zip(docs, accepted, strict=True) for run in run_ids(path, doc)]
    starts = sorted(start.timestamp() for (start, _), _ in mine)
    events = len(mine)
    return Phase(
        events=events,
        started_per_s=events / max(starts[-1] - starts[0], 1e-9),
        start_p50_ms=pct([(start.timestamp() - t) * 1000 for (start, _), t in mine], 50),
        start_p99_ms=pct([(start.timestamp() - t) * 1000 for (start, _), t in mine], 99),
        completed_per_s=events / (max(end.timestamp() for (_, end), _ in mine) - min(accepted)),
        cpu_ms={name: s * 1000 / events for name, s in used.items()},
    )


def table(rate: int, seconds: float, direct: Phase, lane: Phase) -> None:
    print(f"\noffered {rate} events/s for {seconds:g} s ({direct.events} events a path)")
    print(f"  {'':<40}{'direct':>10}{'lane':>10}{'lane/direct':>13}")
    rows = [
        ("runs started/s", direct.started_per_s, lane.started_per_s, "{:.1f}"),
        ("202 -> run started p50, ms", direct.start_p50_ms, lane.start_p50_ms, "{:.0f}"),
        ("202 -> run started p99, ms", direct.start_p99_ms, lane.start_p99_ms, "{:.0f}"),
        ("runs completed/s (202 to last close)", direct.completed_per_s, lane.completed_per_s, "{:.1f}"),
    ]
    rows += [(f"CPU per event, {name}, ms", direct.cpu_ms[name], lane.cpu_ms[name], "{:.2f}") for name in direct.cpu_ms]
    total_direct, total_lane = sum(direct.cpu_ms.values()), sum(lane.cpu_ms.values())
    rows.append(("CPU per event, together, ms", total_direct, total_lane, "{:.2f}"))
    for name, a, b, shape in rows:
        print(f"  {name:<40}{shape.format(a):>10}{shape.format(b):>10}{b / a if a else float('nan'):>12.2f}x")


async def main(args: argparse.Namespace) -> None:
    quiet_logs()
    stack = await start_stack(
        "flow", [definition(p) for p in PATHS], 'agents:\n  noop: {command: ["true"], timeout_s: 10}\n'
    )
    with stack:  # stopped at the end; its folder kept if the bench fails
        port, worker_port = free_port(), free_port()
        env = stack.env(HOOKLINE_GATEWAY__PORT=str(port), HOOKLINE_WORKER__PORT=str(worker_port))
        stack.start("gateway", env)
        pids = {"triggers": stack.start("triggers", env).pid, "worker": stack.start("worker", env).pid}
        temporal_pid = stack.servers.temporal.pid
        assert temporal_pid is not None
        pids["Temporal"] = temporal_pid
        await wait_ready(f"http://127.0.0.1:{port}/readyz", timeout=60)
        await wait_ready(f"http://127.0.0.1:{worker_port}/readyz", timeout=60)
        client = await connect(stack.temporal)
        await asyncio.sleep(2)  # the triggers join their group
        print(f"Temporal dev server (SQLite, WAL), Kafka KRaft; {os.cpu_count()} cores; {datetime.now(UTC):%Y-%m-%d}")
        print(f"one-step runs (`true`); lane: concurrency limit 1000 over {args.keys} keys (no run waits for it)")
        for path in PATHS:  # warm both paths up: the lanes exist, the caches are filled
            await phase(port, client, path, max(50, args.keys), 1, pids, args.keys)
        for rate in args.rates:
            direct = await phase(port, client, "direct", rate, args.seconds, pids)
            lane = await phase(port, client, "lane", rate, args.seconds, pids, args.keys)
            table(rate, args.seconds, direct, lane)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rates", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--keys", type=int, default=SERVICES, help="the lanes' keys the events spread over")
    asyncio.run(main(parser.parse_args()))
