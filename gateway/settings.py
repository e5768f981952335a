"""Gateway settings: the shared sections plus `gateway:` and `api:`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from gateway.sources.config import AlertmanagerConfig, SourceConfig, TicksConfig, source_config
from hookline.settings import ComponentSettings, Section

__all__ = [
    "EVENT_HEADROOM_BYTES",
    "KAFKA_MESSAGE_BYTES",
    "OPERATOR_TEAM",
    "ApiOptions",
    "ApiToken",
    "GatewayOptions",
    "GatewaySettings",
    "Scope",
]

Scope = Literal["read", "write", "execute"]
#: The team of an operator token: it sees and writes every team.
OPERATOR_TEAM = "*"


#: Kafka's default largest message (the producer's max_request_size; the broker's message.max.bytes
#: is 12 bytes more).
KAFKA_MESSAGE_BYTES = 1024 * 1024
#: Room beside an event's data for its key and `ce_*` headers (each at most 256 characters).
EVENT_HEADROOM_BYTES = 64 * 1024


SourceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,100}$")]
Sources = dict[SourceName, Annotated[SourceConfig, BeforeValidator(source_config)]]


def _default_sources() -> Sources:
    return {"alertmanager": AlertmanagerConfig()}


class GatewayOptions(Section):
    # A secret given inline (`{value: ...}`) must not be echoed by a validation error.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(
        KAFKA_MESSAGE_BYTES - EVENT_HEADROOM_BYTES,
        ge=1024,
        description="Larger bodies get 413. The default fits Kafka's default 1 MiB message limit with room for the "
        "event's attributes; a larger value needs the broker's message.max.bytes raised to at least "
        "max_body_bytes + 64 KiB (docs/ingress.md).",
    )
    retry_after_s: int = Field(5, ge=1, description="Retry-After sent with 503 answers.")
    produce_timeout_s: float = Field(5.0, gt=0, description="Longest wait for Kafka's ack before 503.")
    transactional_producers: int = Field(
        4,
        ge=1,
        le=64,
        description="Producers writing requests of several events, each request in one Kafka transaction "
        "(all of its events visible to the triggers, or none).",
    )
    instance_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="This replica's name in its transactional ids (default: hostname-pid). A stable name (e.g. a "
        "StatefulSet pod's) lets a restarted replica abort at once what its predecessor left open.",
    )
    transaction_timeout_s: float = Field(
        10.0,
        gt=0,
        description="How long Kafka keeps a transaction of a dead gateway open before aborting it; the triggers "
        "wait that long for the partitions it wrote to. At least produce_timeout_s + 1.",
    )
    read_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Longest time to receive a request body, on every route; slower clients get 408 (alertmanager "
        "sources: 503, which Alertmanager retries) and are cut off.",
    )
    header_timeout_s: float = Field(
        15.0,
        gt=0,
        description="Longest time a connection may take to send a request's line and headers, counted from the "
        "connection's start or its previous answer; slower connections, and keep-alive connections idle that long, "
        "are closed without an answer.",
    )
    sources: Sources = Field(
        default_factory=_default_sources,
        description="Source name (the {source} of /hooks/{source}) → its kind, or an object with the kind and "
        "its options (docs/ingress.md).",
    )
    ticks: TicksConfig = Field(
        default_factory=TicksConfig, description="POST /ticks/{definition} for an external scheduler."
    )


class ApiToken(Section):
    """A bearer token of the REST API, bound to one team (or `*`, every team) and its scopes."""

    name: str = Field(min_length=1, description="Who holds it; appears in logs instead of the token.")
    token: SecretStr = Field(min_length=16, description="The secret itself; at least 16 characters.")
    team: str = Field(min_length=1, max_length=200, description='The team it acts for; "*" for every team.')
    scopes: list[Scope] = Field(min_length=1, description="read, write (definitions), execute (start, cancel).")


class ApiOptions(Section):
    """The REST API under /api/v1. Without tokens every API request is refused with 401."""

    tokens: list[ApiToken] = Field(default_factory=list)
    page_size: int = Field(50, ge=1, le=500, description="Items per page when `limit` is not given.")
    max_page_size: int = Field(200, ge=1, le=1000)
    temporal_timeout_s: float = Field(10.0, gt=0, description="Longest wait for Temporal before 503.")
    query_timeout_s: float = Field(
        3.0, gt=0, description="Longest wait for a run's state query before falling back to its history."
    )
    write_timeout_s: float = Field(10.0, gt=0, description="Longest wait for a definition write before 503.")
    bulk_limit: int = Field(
        1000, ge=1, le=10000, description="The most executions one bulk retry or cancel acts on (newest first)."
    )
    events_db: str = Field(
        ":memory:",
        min_length=1,
        description="Where the index of the triggers' decisions that GET /api/v1/events reads lives: a SQLite "
        "file, or `:memory:`. Rebuilt from the decisions topic at every start either way; a file keeps the "
        "gateway's memory small when the topic holds many events.",
    )

    @model_validator(mode="after")
    def _distinct_tokens(self) -> ApiOptions:
        names = [t.name for t in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError("api.tokens: token names must be distinct")
        secrets = [t.token.get_secret_value() for t in self.tokens]
        if len(set(secrets)) != len(secrets):
            # Two entries with one secret would make the token's team and scopes ambiguous.
            raise ValueError("api.tokens: two entries share the same token")
        return self


class ConsoleOptions(Section):
    """The web console under /ui: the API's pages, signed in with an API token."""

    enabled: bool = Field(True, description="Serve the console (it needs api.tokens to sign in with).")
    session_hours: float = Field(12.0, gt=0, le=24 * 30, description="How long a sign-in lasts.")
    refresh_s: float = Field(
        2.0, ge=0.2, le=60, description="How often live pages (event stream, a run's steps) ask the API for news."
    )
    secure_cookie: bool | None = Field(
        None,
        description="Mark the session cookie Secure (sent over HTTPS only). Default: when the request came in "
        "over HTTPS (directly, or as X-Forwarded-Proto says behind a proxy).",
    )


class GatewaySettings(ComponentSettings):
    model_config = SettingsConfigDict(**ComponentSettings.model_config, hide_input_in_errors=True)

    gateway: GatewayOptions = GatewayOptions()
    api: ApiOptions = ApiOptions()
    console: ConsoleOptions = ConsoleOptions()
