"""Temporal connection helpers and the search attributes Hookline registers."""

from __future__ import annotations

import logging
import re

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import CompositePayloadConverter, DataConverter
from temporalio.service import RPCError

from hookline.retry import Backoff, retry
from hookline.settings import TemporalSettings
from hookline.tracing import temporal_interceptors
from schemas.run import APPROVAL_TEAMS_ATTRIBUTE

__all__ = [
    "DATA_CONVERTER",
    "SA_APPROVAL_TEAMS",
    "SA_DEFINITION",
    "SA_EVENT",
    "SA_RETRY_OF",
    "SA_SOURCE",
    "SA_TEAM",
    "SA_TRIGGER",
    "SEARCH_ATTRIBUTES",
    "connect",
    "query_literal",
    "register_search_attributes",
    "set_retention",
    "wait_for_temporal",
]

SA_DEFINITION = SearchAttributeKey.for_keyword("HooklineDefinitionId")
SA_EVENT = SearchAttributeKey.for_keyword("HooklineEventId")
SA_SOURCE = SearchAttributeKey.for_keyword("HooklineSource")
SA_TEAM = SearchAttributeKey.for_keyword("HooklineTeam")
#: What started the run: event, schedule, manual or retry (`hookline.runs.trigger_kind`).
SA_TRIGGER = SearchAttributeKey.for_keyword("HooklineTrigger")
#: A retry's run: the execution it repeats.
SA_RETRY_OF = SearchAttributeKey.for_keyword("HooklineRetryOf")
#: The teams that may decide a run's pending approvals (`GET /api/v1/approvals`).
SA_APPROVAL_TEAMS = SearchAttributeKey.for_keyword_list(APPROVAL_TEAMS_ATTRIBUTE)
# name → type, as `temporal server start-dev --search-attribute` and the operator CLI take them.
SEARCH_ATTRIBUTES = {
    SA_DEFINITION.name: "Keyword",
    SA_EVENT.name: "Keyword",
    SA_SOURCE.name: "Keyword",
    SA_TEAM.name: "Keyword",
    SA_TRIGGER.name: "Keyword",
    SA_RETRY_OF.name: "Keyword",
    SA_APPROVAL_TEAMS.name: "KeywordList",
}


def query_literal(value: str) -> str:
    """A string literal of Temporal's visibility query language."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _SharedPydanticPayloadConverter(PydanticPayloadConverter):
    """The SDK's pydantic payload converter, with its parts built once per process.

    The SDK builds a new data converter, and with it a new payload converter, for every workflow
    activation and every activity (each with its serialization context). The pydantic payload
    converter's constructor builds a serializer and an empty cache of type adapters, so every
    payload was decoded with a `TypeAdapter` built for it again: about 18 µs per converter and
    10-15 µs per adapter, several times per run. The parts hold no state but that cache."""

    def __init__(self) -> None:
        CompositePayloadConverter.__init__(self, *_PYDANTIC_PARTS)


_PYDANTIC_PARTS = tuple(PydanticPayloadConverter().converters.values())

#: Pydantic models across Temporal (the same payloads as `temporalio.contrib.pydantic`'s).
DATA_CONVERTER = DataConverter(payload_converter_class=_SharedPydanticPayloadConverter)


async def connect(settings: TemporalSettings, *, lazy: bool = False) -> Client:
    """A client with the pydantic data converter, so contracts cross Temporal as models.

    `lazy` connects on the first call instead of now, so a process can start without Temporal;
    calls then fail (RuntimeError "Failed client connect", RPCError) until it is reachable.
    """
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        data_converter=DATA_CONVERTER,
        lazy=lazy,
        interceptors=temporal_interceptors(),
    )


async def register_search_attributes(client: Client, namespace: str) -> None:
    """Add Hookline's search attributes that the namespace lacks (idempotent)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

    existing = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    missing = {
        # KeywordList is INDEXED_VALUE_TYPE_KEYWORD_LIST.
        name: IndexedValueType.Value("INDEXED_VALUE_TYPE_" + re.sub(r"(?<=.)(?=[A-Z])", "_", kind).upper())
        for name, kind in SEARCH_ATTRIBUTES.items()
        if name not in existing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )


async def set_retention(client: Client, namespace: str, days: int) -> None:
    """Keep closed runs for `days`. A run's id stays taken for that long, so this is the window
    in which a re-delivered event or a re-sent alert is recognised and starts nothing."""
    from google.protobuf.duration_pb2 import Duration
    from temporalio.api.namespace.v1 import NamespaceConfig
    from temporalio.api.workflowservice.v1 import UpdateNamespaceRequest

    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(
            namespace=namespace,
            # Only the fields set here change; the server keeps the rest of the config.
            config=NamespaceConfig(workflow_execution_retention_ttl=Duration(seconds=days * 86400)),
        )
    )


async def wait_for_temporal(address: str, timeout: float = 60.0) -> None:
    """Wait until the frontend answers its health check; raises TimeoutError after `timeout`."""

    async def healthy() -> None:
        client = await Client.connect(address)
        if not await client.service_client.check_health():
            raise RuntimeError("the health check failed")

    try:
        await retry(
            healthy,
            backoff=Backoff(first_s=0.25, max_s=0.25),
            retry_on=(RPCError, RuntimeError, OSError),
            within_s=timeout,
            message="temporal not answering yet",
            level=logging.DEBUG,
        )
    except (RPCError, RuntimeError, OSError) as exc:
        raise TimeoutError(f"Temporal at {address} did not answer within {timeout:.0f}s: {exc}") from exc
