"""Per source kind: the same ~1.2 KB JSON body sent to one gateway as each kind of source, and the
CPU cost of checking credentials and signatures measured in-process. Used by bench/ingest.py."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import time
import timeit
from collections.abc import Callable
from typing import Any

from multidict import CIMultiDict

TOKEN = "bench-bearer-token-0123456789"
GITHUB_SECRET = "bench-github-secret-0123"
WHSEC_KEY = b"bench-standard-webhooks-key-0123"
WHSEC = "whsec_" + base64.b64encode(WHSEC_KEY).decode()

#: Source name → its configuration (HOOKLINE_GATEWAY__SOURCES of the gateway under test).
SOURCES: dict[str, Any] = {
    "alertmanager": "alertmanager",
    "alertmanager-bearer": {"kind": "alertmanager", "auth": {"bearer": [{"value": TOKEN}]}},
    "json": "json",
    "json-keyed": {"kind": "json", "dedupe_header": "X-Request-Id", "type_field": "status"},
    "cloudevents": "cloudevents",
    "github": {"kind": "github", "secrets": [{"value": GITHUB_SECRET}]},
    "standard-webhooks": {"kind": "standard-webhooks", "secrets": [{"value": WHSEC}]},
}
DESCRIPTIONS = {
    "alertmanager": "alertmanager, no auth (the baseline)",
    "alertmanager-bearer": "alertmanager + bearer token",
    "json": "json, dedupe key = body hash",
    "json-keyed": "json, key from header, type from field",
    "cloudevents": "cloudevents, binary mode",
    "github": "github, X-Hub-Signature-256",
    "standard-webhooks": "standard-webhooks, v1 signature",
}


def github_signature(body: bytes) -> str:
    return "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()


def standard_signature(msg_id: str, stamp: str, body: bytes) -> str:
    digest = hmac.new(WHSEC_KEY, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers_for(source: str, body: bytes) -> dict[str, str]:
    """The request headers of `source`'s kind; signed now (Standard Webhooks' tolerance is 300 s)."""
    headers = {"Content-Type": "application/json"}
    if source == "alertmanager-bearer":
        headers["Authorization"] = f"Bearer {TOKEN}"
    elif source == "json-keyed":
        headers["X-Request-Id"] = "req-0001"
    elif source == "cloudevents":
        headers |= {"ce-specversion": "1.0", "ce-id": "bench-1", "ce-source": "/bench", "ce-type": "dev.bench"}
    elif source == "github":
        headers |= {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "X-Hub-Signature-256": github_signature(body),
        }
    elif source == "standard-webhooks":
        stamp = str(int(time.time()))
        headers |= {
            "webhook-id": "msg_bench",
            "webhook-timestamp": stamp,
            "webhook-signature": standard_signature("msg_bench", stamp, body),
        }
    return headers


def check_costs(body: bytes) -> dict[str, float]:
    """Microseconds per request spent checking credentials / signatures, in this process."""
    from gateway.settings import GatewayOptions
    from gateway.sources import build_sources

    sources = build_sources(GatewayOptions.model_validate({"sources": SOURCES}).sources)
    costs: dict[str, float] = {}
    for name in ("alertmanager-bearer", "github", "standard-webhooks"):
        guard, headers = sources[name].guard, CIMultiDict(headers_for(name, body))

        def check(guard: Any = guard, headers: CIMultiDict[str] = headers) -> None:
            guard.check_headers(headers)
            guard.check_body(headers, body)

        costs[name] = _per_call_us(check)
    return costs


def parse_costs(body: bytes) -> dict[str, float]:
    """Microseconds per request to parse the body into events, per source (no Kafka)."""
    from gateway.settings import GatewayOptions
    from gateway.sources import build_sources

    sources = build_sources(GatewayOptions.model_validate({"sources": SOURCES}).sources)
    costs: dict[str, float] = {}
    for name, source in sources.items():
        headers = CIMultiDict(headers_for(name, body))
        costs[name] = _per_call_us(functools.partial(source.parse, body, headers))
    return costs


def _per_call_us(call: Callable[[], Any], number: int = 2000) -> float:
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def report_kinds(
    kinds: dict[str, Any], bare: dict[str, Any], parse_us: dict[str, float], check_us: dict[str, float]
) -> None:
    runs = kinds["runs"]
    base = runs["alertmanager"]["rps"]
    print("\nPer source kind: the same body to one gateway, full speed, wrk -t1; parse and check: CPU per request")
    print(f"{'source':<42}{'max req/s':>10}{'vs am':>7}{'p50 ms':>8}{'p99 ms':>8}{'parse us':>10}{'check us':>10}")
    print(
        f"{'bare handler (earlier run, same Kafka)':<42}{bare['max']['rps']:>10.0f}{'':>7}"
        f"{bare['max']['p50']:>8.2f}{bare['max']['p99']:>8.2f}"
    )
    for name, run in runs.items():
        check = f"{check_us[name]:>10.1f}" if name in check_us else f"{'-':>10}"
        print(
            f"{DESCRIPTIONS[name]:<42}{run['rps']:>10.0f}{run['rps'] / base:>7.2f}{run['p50']:>8.2f}{run['p99']:>8.2f}"
            f"{parse_us[name]:>10.1f}{check}"
        )
    ok = kinds["accepted_202"] == kinds["records_in_kafka"]
    print(
        f"kinds: 202s answered {kinds['accepted_202']} == records in Kafka {kinds['records_in_kafka']}: "
        f"{'OK' if ok else 'MISMATCH'}"
    )
    for name, run in runs.items():
        if run["non2xx"] or run["socket_errors"]:
            print(f"{name}: non-2xx {run['non2xx']}, socket errors {run['socket_errors']}")
