"""Triggers settings: the shared sections plus `triggers:`."""

from __future__ import annotations

from pydantic import Field

from hookline.settings import ComponentSettings, Section

__all__ = ["TriggersOptions", "TriggersSettings"]


class TriggersOptions(Section):
    group_id: str = "hookline-triggers"
    concurrency: int = Field(64, ge=1, description="Records processed at once.")
    max_batch: int = Field(500, ge=1, description="Records taken from Kafka per poll.")
    host: str = "127.0.0.1"
    port: int = Field(8081, ge=0, le=65535, description="/healthz and /metrics.")
    start_retry_max_s: float = Field(10.0, gt=0, description="Longest backoff while Temporal is unreachable.")
    kafka_retry_s: float = Field(
        120.0,
        gt=0,
        description="How long a write to Kafka (a decision, a DLQ record) is retried while the brokers are "
        "unreachable or a partition has no leader, as while a broker restarts. Nothing is committed meanwhile; "
        "after this long the service exits, and its supervisor restarts it.",
    )
    decision_linger_ms: int = Field(
        20,
        ge=0,
        description="How long the producer of decision records (and dead letters) waits to put more records in "
        "one request to Kafka. An event's offset is committed once its decision is acknowledged, so this delays "
        "commits (never a start); under load it makes fewer, larger requests, which costs Kafka and the triggers "
        "less CPU per event (docs/performance.md). `kafka.linger_ms` is for the other producers.",
    )
    ticker: bool = Field(True, description="Emit the ticks of schedule triggers (safe in every replica).")
    schedule_grace_s: float = Field(60.0, gt=0, description="A tick later than this counts as missed.")
    interpreter: bool = Field(
        False,
        description="Also run the interpreter (the workflow task queue, with the `worker:` section's polling and "
        "limits) in this process, and start runs eagerly: Temporal hands a new run's first workflow task back "
        "with the start, to this process, instead of through a poll of the task queue. Measured: runs of "
        "several local steps faster, one-step runs not (docs/performance.md). Steps of `temporal.local_pools` "
        "then run here too. The workers keep serving the interpreter: a run whose process stops goes on there. "
        "Off by default: it puts run execution in the process that consumes events.",
    )
    slot_wait_s: float = Field(
        1.0,
        ge=0,
        description="With `interpreter`: how long a start waits for a free workflow task slot of this process's "
        "interpreter, so that it can start eagerly (the event waits in Kafka meanwhile), before it starts through "
        "the task queue, where any worker takes it. An eager start costs Temporal's server about 2 ms of CPU less "
        "(docs/performance.md). 0: never waits.",
    )
    stall_s: float = Field(
        60.0,
        gt=0,
        description="Liveness fails when records wait on assigned partitions and none has been taken or "
        "committed for this long, so the supervisor replaces a consumer that wedged (aiokafka's did after a "
        "broker restart, aio-libs/aiokafka#1038, mended in hookline.kafka). Kafka being unreachable is not a "
        "stall: it is not what a restart cures.",
    )


class TriggersSettings(ComponentSettings):
    triggers: TriggersOptions = TriggersOptions()
