"""The local Kafka starts from what the project resolves and formats itself."""

from __future__ import annotations

from pathlib import Path

from hookline.kafka import ensure_topics
from hookline.settings import KafkaSettings
from hookline.stack import KafkaServer, free_port
from tests.conftest import ROOT


async def test_broker_formats_and_starts_with_a_cluster_id_that_starts_with_a_dash(tmp_path: Path) -> None:
    # Random base64 ids start with "-" one time in 64; passed as a separate argument, the
    # storage tool took such an id for an option and refused to format.
    kafka = KafkaServer(
        tmp_path, ROOT / ".cache", port=free_port(), controller_port=free_port(), cluster_id="-AbCdEfGhIjKlMnOpQrStUw"
    )
    await kafka.start()
    try:
        await ensure_topics(KafkaSettings(bootstrap_servers=kafka.bootstrap_servers))
        assert "cluster.id=-AbCdEfGhIjKlMnOpQrStUw" in (tmp_path / "data" / "meta.properties").read_text()
    finally:
        kafka.stop()
