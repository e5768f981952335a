"""Storm: a burst of alerts much larger than the stack can run at once, accounted for one by one.

Starts the drill stack (Kafka with data on disk, the Temporal dev server on a SQLite file,
`hookline gateway`, `triggers` and `worker` as processes), then sends --alerts alerts in
Alertmanager notifications of 1 to 100 alerts (random sizes, --senders at a time, anything but a
2xx retried with backoff, as Alertmanager does), and waits until every run has completed.
Prints what the gateway answered (it must shed load with 503, never a 4xx), the time until the
last run started and completed, and the accounting of tests/drill: lost, twice, extra, DLQ.

    .venv/bin/python bench/storm.py [--alerts 10000] [--senders 32]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.drill.harness import Drill, DrillStack, workflow_ids  # noqa: E402
from tests.notifications import notification  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    stack = DrillStack(Path(tempfile.mkdtemp(prefix="hookline-storm-")))
    await stack.start()
    try:
        rng = random.Random(args.seed)
        sizes: list[int] = []
        while sum(sizes) < args.alerts:
            sizes.append(min(rng.randint(1, 100), args.alerts - sum(sizes)))
        docs = [notification(size, f"storm-{n}") for n, size in enumerate(sizes)]
        drill = Drill(stack, senders=args.senders, settle_timeout_s=args.timeout)
        t0 = time.monotonic()
        outcome = await drill.run(None, docs=docs)
        elapsed = time.monotonic() - t0
        ids = {wid for doc in docs for wid in workflow_ids(doc)}
        span = await drill.start_span(ids)
        answers = ", ".join(f"{'no answer' if s == 0 else s}: {n}" for s, n in sorted(outcome.answers.items()))
        print(
            f"Storm on the drill stack (Temporal dev server on SQLite, Kafka 4.1 KRaft); 2 cores; {datetime.now(UTC):%Y-%m-%d}"
        )
        print(f"{outcome.alerts} alerts in {len(docs)} notifications of 1-100, {args.senders} senders")
        print(f"gateway answers: {answers}")
        print(
            f"last run started {span:.1f}s after the first; all {outcome.completed} completed {elapsed:.1f}s after the first send"
        )
        print(
            f"lost {outcome.lost}, twice {outcome.twice}, extra {outcome.extra}, dlq {outcome.dlq}, died {outcome.died or 'none'}"
        )
        print(f"RSS at the end (MB): {stack.rss_mb()}")
    finally:
        stack.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--senders", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
