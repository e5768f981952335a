"""The gateway: webhook ingress onto Kafka, health and metrics (and later the REST API)."""

from gateway.app import create_app
from gateway.settings import GatewayOptions, GatewaySettings

__all__ = ["GatewayOptions", "GatewaySettings", "create_app"]
