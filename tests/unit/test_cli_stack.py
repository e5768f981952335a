"""`hookline stack` and `hookline run` point this process and the components at the servers they
start, on the configured ports, and print those addresses (no servers started here)."""

from __future__ import annotations

import pytest

from gateway.settings import GatewayOptions, GatewaySettings
from hookline.cli.stack import health_urls, local_env, local_settings, where
from hookline.settings import StackOptions, StackSettings
from triggers.settings import TriggersOptions, TriggersSettings
from worker.settings import WorkerOptions, WorkerSettings

PORTS = StackOptions(kafka_port=19092, temporal_port=17233, temporal_ui_port=18233)


def test_the_components_get_the_configured_ports() -> None:
    env = local_env(StackSettings(stack=PORTS), {"PATH": "/bin"})
    assert env == {
        "PATH": "/bin",
        "HOOKLINE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:19092",
        "HOOKLINE_TEMPORAL__ADDRESS": "127.0.0.1:17233",
        "HOOKLINE_TEMPORAL__UI_URL": "http://127.0.0.1:18233",
    }


def test_an_address_in_the_environment_wins() -> None:
    env = local_env(StackSettings(stack=PORTS), {"HOOKLINE_KAFKA__BOOTSTRAP_SERVERS": "kafka:9092"})
    assert env["HOOKLINE_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["HOOKLINE_TEMPORAL__ADDRESS"] == "127.0.0.1:17233"


def test_headless_temporal_has_no_ui_url() -> None:
    env = local_env(StackSettings(stack=StackOptions(temporal_ui_port=None)), {})
    assert "HOOKLINE_TEMPORAL__UI_URL" not in env


def test_what_is_printed_is_what_the_components_are_given() -> None:
    settings = StackSettings(stack=PORTS)
    env = local_env(settings, {})
    printed = where(local_settings(settings, env))
    assert "Kafka      127.0.0.1:19092  (topics " in printed
    assert "Temporal   127.0.0.1:17233  namespace default" in printed
    assert "Temporal UI http://127.0.0.1:18233" in printed
    assert "Gateway" not in printed


def test_run_prints_each_component_at_its_configured_address() -> None:
    settings = StackSettings(stack=PORTS)
    components = (
        GatewaySettings(gateway=GatewayOptions(host="127.0.0.1", port=18080)),
        TriggersSettings(triggers=TriggersOptions(port=18081)),
        WorkerSettings(worker=WorkerOptions(port=18082, runners=["shell"])),
    )
    printed = where(local_settings(settings, local_env(settings, {})), components)
    assert "Gateway    http://127.0.0.1:18080  (POST /hooks/{alertmanager} /ticks/...;" in printed
    assert "API        http://127.0.0.1:18080/api/v1" in printed
    assert ":18081  (/healthz /readyz /metrics)" in printed
    assert ":18082  (/healthz /readyz); runner kinds: shell" in printed


@pytest.mark.parametrize(("host", "url"), [("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("10.0.0.5", "10.0.0.5")])
def test_liveness_is_probed_where_each_component_listens(host: str, url: str) -> None:
    urls = health_urls(
        GatewaySettings(gateway=GatewayOptions(host=host, port=18080)),
        TriggersSettings(triggers=TriggersOptions(host=host, port=18081)),
        WorkerSettings(worker=WorkerOptions(host=host, port=18082)),
    )
    assert urls == {
        "gateway": f"http://{url}:18080/healthz",
        "triggers": f"http://{url}:18081/healthz",
        "worker": f"http://{url}:18082/healthz",
    }
