"""Hypothesis strategies for webhook requests (no tests here): real-shaped bodies of every source
kind with hostile parts, raw bytes, wrong content types, odd header values, and correct or wrong
credentials and signatures. Used by `test_fuzz_ingress`.

Bodies are written as JSON text by `dump`, not `json.dumps`, so that they can hold what a
careless or hostile sender writes and Python would not: duplicated keys (`Obj`), tokens that are
not JSON or are at its edges (`Raw`: `NaN`, `1e99999`, lone surrogate escapes, 30-digit
integers) and nesting far deeper than Python's recursion limit (`Deep`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import strategies as st

AM_TOKEN = "fuzz-alertmanager-token-0123"
AM_PASSWORD = "fuzz-alertmanager-password-01"
JSON_TOKEN = "fuzz-json-bearer-token-0123456"
GITHUB_SECRET = "fuzz-github-secret-0123456789"
WHSEC_KEY = b"fuzz-standard-webhooks-signing-key"
WHSEC = "whsec_" + base64.b64encode(WHSEC_KEY).decode()
MAX_BODY_BYTES = 64 * 1024
MAX_BATCH_EVENTS = 5

ORDER_SCHEMA = {
    "type": "object",
    "required": ["id", "kind", "customer"],
    "properties": {
        "id": {"type": "string", "pattern": "^o-[0-9a-z]+$"},
        "kind": {"enum": ["created", "paid", "refunded"]},
        "total": {"type": "number", "minimum": 0},
        "customer": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": ["string", "integer"]}, "name": {"type": "string", "maxLength": 100}},
        },
        "items": {"type": "array", "items": {"type": "object", "required": ["sku"]}},
    },
}


def sources() -> dict[str, Any]:
    """One source of every kind, the authenticated and signed ones with their credentials."""
    return {
        "am": "alertmanager",
        "am-auth": {
            "kind": "alertmanager",
            "auth": {
                "bearer": [{"value": AM_TOKEN}],
                "basic": [{"username": "alertmanager", "password": {"value": AM_PASSWORD}}],
            },
        },
        "json": "json",
        "orders": {
            "kind": "json",
            "type": "com.example.order",
            "type_field": "kind",
            "dedupe_field": "id",
            "subject_field": "customer.name",
            "partition_field": "customer.id",
            "keep_headers": ["X-Request-Id", "X-Trace"],
            # schema_file: added by the test (a file in its tmp_path)
        },
        "json-auth": {
            "kind": "json",
            "auth": {"bearer": [{"value": JSON_TOKEN}]},
            "type_header": "x-event-type",
            "dedupe_header": "idempotency-key",
        },
        "events": {"kind": "cloudevents", "max_batch_events": MAX_BATCH_EVENTS},
        "github": {"kind": "github", "secrets": [{"value": GITHUB_SECRET}]},
        "billing": {"kind": "standard-webhooks", "secrets": [{"value": WHSEC}]},
        "limited": {"kind": "json", "rate_limit": {"per_second": 20, "burst": 5}},
    }


SOURCE_NAMES = tuple(sources())


# --- JSON text that Python's json module would not write -----------------------------------


class Raw(str):
    """A token written verbatim into the JSON text."""


class Obj(list[tuple[str, Any]]):
    """An object as its pairs, in order: a key may appear twice."""


@dataclass(frozen=True)
class Deep:
    """`inner` wrapped in `depth` arrays or single-key objects."""

    depth: int
    inner: Any
    kind: str = "array"


def dump(value: Any) -> str:
    """JSON text of `value` (see the module docstring for Raw, Obj and Deep)."""
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Deep):
        if value.kind == "array":
            return "[" * value.depth + dump(value.inner) + "]" * value.depth
        return '{"d":' * value.depth + dump(value.inner) + "}" * value.depth
    if isinstance(value, Obj):
        return "{" + ",".join(f"{dump(str(k))}:{dump(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{dump(str(k))}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dump(v) for v in value) + "]"
    raise TypeError(type(value).__name__)


# --- The request ---------------------------------------------------------------------------

HeaderValue = str | bytes


def _token(name: str) -> bool:
    return bool(name) and all(c in TOKEN_CHARS for c in name)


def _sendable(value: str) -> bool:
    return all(c == "\t" or (" " <= c and c != "\x7f") for c in value)


@dataclass
class Request:
    """One generated request. A header value given as bytes is sent as those exact bytes (it may
    not be UTF-8), which an HTTP client library will not do: such requests go over a raw socket."""

    kind: str
    path: str
    body: bytes
    headers: list[tuple[str, HeaderValue]] = field(default_factory=list)
    method: str = "POST"
    chunked: bool = False

    @property
    def malformed(self) -> bool:
        """Whether a header may be one an HTTP parser refuses (raw bytes, control characters, a
        name that is not a token, a line over aiohttp's 8190 bytes, a second Content-Type). Such
        a request is answered 400 and the connection closed before its body is read."""
        names = [k.lower() for k, _ in self.headers]
        return names.count("content-type") > 1 or any(
            isinstance(v, bytes) or not _token(k) or not _sendable(v) or len(v.encode()) > 8000 for k, v in self.headers
        )

    @property
    def raw(self) -> bool:
        """Whether it goes over a raw socket: aiohttp refuses to send control characters in
        headers, and gives up on a body the server cut off (413) without reading the answer."""
        return self.chunked or self.malformed

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # Hypothesis prints failing examples with this, not __repr__

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 200 else self.body[:200] + b"...(%d bytes)" % len(self.body)
        headers = [(k, v if len(v) <= 80 else f"{v[:80]!r}...({len(v)})") for k, v in self.headers]
        chunked = ", chunked" if self.chunked else ""
        return f"Request({self.kind}: {self.method} {self.path}{chunked}, headers={headers!r}, body={body!r})"


# --- Building blocks ------------------------------------------------------------------------

NASTY_STRINGS = [
    "",
    " ",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "1e309",
    "-0",
    "null",
    "None",
    "undefined",
    "true",
    "0x7fffffffffffffff",
    "\x00",
    "\x7f",
    "\x1b[31m",
    "\u202e",
    "\ufeff",
    "\u2028",
    "\U0001f4a5" * 20,
    "../../../etc/passwd",
    "${{ event }}",
    "${{ input.x }}",
    "{{7*7}}",
    "%00",
    "%ff%fe",
    "a\tb",
    "é" * 300,
]
NASTY_TEXT = st.sampled_from(NASTY_STRINGS)
RAW_TOKENS = st.sampled_from(
    [
        Raw("NaN"),
        Raw("-Infinity"),
        Raw("1e99999"),
        Raw("-1e99999"),
        Raw("1E400"),
        Raw("-0"),
        Raw("-0.0e-0"),
        Raw("123456789012345678901234567890123"),
        Raw("-99999999999999999999"),
        Raw("18446744073709551616"),
        Raw("9223372036854775808"),
        Raw('"\\ud800"'),
        Raw('"\\udfff\\ud800"'),
        Raw('"\\u0000"'),
        Raw("01"),
        Raw("0.1e"),
        Raw("tru"),
    ]
)
BIG_INTS = st.sampled_from([2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, -(10**40)])


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each as often as its weight says (`st.one_of` would draw each
    distinct strategy equally often, however often it is listed)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    index = st.sampled_from(range(len(table)))

    @st.composite
    def one(draw: st.DrawFn) -> Any:
        return draw(table[draw(index)])

    return one()


def rarely(strategy: st.SearchStrategy[Any], usual: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`usual` nine times in ten, `strategy` the tenth."""
    return weighted((9, usual), (1, strategy))


BIG_TEXTS = [
    c * n for c, n in (("a", 300), ("é", 2000), ("\U0001f4a5", 1500), ("%", 5000), ("\x00", 700), ("z", 20_000))
]
#: Strings a careless sender writes, all of them valid JSON strings.
ODD_TEXT = st.sampled_from([*NASTY_STRINGS, *BIG_TEXTS])
SHORT_TEXT = st.text(max_size=6)
#: Scalars JSON can carry, at the edges of what parsers and serialisers take.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63)]),
    st.floats(allow_nan=False, allow_infinity=False),
    SHORT_TEXT,
    ODD_TEXT,
)
#: What is not JSON, or is JSON no parser here takes: NaN, 1e99999, lone surrogates, 40 digits.
INVALID = st.one_of(RAW_TOKENS, BIG_INTS, st.sampled_from([math.nan, math.inf, -math.inf]))
#: Values a sender may put where the receiver does not look at the type (event data, extra
#: fields): mostly valid JSON, nested below the depth limit or around it.
HOSTILE = weighted(
    (4, SCALARS),
    (
        4,
        st.recursive(
            SCALARS,
            lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(SHORT_TEXT, kids, max_size=3)),
            max_leaves=4,
        ),
    ),
    (1, st.builds(Deep, st.sampled_from([1, 10, 30, 55, 60]), SCALARS, st.sampled_from(["array", "object"]))),
    (
        1,
        st.one_of(
            INVALID,
            st.builds(
                Deep,
                st.sampled_from([63, 64, 65, 100, 1024, 1100, 5000]),
                SCALARS,
                st.sampled_from(["array", "object"]),
            ),
        ),
    ),
)
#: Text a real sender might put in a field: plain, unusual, or hostile but still text.
PLAIN = st.sampled_from(["checkout", "HighErrorRate", "critical", "payments-eu", "o-123", "main", "1", "a.b.c"])
TEXT = weighted((5, PLAIN), (2, SHORT_TEXT), (2, ODD_TEXT))
LABEL_NAMES = st.one_of(st.sampled_from(["alertname", "severity", "instance", "job", "service", "team"]), SHORT_TEXT)
LABELS = st.dictionaries(LABEL_NAMES, TEXT, max_size=2)
#: Label sets chosen whole: one draw instead of a dozen.
KV = rarely(
    LABELS,
    st.sampled_from(
        [{}, {"alertname": "HighErrorRate"}, {"severity": "critical", "service": "checkout"}, {"x": "\u202e\x00"}]
        + [{"summary": text} for text in BIG_TEXTS[:3]]
    ),
)
CORRUPTIONS = st.sampled_from([0] * 14 + [1, 1, 2, 4])
ACTIONS = st.sampled_from(["set", "set", "delete"])


@st.composite
def corrupt(draw: st.DrawFn, doc: dict[str, Any], keys: list[str]) -> Any:
    """`doc` with, now and then, some of its fields made hostile: a wrong type or value, removed,
    or written twice (JSON's duplicated keys: the last one wins in most parsers)."""
    for _ in range(draw(CORRUPTIONS)):
        key = draw(st.sampled_from([*keys, "extra"]))
        if draw(ACTIONS) == "delete":
            doc.pop(key, None)
        else:
            doc[key] = draw(HOSTILE)
    if draw(st.integers(0, 14)) == 0:
        key = draw(st.sampled_from(keys))
        pairs = list(doc.items())
        extra = (key, draw(HOSTILE))
        return Obj([extra, *pairs] if draw(st.booleans()) else [*pairs, extra])
    return doc


ENCODINGS = st.sampled_from(["utf-8"] * 24 + ["truncated", "bom", "utf-16", "latin-1", "garbage", "padded"])


@st.composite
def encoded(draw: st.DrawFn, doc: Any) -> bytes:
    """The document's JSON text as bytes, now and then mangled on the way."""
    text = dump(doc).encode("utf-8", "surrogatepass")
    how = draw(ENCODINGS)
    if how == "truncated":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if how == "bom":
        return b"\xef\xbb\xbf" + text
    if how == "utf-16":
        return text.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass")
    if how == "latin-1":
        return text.decode("utf-8", "surrogatepass").encode("latin-1", "replace")
    if how == "garbage":
        return text + draw(st.binary(min_size=1, max_size=8))
    if how == "padded":
        return b" \t\r\n" * draw(st.integers(1, 50)) + text
    return text


JSON_TYPES = ["application/json"] * 6 + ["application/json; charset=utf-8", "APPLICATION/JSON", "application/x+json"]
WRONG_TYPES = [
    "",
    "text/plain",
    "application/xml",
    "application/octet-stream",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "application/json; charset=\x01",
    "json",
    ";;;",
    "application/json" + " " * 300,
    "application/json\u00e9",
]
CONTENT_TYPE = st.one_of(st.sampled_from(WRONG_TYPES), SHORT_TEXT)
JSON_TYPE = weighted((12, st.sampled_from(JSON_TYPES)), (1, CONTENT_TYPE))

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~"
#: Headers a generated request never sets itself: they frame the message (a wrong Content-Length
#: would make the server wait for bytes that never come, which is the client's fault, not a bug).
FRAMING = frozenset({"content-length", "transfer-encoding", "host", "connection", "expect", "upgrade", "te"})
HEADER_NAMES = st.one_of(
    st.sampled_from(
        [
            "Content-Type",
            "Authorization",
            "X-Request-Id",
            "X-Trace",
            "Idempotency-Key",
            "X-Event-Type",
            "X-GitHub-Event",
            "X-GitHub-Delivery",
            "X-Hub-Signature-256",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "ce-id",
            "ce-source",
            "ce-type",
            "ce-specversion",
            "ce-dedupekey",
            "ce-hooklinesource",
            "ce-hooklineheaders",
            "Cookie",
            "Accept",
            "X\u00e9",
            "a b",
            "",
        ]
    ),
    st.text(TOKEN_CHARS, min_size=1, max_size=8),
).filter(lambda name: name.lower() not in FRAMING)
#: Header values a client library sends: anything printable but CR and LF (which would split the
#: header), control characters and non-ASCII text (sent as UTF-8) included.
HEADER_TEXT = st.sampled_from(
    [v for v in [*NASTY_STRINGS, *BIG_TEXTS, "\t" * 200, "a" * 9000] if "\r" not in v and "\n" not in v]
)
#: Header values as bytes: not necessarily UTF-8 (sent over a raw socket).
BYTES_VALUE = st.binary(max_size=12).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
HEADER_VALUE: st.SearchStrategy[HeaderValue] = weighted(
    (2, HEADER_TEXT),
    (1, st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=8)),
    (1, BYTES_VALUE),
)
EXTRA_HEADERS = st.lists(st.tuples(HEADER_NAMES, HEADER_VALUE), max_size=2)
METHODS = st.sampled_from(["POST"] * 40 + ["GET", "PUT", "DELETE", "PATCH"])


@st.composite
def finish(draw: st.DrawFn, kind: str, path: str, body: bytes, headers: list[tuple[str, HeaderValue]]) -> Request:
    """The request with, now and then, extra odd headers, another method, or a chunked body."""
    if draw(st.integers(0, 9)) == 0:
        headers = headers + draw(EXTRA_HEADERS)
    if draw(st.integers(0, 60)) == 0:  # now and then a body over the limit
        body = body + b" " * (MAX_BODY_BYTES + draw(st.integers(-100, 100_000)))
    request = Request(kind, path, body, headers, draw(METHODS), chunked=draw(st.integers(0, 14)) == 0)
    if request.malformed:
        # The server closes the connection right after its 400; a body it has not read by then
        # is answered with a reset, which makes the client's kernel drop the 400 unread. One
        # small write arrives whole before the server answers.
        request.chunked, request.body = False, body[: 16 * 1024]
    else:
        # Far over the limit is as good as just over it (413 either way), and cheaper to send.
        request.body = body[: 4 * MAX_BODY_BYTES]
    return request


def content_type(value: str) -> list[tuple[str, HeaderValue]]:
    return [("Content-Type", value)] if value else []


# --- Alertmanager ---------------------------------------------------------------------------

TIMESTAMPS = st.one_of(
    *[st.sampled_from(["2026-11-24T10:00:00.000Z", "0001-01-01T00:00:00Z", "2026-11-24T10:00:00+14:00"])] * 6,
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    TEXT,
)
FINGERPRINTS = rarely(TEXT, st.text("0123456789abcdef", min_size=16, max_size=16))
STATUSES = st.sampled_from(["firing", "resolved"])
RARELY = st.sampled_from([False] * 9 + [True])
ALERT_COUNTS = st.sampled_from([1] * 8 + [2, 3, 5, 40])
AM_VERSIONS = rarely(st.sampled_from(["3", "5", "", "4.0"]), st.just("4"))
AM_AUTH = st.sampled_from(
    [f"Bearer {AM_TOKEN}"] * 6
    + [
        f"bearer   {AM_TOKEN}  ",
        "Basic " + base64.b64encode(f"alertmanager:{AM_PASSWORD}".encode()).decode(),
        "Basic " + base64.b64encode(f"alertmanager:{AM_PASSWORD}".encode()).decode(),
        f"Bearer {AM_TOKEN}x",
        f"Bearer {AM_TOKEN[:-1]}",
        "Basic " + base64.b64encode(b"alertmanager:wrong").decode(),
        "Basic !!!not-base64",
        "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(),
        "Digest x",
        "Bearer",
        "",
    ]
)


@st.composite
def alert(draw: st.DrawFn, status: str) -> Any:
    doc = {
        "status": draw(STATUSES) if draw(RARELY) else status,
        "labels": {"alertname": draw(TEXT), **draw(KV)},
        "annotations": draw(KV),
        "startsAt": draw(TIMESTAMPS),
        "endsAt": draw(TIMESTAMPS),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": draw(FINGERPRINTS),
    }
    return draw(corrupt(doc, list(doc)))


def alerts(count: int, drawn: list[Any]) -> list[Any]:
    """`count` alerts made of the few drawn (a large group costs no more draws than a small one),
    each a distinct alert where its fingerprint is a string."""
    group = []
    for i in range(count):
        one = drawn[i % len(drawn)]
        if i >= len(drawn) and isinstance(one, dict) and isinstance(one.get("fingerprint"), str):
            one = {**one, "fingerprint": f"{one['fingerprint']}{i}"}
        group.append(one)
    return group


@st.composite
def alertmanager_requests(draw: st.DrawFn) -> Request:
    status = draw(STATUSES)
    doc = {
        "receiver": draw(TEXT),
        "status": status,
        "alerts": alerts(draw(ALERT_COUNTS), [draw(alert(status)) for _ in range(draw(st.integers(1, 2)))]),
        "groupLabels": draw(KV),
        "commonLabels": draw(KV),
        "commonAnnotations": draw(KV),
        "externalURL": "http://alertmanager:9093",
        "version": draw(AM_VERSIONS),
        "groupKey": draw(TEXT),
        "truncatedAlerts": draw(rarely(st.one_of(st.integers(), BIG_INTS), st.just(0))),
    }
    body = draw(encoded(draw(corrupt(doc, list(doc)))))
    headers = content_type(draw(JSON_TYPE))
    if draw(st.booleans()):
        return draw(finish("alertmanager", "/hooks/am", body, headers))
    auth = draw(rarely(HEADER_VALUE, AM_AUTH))
    if draw(st.integers(0, 14)):
        headers.append(("Authorization", auth))
    return draw(finish("alertmanager", "/hooks/am-auth", body, headers))


# --- Generic JSON ---------------------------------------------------------------------------

JSON_SOURCES = st.sampled_from(["json", "json", "json-auth", "json-auth", "limited"])
JSON_TOKENS = st.sampled_from([JSON_TOKEN] * 6 + [JSON_TOKEN[:-1], "", "x" * 300])
DOCUMENTS = rarely(HOSTILE, st.dictionaries(SHORT_TEXT, HOSTILE, max_size=4))
HEADER_OR_UUID = rarely(HEADER_VALUE, st.uuids().map(str))


@st.composite
def json_requests(draw: st.DrawFn) -> Request:
    body = draw(encoded(draw(DOCUMENTS)))
    headers = content_type(draw(JSON_TYPE))
    source = draw(JSON_SOURCES)
    if source == "json-auth":
        if draw(st.integers(0, 14)):
            headers.append(("Authorization", f"Bearer {draw(JSON_TOKENS)}"))
        for name in ("X-Event-Type", "Idempotency-Key"):
            if draw(st.integers(0, 9)):
                headers.append((name, draw(HEADER_OR_UUID)))
    return draw(finish("json", f"/hooks/{source}", body, headers))


ORDER_IDS = rarely(TEXT, st.integers(0, 10**9).map(lambda n: f"o-{n}"))
ORDER_KINDS = rarely(st.sampled_from(["Paid", "", "shipped"]), st.sampled_from(["created", "paid", "refunded"]))
TOTALS = rarely(SCALARS, st.floats(min_value=0, max_value=1e300))
CUSTOMER_IDS = st.one_of(st.integers(), TEXT)
ITEMS = st.lists(st.fixed_dictionaries({"sku": TEXT, "qty": st.integers()}), max_size=2)
KEPT_HEADERS = st.lists(st.tuples(st.sampled_from(["X-Request-Id", "X-Trace"]), HEADER_VALUE), max_size=2)


@st.composite
def order_requests(draw: st.DrawFn) -> Request:
    customer = draw(corrupt({"id": draw(CUSTOMER_IDS), "name": draw(TEXT)}, ["id", "name"]))
    doc = {"id": draw(ORDER_IDS), "kind": draw(ORDER_KINDS), "total": draw(TOTALS), "customer": customer}
    doc["items"] = draw(ITEMS)
    body = draw(encoded(draw(corrupt(doc, list(doc)))))
    headers = content_type(draw(JSON_TYPE)) + draw(KEPT_HEADERS)
    return draw(finish("json", "/hooks/orders", body, headers))


# --- CloudEvents ----------------------------------------------------------------------------

EXTENSION_NAMES = st.one_of(
    st.sampled_from(["traceparent", "dataschema", "comexampleext", "x1", "a" * 20]),
    st.sampled_from(["hooklinesource", "hooklineheaders", "data_base64", "Upper", "x" * 21, "", "é"]),
)
ATTRIBUTE_VALUE = weighted((6, PLAIN), (3, TEXT), (1, HOSTILE))
SPECVERSIONS = rarely(st.sampled_from(["0.3", "1", ""]), st.just("1.0"))
OPTIONAL_ATTRIBUTES = st.lists(
    st.sampled_from(["time", "subject", "dedupekey", "partitionkey", "resolves"]), max_size=3
)
EVENT_IDS = rarely(ATTRIBUTE_VALUE, st.uuids().map(str))
CE_MODES = st.sampled_from(["binary", "structured", "batch"])
BATCH_SIZES = st.sampled_from([1, 2, 3, MAX_BATCH_EVENTS, 0, MAX_BATCH_EVENTS + 1, 50])
STRUCTURED_TYPE = rarely(CONTENT_TYPE, st.just("application/cloudevents+json"))
BATCH_TYPE = rarely(CONTENT_TYPE, st.just("application/cloudevents-batch+json"))


@st.composite
def cloudevent(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": draw(SPECVERSIONS),
        "id": draw(EVENT_IDS),
        "source": draw(ATTRIBUTE_VALUE),
        "type": draw(ATTRIBUTE_VALUE),
    }
    for name in draw(OPTIONAL_ATTRIBUTES):
        event[name] = draw(ATTRIBUTE_VALUE)
    if draw(st.integers(0, 3)) == 0:
        event[draw(EXTENSION_NAMES)] = draw(ATTRIBUTE_VALUE)
    if draw(st.integers(0, 3)):
        event["data"] = draw(DOCUMENTS)
    if draw(st.integers(0, 5)) == 0:
        event["datacontenttype"] = draw(JSON_TYPE)
    return event


def percent_encoded(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe=" !#$&'()*+,/:;=?@[]~")


@st.composite
def cloudevents_requests(draw: st.DrawFn) -> Request:
    mode = draw(CE_MODES)
    headers: list[tuple[str, HeaderValue]] = []
    if mode == "structured":
        event = draw(cloudevent())
        body = draw(encoded(draw(corrupt(event, list(event)))))
        headers += content_type(draw(STRUCTURED_TYPE))
    elif mode == "batch":
        size = draw(BATCH_SIZES)
        events = [draw(cloudevent()) for _ in range(min(size, 3))]
        batch: Any = (events * size)[:size]
        if draw(st.integers(0, 9)) == 0:
            batch = draw(HOSTILE)
        body = draw(encoded(batch))
        headers += content_type(draw(BATCH_TYPE))
    else:
        event = draw(cloudevent())
        data = event.pop("data", None)
        event.pop("datacontenttype", None)
        for name, value in event.items():
            text = value if isinstance(value, str) else dump(value)
            if draw(st.integers(0, 14)) == 0:
                headers.append((f"ce-{name}", draw(HEADER_VALUE)))
            else:
                headers.append((f"ce-{name}", percent_encoded(text) if draw(st.booleans()) else text))
        body = draw(encoded(data)) if data is not None else b""
        headers += content_type(draw(JSON_TYPE))
    return draw(finish("cloudevents", "/hooks/events", body, headers))


# --- GitHub ---------------------------------------------------------------------------------

GITHUB_EVENTS = rarely(HEADER_VALUE, st.sampled_from(["push", "pull_request", "ping"]))
GITHUB_SIGNATURES = st.sampled_from(["good"] * 8 + ["upper", "other-secret", "other-body", "garbage", "missing"])
FORM = "application/x-www-form-urlencoded"
FORM_TYPE = rarely(CONTENT_TYPE, st.just(FORM))
GITHUB_JSON_TYPE = rarely(CONTENT_TYPE, st.just("application/json"))


@st.composite
def github_requests(draw: st.DrawFn) -> Request:
    repository = draw(corrupt({"full_name": draw(TEXT), "id": draw(st.integers())}, ["full_name", "id"]))
    doc = {"ref": draw(TEXT), "repository": repository, "sender": {"login": draw(TEXT)}, "extra": draw(HOSTILE)}
    payload = draw(encoded(draw(corrupt(doc, list(doc)))))
    form = draw(st.integers(0, 3)) == 0
    if form:
        body = urlencode({"payload": payload.decode("utf-8", "surrogateescape")}, errors="surrogateescape").encode()
        if draw(st.integers(0, 9)) == 0:
            body = draw(st.sampled_from([b"payload=1&payload=2", b"x=1", b"%%%", b"payload=%FF", b""]))
    else:
        body = payload
    headers = content_type(draw(FORM_TYPE if form else GITHUB_JSON_TYPE))
    headers.append(("X-GitHub-Event", draw(GITHUB_EVENTS)))
    headers.append(("X-GitHub-Delivery", draw(HEADER_OR_UUID)))
    signature = draw(GITHUB_SIGNATURES)
    good = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    value: HeaderValue | None = {
        "good": f"sha256={good}",
        "upper": f"SHA256={good.upper()}",
        "other-secret": "sha256=" + hmac.new(b"another-secret-0123456", body, hashlib.sha256).hexdigest(),
        "other-body": "sha256=" + hmac.new(GITHUB_SECRET.encode(), body + b" ", hashlib.sha256).hexdigest(),
        "missing": None,
    }.get(signature, "")
    if signature == "garbage":
        value = draw(HEADER_VALUE)
    if value is not None:
        headers.append(("X-Hub-Signature-256", value))
    return draw(finish("github", "/hooks/github", body, headers))


# --- Standard Webhooks ----------------------------------------------------------------------


def whsig(key: bytes, msg_id: bytes, stamp: bytes, body: bytes) -> str:
    return (
        "v1," + base64.b64encode(hmac.new(key, msg_id + b"." + stamp + b"." + body, hashlib.sha256).digest()).decode()
    )


WEBHOOK_TYPES = rarely(HOSTILE, st.one_of(st.sampled_from(["invoice.paid", "user.created"]), TEXT))
STAMPS = st.sampled_from(
    ["now"] * 10 + ["old", "future", "ancient", "padded", "-1", "1e9", "9" * 12, "9" * 13, "0" * 40]
)
SW_SIGNATURES = st.sampled_from(
    ["good"] * 8 + ["among", "other-versions", "other-key", "other-body", "empty", "missing"]
)


@st.composite
def standard_webhooks_requests(draw: st.DrawFn) -> Request:
    doc = {"type": draw(WEBHOOK_TYPES), "data": draw(HOSTILE)}
    body = draw(encoded(draw(corrupt(doc, list(doc)))))
    headers = content_type(draw(JSON_TYPE))
    msg_id: HeaderValue = draw(rarely(HEADER_VALUE, st.integers(0, 2**64).map(lambda n: f"msg_{n:x}")))
    now = int(time.time())
    stamp: HeaderValue = {
        "now": str(now),
        "old": str(now - 301),
        "future": str(now + 301),
        "ancient": str(now - 10**9),
        "padded": f" {now} ",
    }.get(draw(STAMPS), "")
    if not stamp or draw(st.integers(0, 19)) == 0:
        stamp = draw(HEADER_VALUE)
    mid = msg_id.encode() if isinstance(msg_id, str) else msg_id
    signed = (stamp.encode() if isinstance(stamp, str) else stamp).strip()
    good = whsig(WHSEC_KEY, mid, signed, body)
    signature: HeaderValue | None = {
        "good": good,
        "among": f"v1,bogus {good}",
        "other-versions": f"v1a,xyz v2,{good[3:]}",
        "other-key": whsig(b"another-key-0123456789", mid, signed, body),
        "other-body": whsig(WHSEC_KEY, mid, signed, body + b"x"),
        "empty": "v1,",
        "missing": None,
    }[draw(SW_SIGNATURES)]
    if draw(st.integers(0, 19)) == 0:
        signature = draw(HEADER_VALUE)
    headers += [("webhook-id", msg_id), ("webhook-timestamp", stamp)]
    if signature is not None:
        headers.append(("webhook-signature", signature))
    return draw(finish("standard-webhooks", "/hooks/billing", body, headers))


# --- Anything at all ------------------------------------------------------------------------

PATH_NAMES = st.one_of(
    st.sampled_from(SOURCE_NAMES),
    SHORT_TEXT.map(lambda name: quote(name.encode("utf-8", "surrogatepass"), safe="")),
    st.sampled_from(["", "..", "%2e%2e", "am/", "AM", "am%00", "a" * 300, "%ff"]),
)
GARBAGE_BODIES = st.one_of(st.binary(max_size=64), st.binary(min_size=1, max_size=4).map(lambda b: b * 3000))


@st.composite
def garbage_requests(draw: st.DrawFn) -> Request:
    """Raw bytes, any content type, any headers, to any source name (configured or not)."""
    headers = content_type(draw(st.one_of(CONTENT_TYPE, JSON_TYPE))) + draw(EXTRA_HEADERS)
    return draw(finish("garbage", "/hooks/" + draw(PATH_NAMES), draw(GARBAGE_BODIES), headers))


REQUESTS = st.one_of(
    alertmanager_requests(),
    json_requests(),
    order_requests(),
    cloudevents_requests(),
    github_requests(),
    standard_webhooks_requests(),
    garbage_requests(),
)
