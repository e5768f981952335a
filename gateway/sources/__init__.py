"""Webhook sources: each turns one request into the events it carries, behind its own guard."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.sources.alertmanager import AlertmanagerSource
from gateway.sources.auth import Guard
from gateway.sources.base import Headers, Source, decode_json
from gateway.sources.cloudevents import CloudEventsSource
from gateway.sources.config import (
    AlertmanagerConfig,
    CloudEventsConfig,
    GithubConfig,
    JsonConfig,
    SourceConfig,
    StandardWebhooksConfig,
    source_config,
)
from gateway.sources.generic import JsonSource
from gateway.sources.github import GithubSource
from gateway.sources.ratelimit import TokenBucket
from gateway.sources.standard_webhooks import StandardWebhooksSource

__all__ = [
    "AlertmanagerSource",
    "CloudEventsSource",
    "GithubSource",
    "Guard",
    "Headers",
    "JsonSource",
    "Source",
    "SourceConfig",
    "StandardWebhooksSource",
    "build_source",
    "build_sources",
    "decode_json",
    "source_config",
]


def build_source(name: str, config: SourceConfig) -> Source:
    limiter = TokenBucket(config.rate_limit.per_second, config.rate_limit.burst) if config.rate_limit else None
    match config:
        case AlertmanagerConfig():
            return AlertmanagerSource(name, guard=Guard(config.auth))
        case JsonConfig():
            return JsonSource(name, config, guard=Guard(config.auth), limiter=limiter)
        case GithubConfig():
            return GithubSource(name, config, limiter=limiter)
        case StandardWebhooksConfig():
            return StandardWebhooksSource(name, config, limiter=limiter)
        case CloudEventsConfig():
            return CloudEventsSource(
                name, guard=Guard(config.auth), limiter=limiter, max_batch_events=config.max_batch_events
            )


def build_sources(config: Mapping[str, SourceConfig]) -> dict[str, Source]:
    """Source name → source, built once at start-up from `gateway.sources`."""
    return {name: build_source(name, source) for name, source in config.items()}
