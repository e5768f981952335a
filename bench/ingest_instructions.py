"""Instructions per request: the gateway against the bare handler, counted by valgrind's callgrind.

`bench/ingest.py` measures requests/s and CPU time per request, which on a shared 2-core machine
move 20-40 % between runs of the same code. The number of instructions a server executes per
request does not: two runs agree to about 0.2 %. This benchmark starts each server (the bare
handler of bench/ingest.py, then `hookline gateway`) under callgrind with instrumentation off,
warms it up, then counts the instructions of exactly `--requests` requests (64 at a time, the
1-alert notification of bench/ingest.py) and prints them side by side, split by the library
that executed them. Instructions are not time (cache misses and branch mispredictions are not in
them), so it shows where the work is, not how long it takes: the ratio to watch is the one
bench/ingest.py prints.

Needs valgrind (Debian package `valgrind`; `make bench` installs it).

    .venv/bin/python bench/ingest_instructions.py [--requests 2000] [--keep-profiles DIR]

`--keep-profiles DIR` copies the two callgrind profiles there (bare.callgrind, gateway.callgrind)
for reading by function: `callgrind_annotate --inclusive=yes DIR/gateway.callgrind`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import notification, scratch_kafka, start_server, wait_ready  # noqa: E402
from bench.stack import quiet_logs  # noqa: E402
from hookline.kafka import ensure_topics  # noqa: E402
from hookline.settings import KafkaSettings  # noqa: E402
from hookline.stack import KafkaServer, free_port  # noqa: E402

CONCURRENCY = 64
WARM_UP = 600


async def send(url: str, body: bytes, requests: int) -> int:
    """POST `body` `requests` times, CONCURRENCY at a time; the number answered 202."""
    accepted = 0
    left = requests
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def client() -> None:
            nonlocal left, accepted
            while left > 0:
                left -= 1
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    accepted += r.status == 202

        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return accepted


def callgrind(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def latest_profile(folder: Path, kind: str) -> Path | None:
    """The dump callgrind_control -d just wrote (callgrind numbers its dumps)."""
    profiles = sorted(folder.glob(f"{kind}.callgrind*"), key=lambda p: p.stat().st_mtime)
    return profiles[-1] if profiles else None


def by_library(profile: Path) -> dict[str, int]:
    """Instructions per shared object (the interpreter, orjson, pydantic-core, libc, ...)."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", str(profile)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    totals: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([\d. %]+\)\s+(.*)", line)
        if m is None or "PROGRAM TOTALS" in line:
            continue
        obj = re.search(r"\[([^\]]*)\]\s*$", m.group(2))
        name = (
            obj.group(1).rsplit("/", 1)[-1].split(".cpython")[0].split(".abi3")[0] if obj else "interpreter (inlined)"
        )
        totals[name] += int(m.group(1).replace(",", ""))
    return dict(totals)


async def measure(kind: str, kafka: KafkaServer, requests: int, tmp: Path, keep: Path | None) -> dict[str, int]:
    settings = KafkaSettings(
        bootstrap_servers=kafka.bootstrap_servers, topic_prefix=f"instr-{kind}-{time.time_ns()}", events_partitions=6
    )
    await ensure_topics(settings)
    port = free_port()
    out = tmp / f"{kind}.callgrind"
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    proc = start_server(kind, kafka, settings, port, wrap=valgrind)
    try:
        await wait_ready(f"http://127.0.0.1:{port}/readyz", timeout=600)  # slow under valgrind
        url = f"http://127.0.0.1:{port}/hooks/alertmanager"
        body = notification()
        await send(url, body, WARM_UP)
        callgrind(proc.pid, "-i", "on")
        accepted = await send(url, body, requests)
        callgrind(proc.pid, "-i", "off")
        callgrind(proc.pid, "-d")
        profile = latest_profile(tmp, kind)
        if accepted != requests or profile is None:
            raise RuntimeError(f"{kind}: {accepted} of {requests} answered 202, profile {profile}")
        if keep is not None:
            shutil.copyfile(profile, keep / f"{kind}.callgrind")
        return by_library(profile)
    finally:
        proc.terminate()
        proc.wait(60)


def report(results: dict[str, dict[str, int]], requests: int) -> None:
    per = {kind: {lib: n / requests / 1000 for lib, n in libs.items()} for kind, libs in results.items()}
    totals = {kind: sum(libs.values()) for kind, libs in per.items()}
    print(f"\nInstructions per request (thousands), {requests} requests, {CONCURRENCY} at a time, callgrind\n")
    print(f"{'executed by':<28}{'bare':>10}{'gateway':>10}{'gateway - bare':>16}")
    libraries = sorted(set(per["bare"]) | set(per["gateway"]), key=lambda lib: -per["gateway"].get(lib, 0))
    for lib in libraries:
        b, g = per["bare"].get(lib, 0.0), per["gateway"].get(lib, 0.0)
        if max(b, g) >= 1.0:
            print(f"{lib[:27]:<28}{b:>10.1f}{g:>10.1f}{g - b:>16.1f}")
    print(f"{'total':<28}{totals['bare']:>10.1f}{totals['gateway']:>10.1f}{totals['gateway'] - totals['bare']:>16.1f}")
    print(
        f"\nbare / gateway instructions: {totals['bare'] / totals['gateway']:.2f}x "
        "(the work each does per request; bench/ingest.py gives the rate)"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--keep-profiles", type=Path, help="copy the two callgrind profiles into this folder")
    args = parser.parse_args()
    quiet_logs()
    if args.keep_profiles is not None:
        args.keep_profiles.mkdir(parents=True, exist_ok=True)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind); `make bench` installs it", file=sys.stderr)
        return 2
    async with scratch_kafka("hookline-instructions-") as (kafka, tmp):
        results = {
            kind: await measure(kind, kafka, args.requests, tmp, args.keep_profiles) for kind in ("bare", "gateway")
        }
    report(results, args.requests)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
