"""The contracts every component shares: JSON Schemas and the models checked against them."""

from schemas.events import Event, EventDecodeError
from schemas.validation import SchemaError, validate
from schemas.workflow import DefinitionError, Step, Trigger, WorkflowDefinition, parse_definition

__all__ = [
    "DefinitionError",
    "Event",
    "EventDecodeError",
    "SchemaError",
    "Step",
    "Trigger",
    "WorkflowDefinition",
    "parse_definition",
    "validate",
]
