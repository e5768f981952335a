"""The gateway: webhook ingress onto Kafka, the REST API, health and metrics."""

from gateway.app import create_app
from gateway.settings import GatewayOptions, GatewaySettings

__all__ = ["GatewayOptions", "GatewaySettings", "create_app"]
