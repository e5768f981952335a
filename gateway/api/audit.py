"""The audit log: every write through the API, with who, when, what and the outcome.

Each route that changes something names its action (`Route.audit`); `guarded` records one entry
per request to such a route once it is answered, whatever the answer (a refused write is audited
too, with its status). Entries go to `<prefix>.audit` (Kafka: durable, replicated, kept for
`kafka.audit_retention_days`), keyed by their own id, and each gateway follows the topic to
answer `GET /audit`; so every replica shows every replica's entries.

The entry is written after the answer is decided and before it is sent. If Kafka does not take
it in time the answer is sent anyway (the write it describes has happened, and failing the
request would invite a retry that repeats it): the miss is logged as an error, with the entry.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from gateway.api.auth import Principal
from gateway.api.messages import check_filters, filter_time, json_response, page_by_id, page_limit
from gateway.api.models import AuditEntry, AuditList
from hookline.kafka import TopicView, create_producer, start_client
from hookline.logging import get_logger
from hookline.settings import KafkaSettings

__all__ = ["AuditLog", "entry", "list_audit"]

log = get_logger(__name__)

#: What an entry keeps of a write's answer: what it did (the version written, the runs started,
#: what a bulk action selected), not the documents it sent back.
_KEPT = (
    "id",
    "version",
    "deleted",
    "execution_id",
    "step",  # an approval's decision: which step of the execution
    "run_id",
    "definition_id",
    "definition_version",
    "started",
    "retry_of",
    "status",
    "matched",
    "dry_run",
    "done",
    "failed",
    "replayed",
)
_FILTERS = ("actor", "team", "action", "outcome", "since", "until")


class AuditLog:
    """Writes entries and follows the topic; opened by the API state once Kafka answers."""

    def __init__(self, settings: KafkaSettings, timeout_s: float) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self.view = TopicView(settings, settings.audit_topic)

    async def start(self) -> None:
        producer = create_producer(self._settings)
        await start_client(producer)
        try:
            await self.view.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        await self.view.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def record(self, entry: dict[str, Any]) -> None:
        """Write one entry; a failure is logged, never raised (see the module's docstring)."""
        try:
            if self._producer is None:
                raise KafkaError("the audit log is not open (Kafka unreachable at start)")
            async with asyncio.timeout(self._timeout_s):
                await self._producer.send_and_wait(
                    self._settings.audit_topic, orjson.dumps(entry), key=entry["id"].encode()
                )
        except (KafkaError, TimeoutError) as exc:
            log.error("audit entry not recorded", entry=entry, error=str(exc) or type(exc).__name__)


def entry(
    action: str,
    principal: Principal,
    request: web.Request,
    status: int,
    detail: str | None,
    answer: web.StreamResponse | None = None,
) -> dict[str, Any]:
    """The audit entry of one answered request (`answer`: the handler's, when it gave one)."""
    details: dict[str, Any] = {}
    body = getattr(answer, "body", None)
    if isinstance(body, bytes) and answer is not None and answer.content_type == "application/json":
        document = orjson.loads(body)
        details = {key: document[key] for key in _KEPT if key in document} if isinstance(document, dict) else {}
    return {
        "id": uuid.uuid4().hex,
        "at": datetime.now(UTC).isoformat(),
        "actor": principal.name,
        "team": principal.team,
        "action": action,
        "method": request.method,
        "path": request.path,
        "target": dict(request.match_info),
        "status": status,
        "outcome": "succeeded" if status < 400 else "refused" if status < 500 else "failed",
        "detail": detail,
        "details": details,
    }


async def list_audit(request: web.Request, principal: Principal) -> web.Response:
    """The audit entries the caller may see (its team's; an operator: all), newest first."""
    from gateway.api.state import API  # the state imports this module

    state = request.app[API]
    filters = request.query
    check_filters(filters, _FILTERS, principal, "audit entries")
    since, until = filter_time(filters, "since"), filter_time(filters, "until")
    limit = page_limit(request, state.options.page_size, state.options.max_page_size)
    entries = [AuditEntry.model_validate_json(raw) for raw in state.audit().view.values()]
    chosen = [
        e
        for e in entries
        if (principal.operator or e.team == principal.team)
        and filters.get("actor", e.actor) == e.actor
        and filters.get("team", e.team) == e.team
        and filters.get("action", e.action) == e.action
        and filters.get("outcome", e.outcome) == e.outcome
        and (since is None or e.at >= since)
        and (until is None or e.at < until)
    ]
    chosen.sort(key=lambda e: (e.at, e.id), reverse=True)
    scope = orjson.dumps([principal.team, sorted((k, v) for k, v in filters.items() if k in _FILTERS)]).decode()
    page, next_cursor = page_by_id(chosen, lambda e: e.id, request, scope, limit)
    return json_response(AuditList(items=page, next_cursor=next_cursor))
