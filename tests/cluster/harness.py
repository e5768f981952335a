"""The cluster drill: the production topology (`hookline.cluster.ClusterStack`: three Kafka
brokers, the Temporal server's four services on PostgreSQL, two gateways, two triggers, two
workers) under a load of alerts sent the way Alertmanager does, while its parts fail one after
another:

- the Kafka broker that leads the most partitions:  SIGKILL, never restarted
- a gateway:                                          SIGKILL, never restarted
- a triggers process:                                 SIGKILL, never restarted
- a worker:                                           SIGKILL, never restarted
- the Temporal server (all four services):            stopped and started again

The load: notifications of several alerts each, paced evenly over `send_s` (Alertmanager sends a
group's notification when it is due, not all at once), each attempt of one to one gateway (the
notification's turn over the gateways, its next retry to the next one, as a load balancer with
retries would), anything but a 2xx retried with backoff until accepted.

Each fault's row: when it happened (seconds after the first send, how much was accepted and done
then), the 503s and refused or timed-out attempts from it to the next fault, and how long the
cluster took to recover from it:

- kafka:     until every partition (internal topics too) has a live leader and at least
             min.insync.replicas in sync, so every write is accepted again
- gateway:   until the first notification refused by the dead gateway was accepted by the other
- triggers:  until the consumer group is stable again with the survivor alone, holding every
             partition
- worker:    until every step in flight on the dead worker (running, or ended with its completion
             not yet reported to Temporal) ran again and ended on the other
- temporal:  until the frontend serves again and a step has completed after it

Then every alert is accounted for as tests/drill does: one run each, every run completed, no
step run twice except those in flight on the killed worker, nothing in the DLQ.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from temporalio.client import Client

from hookline.cluster import ClusterStack
from hookline.kafka import read_topic
from hookline.temporal import connect
from tests.drill.harness import DEFINITION_ID, workflow_ids
from tests.notifications import notification

# The step (bash, for its clock): one line when it starts and one when it ends, each naming the
# worker it ran on and the time.
RECORD = (
    'echo "start $HOOKLINE_WORKFLOW_ID $DRILL_WORKER $EPOCHREALTIME" >> "$DRILL_LOG"; sleep 0.05; '
    'echo "end $HOOKLINE_WORKFLOW_ID $DRILL_WORKER $EPOCHREALTIME" >> "$DRILL_LOG"'
)
DEFINITION = {
    "id": DEFINITION_ID,
    "name": "Cluster drill",
    "trigger": {"type": "webhook", "source": "alertmanager"},
    "steps": [{"name": "record", "agent": "record"}],
}
TRIGGERS_GROUP = "hookline-triggers"


def drill_cluster(base: Path, cache_dir: Path) -> ClusterStack:
    """The cluster the drill runs on, its step log at `base`/steps.log."""
    agents = base / "agents.yaml"
    base.mkdir(parents=True, exist_ok=True)
    agents.write_text(yaml.safe_dump({"agents": {"record": {"command": ["bash", "-c", RECORD], "timeout_s": 60}}}))
    return ClusterStack(
        base,
        cache_dir,
        topic_prefix="cluster",
        task_queue="cluster",
        agents_file=agents,
        env={
            "DRILL_LOG": str(base / "steps.log"),
            "DRILL_WORKER": "{name}",
            "HOOKLINE_WORKER__INHERIT_ENV": '["PATH", "DRILL_LOG", "DRILL_WORKER"]',
            "HOOKLINE_TRIGGERS__TICKER": "false",
            "HOOKLINE_LOG__LEVEL": "warning",
            "HOOKLINE_LOG__FORMAT": "json",
        },
    )


@dataclass
class Steps:
    """The step log: who started and ended which run's step, on which worker, in order."""

    lines: list[tuple[str, str, str]] = field(default_factory=list)  # (start|end, run id, worker)
    times: list[float] = field(default_factory=list)  # of each line, wall clock

    @classmethod
    def read(cls, path: Path) -> Steps:
        steps = cls()
        if path.exists():
            for line in path.read_text().splitlines():
                what, wid, worker, at = [*line.split(" ", 3), "", "", ""][:4]
                steps.lines.append((what, wid, worker))
                steps.times.append(float(at or 0))
        return steps

    def last_end(self, wid: str) -> float:
        return max(t for (what, w, _), t in zip(self.lines, self.times, strict=True) if w == wid and what == "end")

    @property
    def starts(self) -> Counter[str]:
        return Counter(wid for what, wid, _ in self.lines if what == "start")

    @property
    def ends(self) -> Counter[str]:
        return Counter(wid for what, wid, _ in self.lines if what == "end")

    def running_on(self, worker: str) -> set[str]:
        """The runs whose step started on `worker` and has not ended there."""
        running: set[str] = set()
        for what, wid, on in self.lines:
            if on == worker:
                (running.add if what == "start" else running.discard)(wid)
        return running

    def rerun_after_a_kill(self, worker: str, killed_at_line: int) -> set[str]:
        """The runs whose step ran twice because `worker` was killed with it in flight: started
        once on `worker` before the kill (running, or ended but its completion not yet reported
        to Temporal) and once more after it, elsewhere, and no more."""
        rerun = set()
        for wid, count in self.starts.items():
            if count != 2:
                continue
            first, second = [(i, on) for i, (what, w, on) in enumerate(self.lines) if w == wid and what == "start"]
            if first[1] == worker and first[0] < killed_at_line <= second[0] and second[1] != worker:
                rerun.add(wid)
        return rerun


@dataclass
class Attempt:
    at: float  # seconds after the first send
    notification: int
    gateway: int
    status: int  # 0: refused, reset or timed out


@dataclass
class Fault:
    part: str
    at_s: float  # planned, seconds after the first send
    happened_s: float = 0.0
    accepted_pct: float = 0.0
    done_pct: float = 0.0
    recover_s: float | None = None
    answers: Counter[int] = field(default_factory=Counter)
    note: str = ""

    @property
    def moment(self) -> str:
        return f"t={self.happened_s:5.1f}s  {self.accepted_pct:3.0f}% sent {self.done_pct:3.0f}% done"

    def row(self) -> str:
        recover = f"{self.recover_s:10.1f}" if self.recover_s is not None else f"{'-':>10}"
        return f"{self.part:<23}{self.moment:<32}{self.answers[503]:>6}{self.answers[0]:>9}{recover}" + (
            f"  {self.note}" if self.note else ""
        )

    @staticmethod
    def header() -> str:
        return f"{'part':<23}{'moment':<32}{'503s':>6}{'refused':>9}{'recover s':>10}"


@dataclass
class Outcome:
    alerts: int
    runs: int
    completed: int
    extra: int
    lost: int
    twice: set[str]
    rerun_allowed: set[str]  # Steps.rerun_after_a_kill of the killed worker
    running_at_kill: set[str]  # of those, the steps still running when it was killed
    dlq: int
    died: list[str]
    answers: Counter[int]
    faults: list[Fault]
    send_s: float
    done_s: float

    def table(self) -> list[str]:
        lines = [Fault.header(), *(f.row() for f in self.faults)]
        lines.append(
            f"{self.alerts} alerts: {self.runs} runs, {self.completed} completed, {self.lost} lost, "
            f"{self.extra} extra, {len(self.twice)} steps run twice ({len(self.rerun_allowed)} in flight on the killed "
            f"worker: {len(self.running_at_kill)} running, {len(self.rerun_allowed - self.running_at_kill)} ended but "
            f"not reported), {self.dlq} in the DLQ; all sent in {self.send_s:.0f}s, all done {self.done_s:.0f}s "
            f"after the first send; answers {dict(sorted(self.answers.items()))}"
        )
        return lines


@dataclass
class ClusterDrill:
    stack: ClusterStack
    notifications: int = 100
    alerts_per_notification: int = 10
    send_s: float = 60.0
    settle_timeout_s: float = 600.0
    attempts: list[Attempt] = field(default_factory=list)
    accepted: set[int] = field(default_factory=set)
    t0: float = 0.0
    client: Client | None = None

    @property
    def step_log(self) -> Path:
        return self.stack.base / "steps.log"

    def now(self) -> float:
        return time.monotonic() - self.t0

    # The load.

    async def _send(self, session: aiohttp.ClientSession, n: int, doc: dict[str, Any]) -> None:
        """As Alertmanager: retry whatever is not a 2xx, with backoff, until it is accepted."""
        urls = self.stack.gateway_urls
        delay = 0.2
        deadline = time.monotonic() + self.settle_timeout_s
        for attempt in range(10_000):
            gateway = (n + attempt) % len(urls)
            try:
                async with session.post(
                    f"{urls[gateway]}/hooks/alertmanager", json=doc, timeout=aiohttp.ClientTimeout(total=10)
                ) as response:
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            self.attempts.append(Attempt(self.now(), n, gateway, status))
            if 200 <= status < 300:
                self.accepted.add(n)
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"notification {n} was never accepted")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _send_all(self, docs: list[dict[str, Any]]) -> None:
        interval = self.send_s / len(docs)
        async with aiohttp.ClientSession() as session:
            tasks = []
            for n, doc in enumerate(docs):
                await asyncio.sleep(max(0.0, self.t0 + n * interval - time.monotonic()))
                tasks.append(asyncio.create_task(self._send(session, n, doc)))
            await asyncio.gather(*tasks)

    # The faults, each returning how long the cluster took to recover from it.

    async def _kill_broker(self, fault: Fault) -> float:
        node = await self.stack.kafka.leader_of_most_partitions()
        fault.part = f"kafka broker {node}"
        led = sum(1 for p in await self.stack.kafka.partitions_of() if p["leader"] == node)
        fault.note = f"led {led} partitions"
        self._mark(fault)
        killed = time.monotonic()
        self.stack.kafka.broker(node).kill()
        min_insync = 2

        async def writable() -> bool:
            partitions = await self.stack.kafka.partitions_of()
            return all(p["leader"] not in (-1, node) and len(set(p["isr"]) - {node}) >= min_insync for p in partitions)

        await _until(writable, 120)
        return time.monotonic() - killed

    async def _kill_gateway(self, fault: Fault) -> float:
        index = 0
        self._mark(fault)
        killed_at = self.now()
        self.stack.components["gateway-1"].process.kill()
        # Recovered once a notification the dead gateway refused was taken by the other one.
        while True:
            refused = [a for a in self.attempts if a.at >= killed_at and a.gateway == index and a.status == 0]
            if refused:
                first = refused[0]
                taken = [a for a in self.attempts if a.notification == first.notification and 200 <= a.status < 300]
                if taken:
                    return taken[0].at - killed_at
            if self.now() > killed_at + 120:
                raise TimeoutError("no notification refused by the dead gateway was taken by the other")
            await asyncio.sleep(0.1)

    async def _kill_triggers(self, fault: Fault) -> float:
        from aiokafka.admin import AIOKafkaAdminClient

        self._mark(fault)
        killed = time.monotonic()
        self.stack.components["triggers-1"].process.kill()

        async def survivor_alone() -> bool:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.stack.kafka.bootstrap_servers, request_timeout_ms=3000)
            await admin.start()
            try:
                (response,) = await admin.describe_consumer_groups([TRIGGERS_GROUP])
            finally:
                await admin.close()
            (group,) = response.to_object()["groups"]
            members = {m["client_id"] for m in group["members"]}
            return bool(group["state"] == "Stable" and members == {"triggers-2"})

        await _until(survivor_alone, 120)
        return time.monotonic() - killed

    async def _kill_worker(self, fault: Fault) -> tuple[float, set[str], int, float]:
        self._mark(fault)
        killed = time.monotonic()
        killed_wall = time.time()
        self.stack.components["worker-1"].process.kill()
        at_kill = Steps.read(self.step_log)
        in_flight = at_kill.running_on("worker-1")
        done_before = sum(at_kill.ends.values())
        fault.note = f"{len(in_flight)} steps running on it"

        async def rerun() -> bool:
            steps = Steps.read(self.step_log)
            if in_flight:
                return all(steps.ends[wid] for wid in in_flight)
            return sum(steps.ends.values()) > done_before

        await _until(rerun, 180)
        return time.monotonic() - killed, in_flight, len(at_kill.lines), killed_wall

    async def _restart_temporal(self, fault: Fault) -> float:
        self._mark(fault)
        began = time.monotonic()
        await self.stack.temporal.stop_services()
        stopped = time.monotonic()
        await self.stack.temporal.start_services()
        serving = time.monotonic()
        ends = len(Steps.read(self.step_log).ends)
        fault.note = f"stopped in {stopped - began:.1f}s, serving again {serving - stopped:.1f}s later"

        async def a_step_completed() -> bool:
            return len(Steps.read(self.step_log).ends) > ends

        await _until(a_step_completed, 120)
        return time.monotonic() - began

    def _mark(self, fault: Fault) -> None:
        fault.happened_s = self.now()
        fault.accepted_pct = 100 * len(self.accepted) / self.notifications
        steps = Steps.read(self.step_log)
        fault.done_pct = 100 * len(steps.ends) / (self.notifications * self.alerts_per_notification)

    # The drill.

    async def run(self) -> Outcome:
        self.client = await connect(self.stack.temporal_settings)
        tag = os.urandom(4).hex()
        docs = [notification(self.alerts_per_notification, f"{tag}-{n}") for n in range(self.notifications)]
        ids = {wid for doc in docs for wid in workflow_ids(doc)}
        step = self.send_s / 5
        faults = [
            Fault("kafka broker", step * 0.6),
            Fault("gateway-1", step * 1.6),
            Fault("triggers-1", step * 2.6),
            Fault("worker-1", step * 3.6),
            Fault("temporal (4 services)", step * 4.6),
        ]
        actions = [
            self._kill_broker,
            self._kill_gateway,
            self._kill_triggers,
            self._kill_worker,
            self._restart_temporal,
        ]
        self.t0 = time.monotonic()
        sending = asyncio.create_task(self._send_all(docs))
        recoveries: list[asyncio.Task[Any]] = []
        for fault, action in zip(faults, actions, strict=True):
            await asyncio.sleep(max(0.0, self.t0 + fault.at_s - time.monotonic()))
            recoveries.append(asyncio.create_task(action(fault)))
            await asyncio.sleep(0.5)  # the fault has happened (and been marked) before the next one
        await sending
        send_s = self.now()
        results = await asyncio.gather(*recoveries, return_exceptions=True)
        in_flight: set[str] = set()
        killed_at_line, killed_wall = 0, 0.0
        worker = faults[3]
        for fault, result in zip(faults, results, strict=True):
            if isinstance(result, BaseException):
                fault.note = f"{fault.note}; not recovered: {result!r}".lstrip("; ")
            elif isinstance(result, tuple):
                fault.recover_s, in_flight, killed_at_line, killed_wall = result
            else:
                fault.recover_s = result
        completed = await self._until_completed(ids)
        done_s = self.now()
        for fault, after in zip(faults, [*faults[1:], None], strict=True):
            end = after.happened_s if after else float("inf")
            fault.answers = Counter(a.status for a in self.attempts if fault.happened_s <= a.at < end)
        await asyncio.sleep(2.0)  # a duplicate start would show up now
        runs = await self._runs()
        steps = Steps.read(self.step_log)
        twice = {wid for wid in ids if steps.starts[wid] > 1}
        rerun = steps.rerun_after_a_kill("worker-1", killed_at_line) if killed_at_line else set()
        if rerun and worker.recover_s is not None:
            # Steps that had ended but were not reported ran again too: recovered once the last one ended.
            worker.recover_s = max(worker.recover_s, max(steps.last_end(wid) for wid in rerun) - killed_wall)
            worker.note += f", {len(rerun - in_flight)} ended but not reported"
        return Outcome(
            alerts=len(ids),
            runs=len(runs & ids),
            completed=len(completed),
            extra=len(runs - ids),
            lost=len(ids - completed),
            twice=twice,
            rerun_allowed=rerun,
            running_at_kill=in_flight,
            dlq=await self._dlq_size(),
            died=self.stack.dead(),
            answers=Counter(a.status for a in self.attempts),
            faults=faults,
            send_s=send_s,
            done_s=done_s,
        )

    async def _until_completed(self, ids: set[str]) -> set[str]:
        deadline = time.monotonic() + self.settle_timeout_s

        async def every_step_ended() -> bool:
            return ids <= set(Steps.read(self.step_log).ends)

        await _until(every_step_ended, self.settle_timeout_s, pause=1.0)
        completed: set[str] = set()
        while time.monotonic() < deadline:
            completed = await self._runs("Completed") & ids
            if completed == ids:
                break
            await asyncio.sleep(1.0)
        return completed

    async def _runs(self, status: str | None = None) -> set[str]:
        assert self.client is not None
        query = f"HooklineDefinitionId = '{DEFINITION_ID}'"
        if status:
            query += f" AND ExecutionStatus = '{status}'"
        return {w.id async for w in self.client.list_workflows(query)}

    async def _dlq_size(self) -> int:
        settings = self.stack.kafka_settings
        return len([record async for record in read_topic(settings, settings.dlq_topic)])


async def _until(check: Any, timeout: float, pause: float = 0.25) -> None:
    """Call `check()` until it is true; errors (a broker going away, a server restarting) count as
    not yet. TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if await check():
                return
        except Exception as exc:
            last = exc
        await asyncio.sleep(pause)
    raise TimeoutError(f"{check.__qualname__} not true after {timeout:g}s (last error: {last})")


def write_table(path: Path, outcome: Outcome) -> None:
    path.write_text("\n".join(outcome.table()) + "\n")
    (path.with_suffix(".json")).write_text(
        json.dumps(
            {
                "faults": [
                    {
                        "part": f.part,
                        "at_s": round(f.happened_s, 1),
                        "sent_pct": round(f.accepted_pct),
                        "done_pct": round(f.done_pct),
                        "503s": f.answers[503],
                        "refused": f.answers[0],
                        "recover_s": round(f.recover_s, 1) if f.recover_s is not None else None,
                        "note": f.note,
                    }
                    for f in outcome.faults
                ],
                "alerts": outcome.alerts,
                "send_s": round(outcome.send_s, 1),
                "done_s": round(outcome.done_s, 1),
            },
            indent=2,
        )
    )
