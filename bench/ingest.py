"""Ingest benchmark: concurrent clients POST real Alertmanager notifications to the gateway.

Starts its own Kafka (KRaft, temporary) and two servers on the same topic settings: the bare
baseline handler (bench/bare_handler.py) and the Hookline gateway, each in its own process. It runs
wrk (Debian package `wrk`) at full speed against each in turn, --rounds times (a slow stretch of a
shared machine then lands on both alike; each is taken at its best round, and every round is
printed), then each at 80 % of its best rate, and prints accepted requests/s, p50/p99 latency, the
gateway's RSS over the run, and checks that the number of 202s the server answered equals the
records that landed in Kafka.

Then, per source kind (bench/ingest_kinds.py), one more gateway with a source of each kind gets the
same body at full speed, one kind after the other, and the CPU cost of parsing and of checking
credentials and signatures is measured in-process: the kinds' figures next to the baseline's.

    make bench          # or: .venv/bin/python bench/ingest.py [--seconds 10] [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest_kinds import SOURCES, check_costs, headers_for, parse_costs, report_kinds  # noqa: E402
from bench.stack import cpu_s, quiet_logs  # noqa: E402
from hookline.kafka import create_consumer, ensure_topics, topic_partitions  # noqa: E402
from hookline.settings import KafkaSettings  # noqa: E402
from hookline.stack import KafkaServer, free_port  # noqa: E402


def notification() -> bytes:
    """A 1-alert notification of about 1.2 KB, as Alertmanager 0.25 sends it."""
    doc = json.loads((ROOT / "tests" / "data" / "alertmanager-firing.json").read_text())
    doc["alerts"] = doc["alerts"][:1]
    doc["alerts"][0]["annotations"]["description"] = (
        "The checkout service has answered more than 5% of requests with 5xx for the last 5 minutes; "
        "see the runbook for the usual causes and the dashboards linked from it."
    )
    doc["commonLabels"]["team"] = "payments"
    doc["alerts"][0]["labels"]["team"] = "payments"
    doc["alerts"][0]["labels"]["cluster"] = "prod-eu-west-1"
    doc["alerts"][0]["labels"]["namespace"] = "checkout"
    return json.dumps(doc).encode()


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_script(body: bytes, path: Path, delay_ms: float | None, headers: dict[str, str] | None = None) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = {lua_string(body.decode())}"]
    for name, value in (headers or {"Content-Type": "application/json"}).items():
        lines.append(f"wrk.headers[{lua_string(name)}] = {lua_string(value)}")
    if delay_ms is not None:
        lines.append(f"function delay() return {delay_ms:.3f} end")
    path.write_text("\n".join(lines) + "\n")
    return path


def parse_wrk(out: str) -> dict[str, float]:
    def latency(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": rps,
        "total": total,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
        "p50": latency("50"),
        "p99": latency("99"),
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(url)


async def records_on(settings: KafkaSettings, topic: str) -> int:
    consumer = create_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        ends = await consumer.end_offsets(tps)
        return sum(ends.values())
    finally:
        await consumer.stop()


async def server_accepted(kind: str, port: int) -> int:
    async with aiohttp.ClientSession() as session:
        if kind == "bare":
            async with session.get(f"http://127.0.0.1:{port}/count") as r:
                return int((await r.json())["accepted"])
        async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
            text = await r.text()
    m = re.search(r'hookline_gateway_requests_total\{source="alertmanager",status="202"\} ([\d.e+]+)', text)
    return int(float(m.group(1))) if m else 0


def run_wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(out)


@contextlib.asynccontextmanager
async def scratch_kafka(prefix: str) -> AsyncIterator[tuple[KafkaServer, Path]]:
    """A Kafka broker of the benchmark's own in a new temporary folder (the benchmark's scratch
    space too), stopped and the folder removed when the block ends."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    kafka = KafkaServer(tmp / "kafka", ROOT / ".cache", port=free_port(), controller_port=free_port())
    await kafka.start()
    try:
        yield kafka, tmp
    finally:
        kafka.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def start_server(
    kind: str, kafka: KafkaServer, settings: KafkaSettings, port: int, *, wrap: list[str] | None = None, **env: str
) -> subprocess.Popen[bytes]:
    """The bare handler, or the gateway (`hookline gateway`), in a process of its own; `wrap` is a
    command to run it under (bench/ingest_instructions.py: valgrind), its output then discarded."""
    environment = dict(
        os.environ,
        HOOKLINE_KAFKA__BOOTSTRAP_SERVERS=kafka.bootstrap_servers,
        HOOKLINE_KAFKA__TOPIC_PREFIX=settings.topic_prefix,
        HOOKLINE_GATEWAY__PORT=str(port),
        HOOKLINE_LOG__FORMAT="json",
        HOOKLINE_LOG__LEVEL="warning",
        **env,
    )
    argv = (
        [
            sys.executable,
            str(ROOT / "bench" / "bare_handler.py"),
            "--port",
            str(port),
            "--bootstrap",
            kafka.bootstrap_servers,
            "--topic",
            settings.events_topic,
        ]
        if kind == "bare"
        else [sys.executable, "-m", "hookline.cli", "gateway"]
    )
    if wrap:
        return subprocess.Popen(
            [*wrap, *argv], env=environment, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    return subprocess.Popen(argv, env=environment, cwd=ROOT)


class Target:
    """One server (the bare handler or the gateway) on its own topics, for the length of the bench."""

    def __init__(self, kind: str, kafka: KafkaServer, tmp: Path) -> None:
        self.kind, self.kafka, self.tmp = kind, kafka, tmp
        self.settings = KafkaSettings(
            bootstrap_servers=kafka.bootstrap_servers,
            topic_prefix=f"bench-{kind}-{int(time.time())}",
            events_partitions=6,
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/alertmanager"
        self.body = notification()
        self.full = wrk_script(self.body, tmp / f"{kind}-full.lua", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.rss: list[float] = []

    async def start(self, connections: int) -> None:
        await ensure_topics(self.settings)
        self.proc = start_server(self.kind, self.kafka, self.settings, self.port)
        await wait_ready(f"http://127.0.0.1:{self.port}/readyz")
        run_wrk(self.url, self.full, 2, connections)  # warm-up
        self.rss.append(rss_mb(self.pid))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def at_full_speed(self, seconds: int, connections: int) -> dict[str, float]:
        cpu_before = cpu_s(self.pid)
        run = run_wrk(self.url, self.full, seconds, connections)
        # The server's own CPU per answered request: unlike req/s, it hardly moves when other
        # processes share the machine (they take cores away, not work from each request).
        run["cpu_us"] = (cpu_s(self.pid) - cpu_before) / max(run["total"], 1) * 1e6
        self.rss.append(rss_mb(self.pid))
        return run

    async def paced(self, maximum: dict[str, float], seconds: int, connections: int) -> dict[str, Any]:
        """At 80 % of `maximum`: each connection waits so that together they send at that rate;
        then the 202s the server answered against the records that landed."""
        target = 0.8 * maximum["rps"]
        delay_ms = max(0.0, connections / target * 1000 - maximum["p50"])
        script = self.tmp / f"{self.kind}-paced.lua"
        for _ in range(2):  # calibrate the per-connection delay on short runs
            probe = run_wrk(self.url, wrk_script(self.body, script, delay_ms), 3, connections)
            delay_ms = max(0.0, delay_ms + connections * 1000 * (1 / target - 1 / probe["rps"]))
        paced = run_wrk(self.url, wrk_script(self.body, script, delay_ms), seconds, connections)
        self.rss.append(rss_mb(self.pid))
        await asyncio.sleep(1)  # let in-flight requests cut off by wrk's stop finish
        return {
            "kind": self.kind,
            "max": maximum,
            "paced": paced,
            "target_rps": target,
            "rss_mb": self.rss,
            "accepted_202": await server_accepted(self.kind, self.port),
            "records_in_kafka": await records_on(self.settings, self.settings.events_topic),
        }

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


async def bench_targets(kafka: KafkaServer, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The bare handler and the gateway, both up, at full speed in turn for --rounds rounds: a slow
    stretch of a shared machine then lands on both alike, and each is taken at its best round.
    Then each at 80 % of its best."""
    targets = [Target(kind, kafka, tmp) for kind in ("bare", "gateway")]
    try:
        for target in targets:
            await target.start(args.connections)
        rounds: dict[str, list[dict[str, float]]] = {target.kind: [] for target in targets}
        for _ in range(args.rounds):
            for target in targets:
                rounds[target.kind].append(target.at_full_speed(args.seconds, args.connections))
        results = {}
        for target in targets:
            best = max(rounds[target.kind], key=lambda run: run["rps"])
            results[target.kind] = await target.paced(best, args.seconds, args.connections)
            results[target.kind]["rounds"] = rounds[target.kind]
        return results
    finally:
        for target in targets:
            target.stop()


async def bench_kinds(kafka: KafkaServer, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """One gateway with a source of each kind; each gets the same body at full speed in turn."""
    settings = KafkaSettings(
        bootstrap_servers=kafka.bootstrap_servers, topic_prefix=f"bench-kinds-{int(time.time())}", events_partitions=6
    )
    await ensure_topics(settings)
    port = free_port()
    proc = start_server("gateway", kafka, settings, port, HOOKLINE_GATEWAY__SOURCES=json.dumps(SOURCES))
    body = notification()
    try:
        await wait_ready(f"http://127.0.0.1:{port}/readyz")
        runs: dict[str, dict[str, float]] = {}
        for source in SOURCES:
            url = f"http://127.0.0.1:{port}/hooks/{source}"
            script = wrk_script(body, tmp / f"kind-{source}.lua", None, headers_for(source, body))
            run_wrk(url, script, 1, args.connections)  # warm-up
            runs[source] = run_wrk(url, script, args.kind_seconds, args.connections)
        await asyncio.sleep(1)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                text = await r.text()
        accepted = sum(
            int(float(m.group(1)))
            for m in re.finditer(r'hookline_gateway_requests_total\{source="[^"]+",status="202"\} ([\d.e+]+)', text)
        )
        landed = await records_on(settings, settings.events_topic)
        return {"runs": runs, "accepted_202": accepted, "records_in_kafka": landed}
    finally:
        proc.terminate()
        proc.wait(10)


def report(results: dict[str, dict[str, Any]]) -> None:
    print(
        "\nIngest benchmark: 1-alert Alertmanager notifications (~%d bytes), wrk -t1, same machine\n"
        % len(notification())
    )
    print(
        f"{'server':<10}{'max req/s':>11}{'p50 ms':>9}{'p99 ms':>9}  |{'@80% req/s':>12}{'p50 ms':>9}{'p99 ms':>9}"
        f"  |{'RSS MB (start/max/80%)':>24}  {'202s':>8}{'records':>9}"
    )
    for kind in ("bare", "gateway"):
        r = results[kind]
        m, p = r["max"], r["paced"]
        rss = "/".join(f"{x:.0f}" for x in r["rss_mb"])
        print(
            f"{kind:<10}{m['rps']:>11.0f}{m['p50']:>9.2f}{m['p99']:>9.2f}  |{p['rps']:>12.0f}{p['p50']:>9.2f}{p['p99']:>9.2f}"
            f"  |{rss:>24}  {r['accepted_202']:>8}{r['records_in_kafka']:>9}"
        )
    g, b = results["gateway"], results["bare"]
    print()
    for n, (gr, br) in enumerate(zip(g["rounds"], b["rounds"], strict=True), 1):
        print(
            f"round {n} at full speed: bare {br['rps']:.0f} req/s ({br['cpu_us']:.0f} us CPU each), "
            f"gateway {gr['rps']:.0f} req/s ({gr['cpu_us']:.0f} us): {gr['rps'] / br['rps']:.2f}x"
        )
    ratio = g["max"]["rps"] / b["max"]["rps"]
    print(f"gateway / bare handler, max rate, each at its best round: {ratio:.2f}x   (target >= 0.85x)")
    print(
        f"server CPU per request at max: gateway {g['max']['cpu_us']:.0f} us, bare {b['max']['cpu_us']:.0f} us "
        f"(bare / gateway: {b['max']['cpu_us'] / g['max']['cpu_us']:.2f}x; steadier than req/s on a shared machine)"
    )
    print(f"gateway max accepted/s: {g['max']['rps']:.0f}   (target >= 3000)")
    print(f"gateway p99 at 80% of max ({g['paced']['rps']:.0f}/s): {g['paced']['p99']:.2f} ms   (target <= 25 ms)")
    print(f"gateway RSS: {max(g['rss_mb']):.0f} MB max   (target < 150 MB, flat)")
    for kind in ("bare", "gateway"):
        r = results[kind]
        ok = r["accepted_202"] == r["records_in_kafka"]
        print(
            f"{kind}: 202s answered {r['accepted_202']} == records in Kafka {r['records_in_kafka']}: {'OK' if ok else 'MISMATCH'}"
        )
        if r["max"]["non2xx"] or r["paced"]["non2xx"]:
            print(f"{kind}: non-2xx answers: {r['max']['non2xx'] + r['paced']['non2xx']}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="Full-speed runs of each server, in turn.")
    parser.add_argument("--kind-seconds", type=int, default=5, help="Full-speed run per source kind.")
    parser.add_argument("--no-kinds", action="store_true", help="Only the baseline and the Alertmanager source.")
    args = parser.parse_args()
    quiet_logs()
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk); `make bench` installs it", file=sys.stderr)
        return 2
    async with scratch_kafka("hookline-bench-") as (kafka, tmp):
        results = await bench_targets(kafka, args, tmp)
        kinds = None if args.no_kinds else await bench_kinds(kafka, args, tmp)
    report(results)
    checks = [r["accepted_202"] == r["records_in_kafka"] for r in results.values()]
    if kinds is not None:
        body = notification()
        report_kinds(kinds, results["bare"], parse_costs(body), check_costs(body))
        checks.append(kinds["accepted_202"] == kinds["records_in_kafka"])
    return 0 if all(checks) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
