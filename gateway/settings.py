"""Gateway settings: the shared sections plus `gateway:`."""

from __future__ import annotations

from pydantic import Field

from hookline.settings import ComponentSettings, Section

__all__ = ["GatewayOptions", "GatewaySettings"]


class GatewayOptions(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="Larger bodies get 413.")
    retry_after_s: int = Field(5, ge=1, description="Retry-After sent with 503 answers.")
    produce_timeout_s: float = Field(5.0, gt=0, description="Longest wait for Kafka's ack before 503.")
    read_timeout_s: float = Field(30.0, gt=0, description="Slow clients are cut off after this.")
    sources: dict[str, str] = Field(
        default_factory=lambda: {"alertmanager": "alertmanager"},
        description="Source name (the {source} of /hooks/{source}) → source kind.",
    )


class GatewaySettings(ComponentSettings):
    gateway: GatewayOptions = GatewayOptions()
