"""Soak: alerts at a steady rate for a long time; memory must stay flat and latency stable.

Starts the drill stack (see bench/storm.py), measures the completed-runs rate of a burst
(--probe alerts at once) unless --rate is given, then sends one-alert notifications at 80 % of
that rate for --minutes. Every --every seconds it prints the 202 latency (p50, p99) of that
window, the errors (anything but a 2xx), the runs completed so far, and the RSS of every part.
At the end: every alert accounted for (lost, twice, extra, DLQ) and RSS at start and end.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate R] [--every 60]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.drill.harness import Drill, DrillStack, workflow_ids  # noqa: E402
from tests.notifications import notification  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else 0.0


async def main(args: argparse.Namespace) -> None:
    stack = DrillStack(Path(tempfile.mkdtemp(prefix="hookline-soak-")))
    await stack.start()
    try:
        drill = Drill(stack, settle_timeout_s=600)
        rate = args.rate
        if rate is None:
            docs = [notification(1, f"probe-{n}") for n in range(args.probe)]
            t0 = time.monotonic()
            outcome = await drill.run(None, docs=docs)
            maximum = outcome.completed / (time.monotonic() - t0)
            rate = 0.8 * maximum
            print(f"burst of {args.probe}: {maximum:.1f} runs completed/s; soaking at 80 %: {rate:.1f} alerts/s")
        print(
            f"Soak on the drill stack; 2 cores; {datetime.now(UTC):%Y-%m-%d}; {args.minutes} min at {rate:.1f} alerts/s"
        )
        start_rss = stack.rss_mb()
        print(f"RSS at start (MB): {start_rss}")
        ids: set[str] = set()
        latencies: list[float] = []
        errors = 0
        tasks: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession() as session:

            async def post(doc: dict[str, object]) -> None:
                nonlocal errors
                t = time.perf_counter()
                try:
                    async with session.post(f"{stack.gateway_url}/hooks/alertmanager", json=doc) as r:
                        if r.status == 202:
                            latencies.append((time.perf_counter() - t) * 1000)
                            return
                except aiohttp.ClientError:
                    pass
                errors += 1

            t0 = time.monotonic()
            end = t0 + args.minutes * 60
            next_report = t0 + args.every
            n = 0
            while time.monotonic() < end:
                doc = notification(1, f"soak-{n}")
                ids.update(workflow_ids(doc))
                task = asyncio.create_task(post(doc))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
                await asyncio.sleep(max(0.0, t0 + n / rate - time.monotonic()))
                if time.monotonic() >= next_report:
                    completed = len(await drill.completed(ids))
                    print(
                        f"{time.monotonic() - t0:6.0f}s sent {n:6d} p50 {pct(latencies, 50):5.1f} ms "
                        f"p99 {pct(latencies, 99):6.1f} ms errors {errors} completed {completed:6d} RSS {stack.rss_mb()}",
                        flush=True,
                    )
                    latencies.clear()
                    next_report += args.every
            await asyncio.gather(*tasks)
        deadline = time.monotonic() + 600
        while (done := await drill.completed(ids)) != ids and time.monotonic() < deadline:
            await asyncio.sleep(1)
        starts, _ = drill.steps()
        print(
            f"{len(ids)} alerts: completed {len(done)}, lost {len(ids - done)}, "
            f"twice {sum(1 for i in ids if starts[i] > 1)}, errors {errors}, dlq {await drill.dlq_size()}, "
            f"died {stack.dead() or 'none'}"
        )
        print(f"RSS (MB) at start {start_rss}, at end {stack.rss_mb()}")
    finally:
        stack.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=None)
    parser.add_argument("--probe", type=int, default=1000)
    parser.add_argument("--every", type=float, default=60)
    asyncio.run(main(parser.parse_args()))
