"""Webhook sources: each turns one request body into the events it carries."""

from __future__ import annotations

from gateway.sources.alertmanager import AlertmanagerSource
from gateway.sources.base import Source, decode_json

__all__ = ["AlertmanagerSource", "Source", "build_sources", "decode_json"]

_KINDS: dict[str, type[AlertmanagerSource]] = {"alertmanager": AlertmanagerSource}


def build_sources(config: dict[str, str]) -> dict[str, Source]:
    """Source name → source, from `{name: kind}`; an unknown kind fails at start-up."""
    sources: dict[str, Source] = {}
    for name, kind in config.items():
        if kind not in _KINDS:
            raise ValueError(f"source {name!r}: unknown kind {kind!r} (known: {', '.join(sorted(_KINDS))})")
        sources[name] = _KINDS[kind](name)
    return sources
