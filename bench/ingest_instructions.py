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

`--simulate` has callgrind simulate the caches and the branch predictor too (about twice as
slow) and prints, per request, the misses of each and an estimate of the cycles they add up to
(KCachegrind's: instructions + 10 per first-level miss and per mispredicted branch + 100 per
last-level miss), with 32 KB first-level caches and a 512 KB last level on every machine.
Instructions alone miss what a larger heap and more code cost in time; the simulated machine is
a model, not this machine's caches, so it shows the kind of cost, not its exact size.
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


#: The simulated caches, the same on every machine (callgrind would take the host's, and a
#: server CPU's last level holds every byte these servers touch): 32 KB first-level caches and a
#: 512 KB last level, a core's own second-level cache, beyond which a miss goes off the core.
SIMULATED_CACHES = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=524288,8,64")
#: Misses as callgrind names them, by what they are counted as here.
MISSES = {
    "first-level misses (I1 + D1)": ("I1mr", "D1mr", "D1mw"),
    "last-level misses": ("ILmr", "DLmr", "DLmw"),
    "mispredicted branches": ("Bcm", "Bim"),
}


def program_totals(profile: Path) -> dict[str, int]:
    """Every event callgrind counted in the profile (Ir, and with --simulate the misses), in all."""
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", str(profile)], capture_output=True, text=True, check=True
    ).stdout
    events = re.search(r"^Events shown:\s+(.*)$", text, re.M)
    totals = re.search(r"^(.*)PROGRAM TOTALS", text, re.M)
    if events is None or totals is None:
        raise RuntimeError(f"no totals in {profile}")
    # Each count is followed by its share: "126,639 (100.0%) 27,899 (100.0%) ... PROGRAM TOTALS".
    numbers = [int(n.replace(",", "")) for n in re.sub(r"\([^)]*\)", " ", totals.group(1)).split()]
    return dict(zip(events.group(1).split(), numbers, strict=True))


def estimated_cycles(events: dict[str, int]) -> int:
    """KCachegrind's cycle estimate from callgrind's counts."""

    def total(names: tuple[str, ...]) -> int:
        return sum(events.get(name, 0) for name in names)

    first, last, branches = (total(names) for names in MISSES.values())
    return events["Ir"] + 10 * first + 100 * last + 10 * branches


def by_library(profile: Path) -> dict[str, int]:
    """Instructions per shared object (the interpreter, orjson, pydantic-core, libc, ...)."""
    text = subprocess.run(
        ["callgrind_annotate", "--show=Ir", "--inclusive=no", "--threshold=100", str(profile)],
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


async def measure(
    kind: str, kafka: KafkaServer, requests: int, tmp: Path, keep: Path | None, simulate: bool
) -> tuple[dict[str, int], dict[str, int]]:
    """Instructions by library, and every event counted in all."""
    settings = KafkaSettings(
        bootstrap_servers=kafka.bootstrap_servers, topic_prefix=f"instr-{kind}-{time.time_ns()}", events_partitions=6
    )
    await ensure_topics(settings)
    port = free_port()
    out = tmp / f"{kind}.callgrind"
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    if simulate:
        valgrind += ["--cache-sim=yes", "--branch-sim=yes", *SIMULATED_CACHES]
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
        return by_library(profile), program_totals(profile)
    finally:
        proc.terminate()
        proc.wait(60)


def report_simulated(events: dict[str, dict[str, int]], requests: int) -> None:
    print("\nSimulated caches and branch predictor (callgrind), per request\n")
    print(f"{'':<32}{'bare':>10}{'gateway':>10}{'gateway / bare':>16}")
    rows = {"instructions": ("Ir",), **MISSES}
    for label, names in rows.items():
        b, g = (sum(events[kind].get(n, 0) for n in names) / requests for kind in ("bare", "gateway"))
        print(f"{label:<32}{b:>10.0f}{g:>10.0f}{g / b if b else float('nan'):>16.2f}")
    b, g = (estimated_cycles(events[kind]) / requests for kind in ("bare", "gateway"))
    print(f"{'estimated cycles':<32}{b:>10.0f}{g:>10.0f}{g / b:>16.2f}")
    print(f"\nbare / gateway estimated cycles: {b / g:.2f}x (the instructions' ratio with what their misses cost)")


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
    parser.add_argument("--simulate", action="store_true", help="simulate the caches and the branch predictor too")
    args = parser.parse_args()
    quiet_logs()
    if args.keep_profiles is not None:
        args.keep_profiles.mkdir(parents=True, exist_ok=True)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind); `make bench` installs it", file=sys.stderr)
        return 2
    async with scratch_kafka("hookline-instructions-") as (kafka, tmp):
        measured = {
            kind: await measure(kind, kafka, args.requests, tmp, args.keep_profiles, args.simulate)
            for kind in ("bare", "gateway")
        }
    report({kind: libraries for kind, (libraries, _) in measured.items()}, args.requests)
    if args.simulate:
        report_simulated({kind: events for kind, (_, events) in measured.items()}, args.requests)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
