"""Settings shared by every component, built once from environment and config file.

Precedence, highest first: keyword arguments, `HOOKLINE_*` environment variables (nested with
`__`, e.g. `HOOKLINE_KAFKA__BOOTSTRAP_SERVERS`), the YAML config file, the defaults here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from schemas.run import Route
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

__all__ = [
    "CONFIG_SECTIONS",
    "ComponentSettings",
    "KafkaSettings",
    "LogSettings",
    "Section",
    "SettingsError",
    "StackOptions",
    "StackSettings",
    "TemporalSettings",
    "TracingSettings",
]


class SettingsError(ValueError):
    """Settings that do not validate; the message lists each bad setting and why."""

    @classmethod
    def from_validation(cls, exc: ValidationError, where: str) -> SettingsError:
        lines = [f"invalid settings ({where}):"]
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {loc}: {err['msg']}")
        return cls("\n".join(lines))


class Section(BaseModel):
    """A settings section: an unknown key is an error, so a misspelt variable or config key
    (`HOOKLINE_KAFKA__BOOTSTRAP_SERVER`) stops the process instead of being ignored."""

    model_config = ConfigDict(extra="forbid")


class KafkaSettings(Section):
    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = Field("hookline", pattern=r"^[A-Za-z0-9._-]+$")
    client_id: str = "hookline"
    events_partitions: int = Field(6, ge=1)
    request_timeout_ms: int = Field(
        5000,
        ge=500,
        description="Bounds each request of Hookline's Kafka producers to a broker (metadata, produce). How long "
        "the gateway waits for acknowledgements before answering 503 is gateway.produce_timeout_s.",
    )
    linger_ms: int = Field(2, ge=0)
    audit_retention_days: float = Field(
        365.0,
        gt=0,
        description="How long the API's audit records (who wrote what, when, with what outcome) are kept on the "
        "audit topic. Applies when `hookline init` creates the topic.",
    )
    decisions_retention_h: float = Field(
        72.0,
        gt=0,
        description="How long the triggers' decision of each event (what it matched, why not, which runs it "
        "started) is kept on the decisions topic and answered by GET /api/v1/events. Applies when `hookline "
        "init` creates the topic; change it later on the topic's retention.ms.",
    )
    trigger_topics: dict[Annotated[str, Field(min_length=1)], list[Annotated[str, Field(min_length=1)]]] = Field(
        default_factory=dict,
        description='Team ("*": every team) → the external topics its `kafka` triggers may name, as '
        "shell-style patterns (fnmatch: `orders.*`, `shop-[ab]`). Empty: none. Hookline's own topics "
        "(the prefix) and internal ones (`_*`) are never allowed (docs/triggers.md).",
    )

    @property
    def events_topic(self) -> str:
        return f"{self.topic_prefix}.events"

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic_prefix}.events.dlq"

    @property
    def audit_topic(self) -> str:
        return f"{self.topic_prefix}.audit"

    @property
    def decisions_topic(self) -> str:
        return f"{self.topic_prefix}.decisions"

    @property
    def workflows_topic(self) -> str:
        return f"{self.topic_prefix}.workflows"

    @property
    def schedules_topic(self) -> str:
        return f"{self.topic_prefix}.schedules"


class TemporalSettings(Section):
    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = "hookline"
    # Runner pools poll `<runner_queue_prefix><pool>`, e.g. hookline.runner.shell.
    runner_queue_prefix: str = "hookline.runner."
    ui_url: str | None = None
    local_pools: list[str] = Field(
        default_factory=list,
        description="Runner pools whose short steps run as Temporal local activities, in the worker "
        "that runs the run's interpreter: no round trip through the pool's task queue, and a run of "
        "short steps one after the other completes in a single workflow task. Every worker that runs "
        "the interpreter (`worker.workflows`) must serve these pools; it refuses to start otherwise. "
        "Decided when a run starts (it is in the run's request), so changing it never affects a "
        "running run. See docs/workflows.md.",
    )
    local_max_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Only steps of `local_pools` whose timeout is at most this run locally: a local "
        "step holds its run's workflow task, so a signal (e.g. a resolved alert) reaches the run "
        "only between steps or at the task's heartbeat (at 80 % of `local_task_timeout_s`).",
    )

    local_task_timeout_s: float = Field(
        2.0,
        ge=1.0,
        le=60.0,
        description="The workflow task timeout of a run with local steps. A local step holds its run's "
        "workflow task, which the worker renews at 80 % of this: only then does the run answer a state query, "
        "see a signal or a cancellation, or fire its own timeout's timer. Temporal's default (10 s) made that "
        "every 8 s; too short, and a task on an overloaded worker times out and is retried.",
    )

    def task_timeout(self, routes: Iterable[Route]) -> timedelta | None:
        """The workflow task timeout of a run with these routes: `local_task_timeout_s` when one of
        its steps runs locally, else Temporal's default (None)."""
        return timedelta(seconds=self.local_task_timeout_s) if any(r.local for r in routes) else None

    def runner_queue(self, pool: str) -> str:
        return f"{self.runner_queue_prefix}{pool}"

    def runs_locally(self, pool: str, timeout_s: float) -> bool:
        """Whether a step on `pool` with this timeout runs as a local activity."""
        return pool in self.local_pools and timeout_s <= self.local_max_timeout_s


class TracingSettings(Section):
    """OpenTelemetry traces (hookline.tracing): off unless `endpoint` is set."""

    endpoint: str | None = Field(
        None,
        description="The OTLP collector: host:port for grpc (e.g. otel-collector:4317), a base URL for http "
        "(e.g. http://otel-collector:4318; spans go to <endpoint>/v1/traces). Unset: no tracing.",
    )
    protocol: Literal["grpc", "http"] = "grpc"
    insecure: bool = Field(True, description="gRPC without TLS.")
    service_prefix: str = Field("hookline-", description="service.name is this plus the component's name.")
    export_delay_ms: int = Field(1000, ge=10, description="How long spans are batched before they are exported.")


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


#: The top-level sections of the config file, of every component together: each component reads
#: the whole file and takes its own sections, so a section none of them takes (a misspelt
#: `trigers:`) would be ignored by all. A component's settings may declare only these.
CONFIG_SECTIONS = frozenset(
    {"kafka", "temporal", "log", "tracing", "agents_file", "gateway", "api", "console", "triggers", "worker", "stack"}
)


class _ConfigFile(YamlConfigSettingsSource):
    """The YAML config file; a top-level section no component knows is an error."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        if not isinstance(self.yaml_data, dict):
            return  # not a mapping: the settings' validation reports it
        if unknown := sorted(str(key) for key in self.yaml_data if key not in CONFIG_SECTIONS):
            raise SettingsError(
                f"config file {self.yaml_file_path}: unknown section{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(unknown)}; the sections are {', '.join(sorted(CONFIG_SECTIONS))}"
            )


class ComponentSettings(BaseSettings):
    """Base of each component's settings: the shared sections plus the config-file source."""

    model_config = SettingsConfigDict(env_prefix="HOOKLINE_", env_nested_delimiter="__", extra="ignore", yaml_file=None)

    kafka: KafkaSettings = KafkaSettings()
    temporal: TemporalSettings = TemporalSettings()
    log: LogSettings = LogSettings()
    tracing: TracingSettings = TracingSettings()
    agents_file: Path | None = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # At import: a section added to a component but not to CONFIG_SECTIONS would be refused
        # in the config file.
        if undeclared := sorted(set(cls.model_fields) - CONFIG_SECTIONS):
            raise TypeError(f"{cls.__name__}: add the section(s) {', '.join(undeclared)} to CONFIG_SECTIONS")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ConfigFile(settings_cls))

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Self:
        """Build the settings once at start-up; raises `SettingsError` with readable lines."""
        target: type[Self] = cls
        if config_file is not None:
            if not config_file.is_file():
                raise SettingsError(f"config file {config_file} does not exist")
            target = type(
                cls.__name__,
                (cls,),
                {"model_config": {**cls.model_config, "yaml_file": config_file}},
            )
        try:
            return target(**overrides)
        except ValidationError as exc:
            raise SettingsError.from_validation(exc, str(config_file or "environment")) from exc


class StackOptions(Section):
    """Where and how `hookline stack` / `hookline run` start Kafka and Temporal on this machine."""

    data_dir: Path = Path(".data")
    cache_dir: Path = Path(".cache")
    kafka_port: int = Field(9092, ge=1, le=65535)
    controller_port: int = Field(9093, ge=1, le=65535)
    kafka_heap: str = Field("512m", pattern=r"^\d+[mg]$")
    temporal_port: int = Field(7233, ge=1, le=65535)
    temporal_ui_port: int | None = Field(8233, ge=1, le=65535, description="None runs headless.")
    persistent: bool = Field(True, description="False: temporary Kafka dir and in-memory Temporal.")
    definitions_dir: Path | None = Field(Path("examples/workflows"), description="Applied at start-up.")
    retention_days: int = Field(
        7,
        ge=1,
        description="How long the local Temporal keeps ended runs: the window in which a re-sent alert or "
        "re-delivered event is recognised by its workflow id and starts nothing.",
    )


class StackSettings(ComponentSettings):
    stack: StackOptions = StackOptions()
