"""The event envelope: CloudEvents 1.0, carried on Kafka in binary mode.

Attributes travel as `ce_*` headers, the JSON data is the record value and the partition key is
the record key. Hookline adds four extension attributes:

- `dedupekey`: the same real-world occurrence delivered twice has the same key;
- `partitionkey` (the CloudEvents partitioning extension): keeps related events ordered;
- `hooklinesource`: the name of the configured source the event came in through;
- `resolves` (on events that end something, e.g. a resolved alert): the dedupe key of the event
  that started it, so its run can be told (see the triggers' `on_resolved` policy).

Any other attribute (a passed-through CloudEvent's own extensions, `dataschema`, or
`hooklineheaders`: the request headers a source keeps, as a JSON object) travels in `extensions`.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from schemas.limits import MAX_JSON_DEPTH, depth_exceeds, may_nest_deeper

__all__ = [
    "HEADERS_EXTENSION",
    "HEADER_PREFIX",
    "Event",
    "EventDecodeError",
    "is_extension_name",
    "json_data",
    "new_event_id",
]

HEADER_PREFIX = "ce_"
_ATTRIBUTES = (
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "subject",
    "dedupekey",
    "partitionkey",
    "hooklinesource",
    "resolves",
)
#: The headers of `_ATTRIBUTES`, in their order (`Event.to_kafka` relies on it).
_ATTRIBUTE_HEADERS = tuple(HEADER_PREFIX + name for name in _ATTRIBUTES)
_has_value = itemgetter(1)  # a (header, value) pair whose value is not b""
_REQUIRED = ("specversion", "id", "source", "type", "dedupekey")
_MODELLED = frozenset((*_ATTRIBUTES, "datacontenttype", "data"))
#: What a `ce_*` header may set; `ce_data` (the value is the data) and unknown names set nothing.
_FROM_HEADERS = frozenset((*_ATTRIBUTES, "datacontenttype"))
#: `ce_<attribute>` → attribute, for what a `ce_*` header may set.
_HEADER_ATTRIBUTES = {HEADER_PREFIX + name: name for name in _FROM_HEADERS}
#: The extension that keeps the request headers a source preserves (JSON object text).
HEADERS_EXTENSION = "hooklineheaders"


def is_extension_name(name: str) -> bool:
    """CloudEvents attribute names: 1-20 lower-case ASCII letters or digits, and not one Hookline models."""
    return 0 < len(name) <= 20 and name.isascii() and name.isalnum() and name.islower() and name not in _MODELLED


#: A version 4 UUID as an integer: these bits cleared, then the version (4) and variant (10) set.
_UUID4_CLEAR = ~((0xF << 76) | (0x3 << 62))
_UUID4_SET = (0x4 << 76) | (0x2 << 62)


def new_event_id() -> str:
    """A random (version 4) UUID string. Ids need uniqueness, not secrecy: `random` (reseeded
    after fork) is three times cheaper than `uuid.uuid4()`'s urandom call on the ingest path."""
    h = (random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET).to_bytes(16).hex()  # cheaper than f"{:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class EventDecodeError(ValueError):
    """A Kafka record that is not a Hookline CloudEvent; the message says why."""


def json_data(value: bytes, what: str = "value", not_json: str | None = None) -> Any:
    """A record's JSON, nested at most `MAX_JSON_DEPTH` levels: records reach
    the triggers from any producer, past the gateway's own check, and a deeper document would
    cost stack in every library that walks it."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):  # orjson's own limit (1024), far above ours
            raise EventDecodeError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep") from None
        raise EventDecodeError(f"{not_json or what + ' is not JSON'}: {exc}") from exc
    if may_nest_deeper(value, MAX_JSON_DEPTH) and depth_exceeds(data, MAX_JSON_DEPTH):
        raise EventDecodeError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
    return data


def _isoformat(time: datetime) -> str:
    """`time.isoformat()`; for UTC (every event the gateway stamps) by orjson, a third of the
    cost and the same text (tested against isoformat)."""
    return orjson.dumps(time)[1:-1].decode() if time.tzinfo is UTC else time.isoformat()


_set = object.__setattr__  # as pydantic's model_construct sets a frozen model's internals
#: What `Event.__new__` is (pydantic models define none), without looking it up on the class:
#: an attribute of a model class goes through its metaclass's `__getattr__` hook, ~900
#: instructions a lookup.
_new = object.__new__
#: The fields `Event.checked` marks as set: its parameters, given or defaulted (what `Event(...)`
#: marks when each is passed; nothing dumps events with `exclude_unset`).
_CHECKED_FIELDS_SET = frozenset(
    ("id", "source", "type", "dedupekey", "data", "subject", "partitionkey", "hooklinesource", "resolves")
)


class Event(BaseModel):
    """One normalised event."""

    model_config = ConfigDict(frozen=True)

    id: str
    source: str
    type: str
    specversion: str = "1.0"
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = None
    datacontenttype: str = "application/json"
    dedupekey: str
    partitionkey: str = ""
    hooklinesource: str = ""
    resolves: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    #: Attributes Hookline does not model, by CloudEvents name; they travel as `ce_<name>` too.
    extensions: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def checked(
        cls,
        *,
        id: str,
        source: str,
        type: str,
        dedupekey: str,
        data: dict[str, Any],
        subject: str | None = None,
        partitionkey: str = "",
        hooklinesource: str = "",
        resolves: str | None = None,
    ) -> Event:
        """The event a source builds from values it has already checked: strings taken from a
        document its schema validated, and a `data` dict of its own making. Built as
        `model_construct` builds (no validation), with the fields `Event(...)` would set: on the
        ingest path pydantic's validation of these 13 fields (a copy of `data` among them) cost
        more than building the whole record. Passing anything but `str` where a `str` is
        declared is a bug in the caller, and fails when the record is made."""
        values = {
            "id": id,
            "source": source,
            "type": type,
            "specversion": "1.0",
            "time": datetime.now(UTC),
            "subject": subject,
            "datacontenttype": "application/json",
            "dedupekey": dedupekey,
            "partitionkey": partitionkey,
            "hooklinesource": hooklinesource,
            "resolves": resolves,
            "data": data,
            "extensions": {},
        }
        event = _new(cls)
        _set(event, "__dict__", values)
        _set(event, "__pydantic_fields_set__", set(_CHECKED_FIELDS_SET))
        _set(event, "__pydantic_extra__", None)
        _set(event, "__pydantic_private__", None)
        return event

    def to_kafka(self) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        """Key, value and headers of the binary-mode Kafka record: `content-type`, then a `ce_*`
        header per attribute that is set (not None, not empty) in `_ATTRIBUTES` order, then the
        extensions. It runs for every event on the ingest path, where a loop over the attributes
        was the gateway's most expensive Python function: the values are encoded, paired with
        their names and the empty ones dropped by `map`, `zip` and `filter`, in C."""
        a = self.__dict__  # no getattr per attribute
        values = (
            a["specversion"],
            a["id"],
            a["source"],
            a["type"],
            _isoformat(a["time"]),
            a["subject"] or "",
            a["dedupekey"],
            a["partitionkey"],
            a["hooklinesource"],
            a["resolves"] or "",
        )
        headers = [
            ("content-type", a["datacontenttype"].encode()),
            *filter(_has_value, zip(_ATTRIBUTE_HEADERS, map(str.encode, values), strict=True)),
        ]
        if extensions := a["extensions"]:
            headers += [(HEADER_PREFIX + name, text.encode()) for name, text in extensions.items()]
        key = (a["partitionkey"] or a["dedupekey"]).encode()
        return key, orjson.dumps(a["data"]), headers

    @classmethod
    def from_kafka(
        cls, value: bytes | None, headers: list[tuple[str, bytes | None]] | tuple[tuple[str, bytes | None], ...]
    ) -> Event:
        """Decode a binary-mode record; raises `EventDecodeError` with the reason."""
        attrs: dict[str, Any] = {}
        extensions: dict[str, str] = {}
        for name, raw in headers:
            # A modelled attribute's header (nearly every header of a record): one dict lookup.
            if raw is not None and (attribute := _HEADER_ATTRIBUTES.get(name)) is not None:
                try:
                    attrs[attribute] = raw.decode()
                except UnicodeDecodeError as exc:
                    raise EventDecodeError(f"header {name} is not UTF-8") from exc
                continue
            if raw is None:  # Kafka allows a null header value; other producers than ours send them
                if name.startswith(HEADER_PREFIX):
                    raise EventDecodeError(f"header {name} has no value (null)")
                continue
            if name.startswith(HEADER_PREFIX):
                try:
                    text = raw.decode()
                except UnicodeDecodeError as exc:
                    raise EventDecodeError(f"header {name} is not UTF-8") from exc
                attribute = name[len(HEADER_PREFIX) :]  # a modelled one took the lookup above
                if is_extension_name(attribute):
                    extensions[attribute] = text
            elif name == "content-type":
                attrs["datacontenttype"] = raw.decode(errors="replace")
        missing = [a for a in _REQUIRED if a not in attrs]
        if missing:
            raise EventDecodeError(f"missing CloudEvents headers: {', '.join('ce_' + m for m in missing)}")
        if attrs["specversion"] != "1.0":
            raise EventDecodeError(f"unsupported ce_specversion {attrs['specversion']!r}")
        data = json_data(value) if value else {}
        if not isinstance(data, dict):
            raise EventDecodeError("value must be a JSON object")
        try:
            return cls(**attrs, data=data, extensions=extensions)
        except (ValueError, TypeError) as exc:  # any record, however made, is dead-lettered, not fatal
            raise EventDecodeError(f"invalid CloudEvents attributes: {exc}") from exc
