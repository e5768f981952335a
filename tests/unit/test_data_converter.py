"""The data converter Hookline's clients and workers use: the SDK's pydantic payloads, with the
converter's parts (and so its cache of type adapters) kept across the converters the SDK makes
per workflow activation and per activity."""

from __future__ import annotations

import dataclasses

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import WorkflowSerializationContext

from hookline import temporal
from schemas.run import StepRequest, StepResult


def test_payloads_are_those_of_the_sdks_pydantic_converter() -> None:
    values = [StepRequest(workflow_id="w", step="s", agent="a", input={"n": [1, 2]}), {"plain": True}, None, b"\x00"]
    ours = temporal.DATA_CONVERTER.payload_converter.to_payloads(values)
    assert ours == pydantic_data_converter.payload_converter.to_payloads(values)
    hints = [StepRequest, dict, type(None), bytes]
    assert pydantic_data_converter.payload_converter.from_payloads(ours, hints) == values


def test_a_converter_made_per_activation_decodes_with_the_adapters_built_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    json_plain = next(c for c in temporal._PYDANTIC_PARTS if c.encoding == "json/plain")
    decoded = []
    decode = json_plain.from_payload
    monkeypatch.setattr(json_plain, "from_payload", lambda *args: decoded.append(1) or decode(*args))
    payloads = temporal.DATA_CONVERTER.payload_converter.to_payloads([StepResult(exit_code=0)])
    context = WorkflowSerializationContext(namespace="default", workflow_id="w")
    temporal.DATA_CONVERTER.payload_converter.from_payloads(payloads, [StepResult])
    built = json_plain._type_adapter.cache_info().misses  # type: ignore[attr-defined]
    for _ in range(3):
        # As the SDK does for each activation: a data converter of its own, with its context.
        fresh = dataclasses.replace(temporal.DATA_CONVERTER).with_context(context)
        assert fresh.payload_converter is not temporal.DATA_CONVERTER.payload_converter
        assert fresh.payload_converter.from_payloads(payloads, [StepResult]) == [StepResult(exit_code=0)]
    assert len(decoded) == 4  # every one decoded with the same parts...
    assert json_plain._type_adapter.cache_info().misses == built  # type: ignore[attr-defined]  # ...and adapters
