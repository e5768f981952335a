"""Generic JSON webhooks: any JSON object, optionally checked against a JSON Schema, with the
event's type and dedupe key taken from configured body fields or headers. GitHub and Standard
Webhooks sources are this source with a signature and their own defaults."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from gateway.errors import BadRequest, InvalidPayload
from gateway.sources.auth import Guard
from gateway.sources.base import Headers, as_headers, decode_json, media_type
from gateway.sources.config import _JsonFields
from gateway.sources.ratelimit import TokenBucket
from schemas.events import HEADERS_EXTENSION, Event, new_event_id
from schemas.inputs import InputsValidator
from schemas.validation import Validator

__all__ = ["JsonSource", "body_dedupe_key", "field"]

MAX_ATTRIBUTE_LENGTH = 256


def field(doc: Any, path: str) -> Any:
    """The value at a dotted path (`repository.full_name`, `items.0.id`), or None."""
    for part in path.split("."):
        if isinstance(doc, dict):
            doc = doc.get(part)
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    return doc


def body_dedupe_key(doc: Any) -> str:
    """A hash of the document's canonical JSON: the same body re-sent, in any key order, gives
    the same key; two different occurrences with identical bodies are one occurrence."""
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


class JsonSource:
    retries_only_5xx = False

    def __init__(
        self, name: str, config: _JsonFields, *, guard: Guard | None = None, limiter: TokenBucket | None = None
    ) -> None:
        self.name = name
        self.kind: str = getattr(config, "kind", "json")
        self.guard = guard or Guard()
        self.limiter = limiter
        self._config = config
        self._source_uri = f"/hooks/{name}"
        schema = config.json_schema
        # Patterns are matched in linear time (RE2): a sender's body must not be able to stall the
        # gateway on a pattern of the source's schema.
        self._schema = Validator(schema, kind=InputsValidator) if schema is not None else None

    def document(self, body: bytes, headers: Headers) -> Any:
        """The JSON document of the body (GitHub overrides this for its form encoding)."""
        return decode_json(body, media_type(headers))

    def parse(self, body: bytes, headers: Headers) -> list[Event]:
        headers = as_headers(headers)
        doc = self.document(body, headers)
        if not isinstance(doc, dict):
            raise BadRequest(f"the body must be a JSON object, got {type(doc).__name__}")
        if self._schema is not None and (errors := self._schema.errors(doc)):
            raise InvalidPayload(f"the body does not match the source's schema: {errors[0]}", errors=errors)
        config = self._config
        dedupe = self._attribute(headers, doc, config.dedupe_header, config.dedupe_field, "dedupe key", required=True)
        if dedupe is None:
            dedupe = body_dedupe_key(doc)
        suffix = self._attribute(headers, doc, config.type_header, config.type_field, "type")
        partition = self._attribute(None, doc, None, config.partition_field, "partition key")
        # A value that is not printable text (a raw non-UTF-8 byte arrives as a surrogate) cannot be
        # JSON: it is dropped, as if the header were absent, rather than failing the request.
        kept = {h: v for h in config.keep_headers if (v := headers.get(h)) is not None and v.isprintable()}
        return [
            Event(
                id=new_event_id(),
                source=self._source_uri,
                type=f"{config.type}.{suffix}" if suffix else config.type,
                subject=self._attribute(None, doc, None, config.subject_field, "subject"),
                dedupekey=dedupe,
                partitionkey=partition or dedupe,
                hooklinesource=self.name,
                data=doc,
                extensions={HEADERS_EXTENSION: orjson.dumps(kept).decode()} if kept else {},
            )
        ]

    def _attribute(
        self,
        headers: Headers | None,
        doc: dict[str, Any],
        header: str | None,
        path: str | None,
        what: str,
        *,
        required: bool = False,
    ) -> str | None:
        """An attribute from its header (first) or body field; None if neither is configured or
        it is absent, unless `required`: a configured dedupe key the sender left out is bad input."""
        if header is None and path is None:
            return None
        value: Any = headers.get(header) if headers is not None and header is not None else None
        where = f"header {header}"
        if value is None and path is not None:
            value, where = field(doc, path), f"field {path}"
        if value is None or value == "":
            if not required:
                return None
            names = " or ".join(n for n in (f"header {header}" if header else "", f"field {path}" if path else "") if n)
            raise BadRequest(f"the {what} is missing: this source takes it from {names}")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise BadRequest(f"the {what} in {where} must be a string or number, got {type(value).__name__}")
        text = str(value)
        if len(text) > MAX_ATTRIBUTE_LENGTH or not text.isprintable():
            raise BadRequest(f"the {what} in {where} must be printable and at most {MAX_ATTRIBUTE_LENGTH} characters")
        return text
