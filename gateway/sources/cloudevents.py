"""CloudEvents over HTTP (binary, structured and batched mode), passed through with their own id,
source, type, time, subject and extensions. The dedupe key is the event's `dedupekey` extension,
else its id. Data must be JSON (an object, or absent): it becomes the Kafka record's value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from pydantic import ValidationError

from gateway.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from gateway.sources.auth import Guard
from gateway.sources.base import Headers, as_headers, decode_json, media_type
from gateway.sources.ratelimit import TokenBucket
from schemas.events import HEADERS_EXTENSION, Event, is_extension_name

__all__ = ["CloudEventsSource"]

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
_REQUIRED = ("id", "source", "type", "specversion")
#: The longest attribute value (and datacontenttype) accepted, in characters.
MAX_LENGTH = 256
# Attributes the event model holds itself; the rest become extensions.
_MODELLED = ("id", "source", "type", "specversion", "time", "subject", "dedupekey", "partitionkey", "resolves")


# Set by the gateway only: a sender can neither claim another source nor forge the request
# headers a source kept.
_OURS = ("hooklinesource", HEADERS_EXTENSION)


def _is_text(value: str) -> bool:
    return len(value) <= MAX_LENGTH and value.isprintable()


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class CloudEventsSource:
    kind = "cloudevents"
    retries_only_5xx = False

    def __init__(
        self,
        name: str,
        *,
        guard: Guard | None = None,
        limiter: TokenBucket | None = None,
        max_batch_events: int = 100,
    ) -> None:
        self.name = name
        self.guard = guard or Guard()
        self.limiter = limiter
        self.max_batch_events = max_batch_events

    def parse(self, body: bytes, headers: Headers) -> list[Event]:
        headers = as_headers(headers)
        media = media_type(headers)
        if media == STRUCTURED:
            return [self._structured(decode_json(body, media), "")]
        if media == BATCH:
            batch = decode_json(body, media)
            if not isinstance(batch, list) or not batch:
                raise BadRequest("a CloudEvents batch is a non-empty JSON array of events")
            if len(batch) > self.max_batch_events:
                raise PayloadTooLarge(
                    f"the batch holds {len(batch)} events; this source takes at most {self.max_batch_events} "
                    f"(its max_batch_events): send smaller batches"
                )
            return [self._structured(doc, f"[{i}]") for i, doc in enumerate(batch)]
        return [self._binary(body, headers)]

    def _binary(self, body: bytes, headers: Headers) -> Event:
        # Header values are percent-encoded where they are not plain printable ASCII (HTTP binding 3.1.3.2).
        attributes = {
            name[3:].lower(): unquote(value)
            for name, value in headers.items()
            if name.lower().startswith("ce-") and value
        }
        missing = [f"ce-{a}" for a in _REQUIRED if a not in attributes]
        if missing:
            raise BadRequest(
                f"not a CloudEvent: missing {', '.join(missing)} header(s) (binary mode), "
                f"or send Content-Type: {STRUCTURED} (structured mode)"
            )
        content_type = headers.get("Content-Type", "application/json")
        if body and not _is_json(content_type):
            raise UnsupportedMediaType(f"only JSON event data is accepted, got Content-Type {content_type!r}")
        data = decode_json(body, "application/json") if body else None
        return self._event(attributes, data, content_type, where="ce-")

    def _structured(self, doc: Any, where: str) -> Event:
        if not isinstance(doc, dict):
            raise BadRequest(f"event{where} must be a JSON object")
        missing = [f"{where}.{a}" if where else a for a in _REQUIRED if a not in doc]
        if missing:
            raise BadRequest(f"not a CloudEvent: missing attribute(s) {', '.join(missing)}")
        if "data_base64" in doc:
            raise UnsupportedMediaType("binary event data (data_base64) is not accepted; send JSON data")
        content_type = str(doc.get("datacontenttype", "application/json"))
        if "data" in doc and not _is_json(content_type):
            raise UnsupportedMediaType(f"only JSON event data is accepted, got datacontenttype {content_type!r}")
        attributes = {k: v for k, v in doc.items() if k not in ("data", "datacontenttype")}
        return self._event(attributes, doc.get("data"), content_type, where=f"event{where}.")

    def _event(self, attributes: Mapping[str, Any], data: Any, content_type: str, *, where: str) -> Event:
        if attributes["specversion"] != "1.0":
            raise BadRequest(f"{where}specversion must be 1.0, got {str(attributes['specversion'])[:20]!r}")
        for name in ("id", "source", "type", "dedupekey"):
            value = attributes.get(name)
            if value is not None and not (isinstance(value, str) and value):
                raise BadRequest(
                    f"{where}{name} must be a non-empty printable string of at most {MAX_LENGTH} characters"
                )
        if not _is_text(content_type):
            what = "Content-Type" if where == "ce-" else f"{where}datacontenttype"
            raise BadRequest(f"{what} must be printable text of at most {MAX_LENGTH} characters")
        if data is not None and not isinstance(data, dict):
            raise BadRequest(f"event data must be a JSON object (or absent), got {type(data).__name__}")
        extensions: dict[str, str] = {}
        for name, value in attributes.items():
            if name in _MODELLED or name in _OURS:
                continue
            if not is_extension_name(name):
                raise BadRequest(f"{where}{name}: attribute names are 1-20 lower-case letters or digits")
            if isinstance(value, dict | list) or value is None:
                raise BadRequest(f"{where}{name}: an extension attribute's value must be a string, number or boolean")
            extensions[name] = str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in attributes.items():
            # Every value becomes a Kafka header: a raw non-UTF-8 byte (aiohttp hands it on as a
            # surrogate) would fail there, inside the produce, as a 500. (Numbers and booleans
            # turned into text are always short and printable.)
            if isinstance(value, str) and not _is_text(value):
                raise BadRequest(f"{where}{name} must be printable text of at most {MAX_LENGTH} characters")
        fields = {k: attributes[k] for k in _MODELLED if k in attributes}
        fields.setdefault("dedupekey", fields["id"])
        try:
            return Event(
                **fields,
                datacontenttype=content_type,
                hooklinesource=self.name,
                data=data or {},
                extensions=extensions,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            name = ".".join(map(str, first["loc"]))
            raise BadRequest(f"{where}{name}: {first['msg']}") from None
