"""Which topics a definition's `kafka` triggers may name.

A `kafka` trigger makes the triggers service read a topic with its own credentials, so naming a
topic is a privilege: Hookline's own topics (events, DLQ, definitions, schedule state: everything
under the prefix) would let a definition read every team's definitions or loop records through
the DLQ, and Kafka's internal ones (`__consumer_offsets`, `__transaction_state`, and by convention
every `_`-topic of the tools around Kafka) are not events at all. Those are refused whatever the
settings say; any other topic only if `kafka.trigger_topics` lets the definition's team name it.

The check runs where definitions are saved (the API, `hookline apply`, the store), and again on
every definition read from the topic, since one saved before the policy (or under a wider one)
may still be stored: such a definition stays readable but is not in force.

`replication` says how Hookline's own topics are replicated on a cluster of a given size.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from hookline.settings import KafkaSettings
from schemas.validation import SchemaError
from schemas.workflow import DEFAULT_TEAM, WorkflowDefinition

__all__ = ["ANY_TEAM", "Replication", "forbidden_topic", "replication", "topic_errors"]

#: The key of `kafka.trigger_topics` whose patterns hold for every team.
ANY_TEAM = "*"


@dataclass(frozen=True)
class Replication:
    """How a topic is replicated: its replication factor and `min.insync.replicas`."""

    factor: int
    min_insync: int


def replication(brokers: int) -> Replication:
    """Hookline's topics on a cluster of `brokers`: three replicas, two of which must have a write
    before it is acknowledged (the producers send with acks=all), from three brokers up, so one
    broker can be lost (or restarted) without losing a record or refusing one; one broker: one
    replica, as a single node can do no better; two: both replicas, either enough to write."""
    if brokers < 1:
        raise ValueError(f"a Kafka cluster has at least one broker, not {brokers}")
    if brokers >= 3:
        return Replication(factor=3, min_insync=2)
    return Replication(factor=brokers, min_insync=1)


def _normalised(topic: str) -> str:
    # Kafka treats "." and "_" alike in topic names (their metric names collide; the broker
    # refuses to create one beside the other), so `hookline_events` is `hookline.events`.
    return topic.replace("_", ".")


def forbidden_topic(topic: str, settings: KafkaSettings) -> str | None:
    """Why no definition may name `topic` whatever the allow-list says; None if it is external."""
    if topic.startswith("_"):
        return "topics starting with an underscore are internal to Kafka and its tools"
    prefix = _normalised(settings.topic_prefix)
    name = _normalised(topic)
    if name == prefix or name.startswith(f"{prefix}."):
        return f'topics under the prefix "{settings.topic_prefix}" are Hookline\'s own (events, DLQ, definitions)'
    return None


def topic_errors(definition: WorkflowDefinition, settings: KafkaSettings) -> list[SchemaError]:
    """The `kafka` triggers of `definition` that name a topic its team may not subscribe to."""
    team = definition.team_id or DEFAULT_TEAM
    patterns = [*settings.trigger_topics.get(team, ()), *settings.trigger_topics.get(ANY_TEAM, ())]
    located = len(definition.trigger) > 1
    errors: list[SchemaError] = []
    for index, trigger in enumerate(definition.trigger):
        if trigger.type != "kafka" or trigger.topic is None:
            continue
        where = f"trigger[{index}].topic" if located else "trigger.topic"
        topic = trigger.topic
        if (why := forbidden_topic(topic, settings)) is not None:
            errors.append(SchemaError(where, f'"{topic}" cannot be subscribed to: {why}'))
        elif not any(fnmatchcase(topic, pattern) for pattern in patterns):
            errors.append(
                SchemaError(
                    where,
                    f'team "{team}" may not subscribe to topic "{topic}"; the operator allows topics per team in '
                    "kafka.trigger_topics",
                )
            )
    return errors
