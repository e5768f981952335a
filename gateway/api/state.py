"""What the API handlers share: settings, tokens, agents, and the two dependencies (the
definition store on Kafka, the Temporal client), each reporting 503 while it is unavailable.

The gateway must take webhooks while Kafka's definitions topic or Temporal are down, so neither
is awaited at start-up: the store loads in the background (retrying), and the Temporal client
connects lazily on its first call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

from aiohttp import web
from aiokafka.errors import KafkaError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from gateway.api.audit import AuditLog
from gateway.api.auth import TokenTable
from gateway.api.event_index import EventIndex
from gateway.errors import Unavailable, UnavailableCause
from gateway.publisher import RecentEvents
from gateway.settings import GatewaySettings
from gateway.sources import Source
from hookline.definitions import DefinitionStore
from hookline.kafka import TopicView
from hookline.lifecycle import cancel_and_wait
from hookline.logging import get_logger
from hookline.retry import Backoff, retry
from hookline.temporal import connect
from schemas.agents import AgentCatalog
from schemas.validation import SchemaError
from schemas.workflow import WorkflowDefinition, agent_errors

__all__ = ["API", "ApiState"]

log = get_logger(__name__)

T = TypeVar("T")
L = TypeVar("L")

# UNKNOWN and INTERNAL too: Temporal answers "something went wrong, please retry" with them.
_TRANSIENT = {
    RPCStatusCode.UNKNOWN,
    RPCStatusCode.INTERNAL,
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.CANCELLED,
}
#: Between attempts to load the definitions while Kafka is unreachable.
_LOAD_BACKOFF = Backoff(first_s=1.0, max_s=30.0)


class ApiState:
    """Built with the app; `open`/`close` run in its cleanup context."""

    def __init__(
        self,
        settings: GatewaySettings,
        agents: AgentCatalog,
        sources: Mapping[str, Source],
        recent: RecentEvents | None = None,
    ) -> None:
        self.settings = settings
        self.options = settings.api
        self.tokens = TokenTable(settings.api.tokens)
        self.agents = agents
        self.retry_after_s = settings.gateway.retry_after_s
        self._store: DefinitionStore | None = None
        #: Each schedule's state as the triggers' ticker records it (last tick, failing).
        self.schedules: TopicView | None = None
        self._loader: asyncio.Task[None] | None = None
        self._client: Client | None = None
        #: The gateway's webhook sources, by name (`/events/explain` parses bodies with them).
        self.sources = sources
        #: What this gateway accepted lately (`GET /events/{id}` of an event not decided yet).
        self.recent = recent or RecentEvents()
        self._events: EventIndex | None = None
        self._audit: AuditLog | None = None

    def check_agents(self, definition: WorkflowDefinition) -> list[SchemaError]:
        return agent_errors(definition, self.agents.for_team(definition.team))

    def definitions(self) -> DefinitionStore:
        """The loaded store; 503 until it has read the definitions topic."""
        return self._loaded(self._store, "workflow definitions are", "definitions_not_loaded")

    def events(self) -> EventIndex:
        """The index of the triggers' decisions; 503 until it has started."""
        return self._loaded(self._events, "the event index is", "events_not_loaded")

    def audit(self) -> AuditLog:
        """The audit log; 503 until it has started."""
        return self._loaded(self._audit, "the audit log is", "events_not_loaded")

    def _loaded(self, part: L | None, what: str, cause: UnavailableCause) -> L:
        if part is None:
            raise Unavailable(
                f"{what} not loaded yet (Kafka is unreachable or still being read); retry shortly",
                retry_after_s=self.retry_after_s,
                cause=cause,
            )
        return part

    async def audited(self, entry: dict[str, Any]) -> None:
        """Record a write's audit entry (logged as an error if that cannot be done)."""
        if self._audit is None:
            log.error("audit entry not recorded: the audit log is not open", entry=entry)
            return
        await self._audit.record(entry)

    def temporal(self) -> Client:
        if self._client is None:
            raise Unavailable(
                "no Temporal client; retry shortly", retry_after_s=self.retry_after_s, cause="temporal_unavailable"
            )
        return self._client

    async def write(self, operation: Awaitable[T]) -> T:
        """A definition write, bounded in time; Kafka trouble becomes 503."""
        return await self.kafka_call(
            operation, "Kafka did not take the definition in time; retry (an unchanged PUT is idempotent)"
        )

    async def kafka_call(self, operation: Awaitable[T], failed: str) -> T:
        """A Kafka operation of the API, bounded in time (`api.write_timeout_s`); Kafka trouble
        becomes 503 saying `failed`."""
        try:
            async with asyncio.timeout(self.options.write_timeout_s):
                return await operation
        except (KafkaError, TimeoutError) as exc:
            log.warning("kafka call failed", what=failed, error=str(exc) or type(exc).__name__)
            raise Unavailable(failed, retry_after_s=self.retry_after_s, cause="kafka_unacked") from exc

    @contextlib.asynccontextmanager
    async def temporal_call(self) -> AsyncIterator[None]:
        """Bound a block of Temporal calls in time; an unreachable Temporal becomes 503."""
        try:
            async with asyncio.timeout(self.options.temporal_timeout_s):
                yield
        except TimeoutError as exc:
            raise self._unavailable("Temporal did not answer in time") from exc
        except RPCError as exc:
            if exc.status in _TRANSIENT:
                raise self._unavailable(f"Temporal is unavailable ({exc.status.name})") from exc
            raise
        except RuntimeError as exc:
            if "client connect" not in str(exc):  # how a lazy client reports an unreachable server
                raise
            raise self._unavailable("Temporal is unreachable") from exc

    def _unavailable(self, reason: str) -> Unavailable:
        log.warning("temporal unavailable", reason=reason)
        return Unavailable(f"{reason}; retry shortly", retry_after_s=self.retry_after_s, cause="temporal_unavailable")

    async def open(self) -> None:
        if not len(self.tokens):
            log.info("REST API has no tokens configured (api.tokens); every API request gets 401")
            return
        self._loader = asyncio.create_task(self._load_definitions(), name="api-definitions-load")
        try:
            self._client = await connect(self.settings.temporal, lazy=True)
        except Exception as exc:  # a malformed address: the API answers 503, the ingress runs on
            log.error("cannot create the Temporal client", error=str(exc))

    async def close(self) -> None:
        if self._loader is not None:
            self._loader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loader
        if self._store is not None:
            await self._store.stop()
            self._store = None
        if self.schedules is not None:
            await _stop_quietly(self.schedules)
            self.schedules = None
        if self._events is not None:
            await _stop_quietly(self._events)
            self._events = None
        if self._audit is not None:
            await _stop_quietly(self._audit)
            self._audit = None

    async def _load_definitions(self) -> None:
        """Load the definitions, the audit log and the event index, side by side; the definitions
        are served only once writes can be audited."""
        events = asyncio.ensure_future(self._load_events())
        audit = asyncio.ensure_future(self._load_audit())
        try:
            store = await _start_retrying(
                lambda: DefinitionStore(self.settings.kafka, check=self.check_agents), "load workflow definitions"
            )
            try:
                await audit
            except BaseException:
                await _stop_quietly(store)
                raise
            self._store = store
            await events
        finally:
            await cancel_and_wait(audit)
            await cancel_and_wait(events)
        schedules = TopicView(self.settings.kafka, self.settings.kafka.schedules_topic)
        try:
            await schedules.start()
        except asyncio.CancelledError:
            await _stop_quietly(schedules)
            raise
        except Exception as exc:  # the definitions are served without their schedules' state
            log.warning("cannot follow the schedules' state", error=str(exc))
            await _stop_quietly(schedules)
            return
        self.schedules = schedules

    async def _load_events(self) -> None:
        self._events = await _start_retrying(
            lambda: EventIndex(self.settings.kafka, self.options.events_db), "read the decisions topic"
        )

    async def _load_audit(self) -> None:
        self._audit = await _start_retrying(
            lambda: AuditLog(self.settings.kafka, self.options.write_timeout_s), "open the audit log"
        )


class _Part(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


P = TypeVar("P", bound=_Part)


async def _start_retrying(make: Callable[[], P], what: str) -> P:
    """A new `make()` started, retried with backoff while that fails; each one that failed to
    start (or was cancelled starting: the gateway stopping) is stopped."""

    async def attempt() -> P:
        part = make()
        try:
            await part.start()
        except BaseException:
            await _stop_quietly(part)
            raise
        return part

    return await retry(attempt, backoff=_LOAD_BACKOFF, retry_on=Exception, message=f"cannot {what}, retrying")


async def _stop_quietly(part: _Part) -> None:
    with contextlib.suppress(Exception):
        await part.stop()


API = web.AppKey("api", ApiState)
