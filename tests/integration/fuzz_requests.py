"""Webhook requests for fuzzing (no tests here): real-shaped bodies of every source kind with
hostile parts, raw bytes, wrong content types, odd header values, and correct or wrong credentials
and signatures. Used by `test_fuzz_ingress` (`requests`), made as `fuzzing` describes: the shape
of each request picked from tables, its leaf values from pools Hypothesis drew.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from tests.integration.fuzzing import (
    Deep,
    Draw,
    Gen,
    Obj,
    Raw,
    dicts,
    dump,
    fixed_dicts,
    generate,
    just,
    leaf,
    lists,
    one_of,
    pick,
    rarely,
    recursive,
    tuples,
    uuids,
    weighted,
)

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
RAW_TOKENS = pick(
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
BIG_INTS = pick([2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, -(10**40)])
BIG_TEXTS = [
    c * n for c, n in (("a", 300), ("é", 2000), ("\U0001f4a5", 1500), ("%", 5000), ("\x00", 700), ("z", 20_000))
]
#: Strings a careless sender writes, all of them valid JSON strings.
ODD_TEXT = pick([*NASTY_STRINGS, *BIG_TEXTS])
SHORT_TEXT: Gen[str] = leaf("texts")
BYTES: Gen[bytes] = leaf("binaries")
INTEGERS: Gen[int] = leaf("integers")
#: Scalars JSON can carry, at the edges of what parsers and serialisers take.
SCALARS = one_of(
    just(None),
    pick([True, False]),
    leaf("int64s"),
    pick([2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63)]),
    leaf("floats"),
    SHORT_TEXT,
    ODD_TEXT,
)
#: What is not JSON, or is JSON no parser here takes: NaN, 1e99999, lone surrogates, 40 digits.
INVALID = one_of(RAW_TOKENS, BIG_INTS, pick([math.nan, math.inf, -math.inf]))


def deep(depths: list[int]) -> Gen[Deep]:
    """A scalar nested as deep as one of `depths`, in arrays or in objects."""
    return lambda draw: Deep(draw.pick(depths), draw(SCALARS), draw.pick(("array", "object")))


#: Values a sender may put where the receiver does not look at the type (event data, extra
#: fields): mostly valid JSON, nested below the depth limit or around it.
HOSTILE = weighted(
    (4, SCALARS),
    (4, recursive(SCALARS, SHORT_TEXT)),
    (1, deep([1, 10, 30, 55, 60])),
    (1, one_of(INVALID, deep([63, 64, 65, 100, 1024, 1100, 5000]))),
)
#: Text a real sender might put in a field: plain, unusual, or hostile but still text.
PLAIN = pick(["checkout", "HighErrorRate", "critical", "payments-eu", "o-123", "main", "1", "a.b.c"])
TEXT = weighted((5, PLAIN), (2, SHORT_TEXT), (2, ODD_TEXT))
LABEL_NAMES = one_of(pick(["alertname", "severity", "instance", "job", "service", "team"]), SHORT_TEXT)
LABELS = dicts(LABEL_NAMES, TEXT, max_size=2)
#: Label sets chosen whole, now and then made of odd names and values.
KV = rarely(
    LABELS,
    pick(
        [{}, {"alertname": "HighErrorRate"}, {"severity": "critical", "service": "checkout"}, {"x": "\u202e\x00"}]
        + [{"summary": text} for text in BIG_TEXTS[:3]]
    ),
)
CORRUPTIONS = [0] * 14 + [1, 1, 2, 4]
ACTIONS = ["set", "set", "delete"]


def corrupt(draw: Draw, doc: dict[str, Any], keys: list[str]) -> Any:
    """`doc` with, now and then, some of its fields made hostile: a wrong type or value, removed,
    or written twice (JSON's duplicated keys: the last one wins in most parsers)."""
    for _ in range(draw.pick(CORRUPTIONS)):
        key = draw.pick([*keys, "extra"])
        if draw.pick(ACTIONS) == "delete":
            doc.pop(key, None)
        else:
            doc[key] = draw(HOSTILE)
    if draw.one_in(15):
        pairs = list(doc.items())
        extra = (draw.pick(keys), draw(HOSTILE))
        return Obj([extra, *pairs] if draw.one_in(2) else [*pairs, extra])
    return doc


ENCODINGS = ["utf-8"] * 24 + ["truncated", "bom", "utf-16", "latin-1", "garbage", "padded"]


def encoded(draw: Draw, doc: Any) -> bytes:
    """The document's JSON text as bytes, now and then mangled on the way."""
    text = dump(doc).encode("utf-8", "surrogatepass")
    how = draw.pick(ENCODINGS)
    if how == "truncated":
        return text[: draw.integer(0, max(0, len(text) - 1))]
    if how == "bom":
        return b"\xef\xbb\xbf" + text
    if how == "utf-16":
        return text.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass")
    if how == "latin-1":
        return text.decode("utf-8", "surrogatepass").encode("latin-1", "replace")
    if how == "garbage":
        return text + (draw(BYTES)[: draw.integer(1, 8)] or b"\xff")
    if how == "padded":
        return b" \t\r\n" * draw.integer(1, 50) + text
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
CONTENT_TYPE = one_of(pick(WRONG_TYPES), SHORT_TEXT)
JSON_TYPE = weighted((12, pick(JSON_TYPES)), (1, CONTENT_TYPE))

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~"
#: Headers a generated request never sets itself: they frame the message (a wrong Content-Length
#: would make the server wait for bytes that never come, which is the client's fault, not a bug).
FRAMING = frozenset({"content-length", "transfer-encoding", "host", "connection", "expect", "upgrade", "te"})
KNOWN_HEADER_NAMES = pick(
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
)


def any_header_name(draw: Draw) -> str:
    name = draw.text(TOKEN_CHARS, 1, 8)
    return name if name.lower() not in FRAMING else f"X-{name}"


HEADER_NAMES = one_of(KNOWN_HEADER_NAMES, any_header_name)
#: Header values a client library sends: anything printable but CR and LF (which would split the
#: header), control characters and non-ASCII text (sent as UTF-8) included.
HEADER_TEXT = pick([v for v in [*NASTY_STRINGS, *BIG_TEXTS, "\t" * 200, "a" * 9000] if "\r" not in v and "\n" not in v])


def bytes_value(draw: Draw) -> bytes:
    """A header value as bytes: not necessarily UTF-8 (sent over a raw socket)."""
    return draw(BYTES)[:12].replace(b"\r", b"").replace(b"\n", b"")


HEADER_VALUE: Gen[HeaderValue] = weighted((2, HEADER_TEXT), (1, leaf("header_texts")), (1, bytes_value))
EXTRA_HEADERS = lists(tuples(HEADER_NAMES, HEADER_VALUE), max_size=2)
METHODS = ["POST"] * 40 + ["GET", "PUT", "DELETE", "PATCH"]


def finish(draw: Draw, kind: str, path: str, body: bytes, headers: list[tuple[str, HeaderValue]]) -> Request:
    """The request with, now and then, extra odd headers, another method, or a chunked body."""
    if draw.one_in(10):
        headers = headers + draw(EXTRA_HEADERS)
    if draw.one_in(61):  # now and then a body over the limit
        body = body + b" " * (MAX_BODY_BYTES + draw.integer(-100, 100_000))
    request = Request(kind, path, body, headers, draw.pick(METHODS), chunked=draw.one_in(15))
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

TIMESTAMPS = weighted(
    (6, pick(["2026-11-24T10:00:00.000Z", "0001-01-01T00:00:00Z", "2026-11-24T10:00:00+14:00"])),
    (1, lambda draw: draw(leaf("datetimes")) + "Z"),
    (1, TEXT),
)
FINGERPRINTS = rarely(TEXT, lambda draw: draw.text("0123456789abcdef", 16, 16))
STATUSES = ["firing", "resolved"]
ALERT_COUNTS = [1] * 8 + [2, 3, 5, 40]
AM_VERSIONS = rarely(pick(["3", "5", "", "4.0"]), just("4"))
AM_AUTH = rarely(
    HEADER_VALUE,
    pick(
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
    ),
)
TRUNCATED_ALERTS = rarely(one_of(INTEGERS, BIG_INTS), just(0))


def alert(draw: Draw, status: str) -> Any:
    doc = {
        "status": draw.pick(STATUSES) if draw.one_in(10) else status,
        "labels": {"alertname": draw(TEXT), **draw(KV)},
        "annotations": draw(KV),
        "startsAt": draw(TIMESTAMPS),
        "endsAt": draw(TIMESTAMPS),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": draw(FINGERPRINTS),
    }
    return corrupt(draw, doc, list(doc))


def alerts(count: int, drawn: list[Any]) -> list[Any]:
    """`count` alerts made of the few drawn (a large group costs no more than a small one), each
    a distinct alert where its fingerprint is a string."""
    group = []
    for i in range(count):
        one = drawn[i % len(drawn)]
        if i >= len(drawn) and isinstance(one, dict) and isinstance(one.get("fingerprint"), str):
            one = {**one, "fingerprint": f"{one['fingerprint']}{i}"}
        group.append(one)
    return group


def alertmanager_request(draw: Draw) -> Request:
    status = draw.pick(STATUSES)
    doc = {
        "receiver": draw(TEXT),
        "status": status,
        "alerts": alerts(draw.pick(ALERT_COUNTS), [alert(draw, status) for _ in range(draw.integer(1, 2))]),
        "groupLabels": draw(KV),
        "commonLabels": draw(KV),
        "commonAnnotations": draw(KV),
        "externalURL": "http://alertmanager:9093",
        "version": draw(AM_VERSIONS),
        "groupKey": draw(TEXT),
        "truncatedAlerts": draw(TRUNCATED_ALERTS),
    }
    body = encoded(draw, corrupt(draw, doc, list(doc)))
    headers = content_type(draw(JSON_TYPE))
    if draw.one_in(2):
        return finish(draw, "alertmanager", "/hooks/am", body, headers)
    if not draw.one_in(15):
        headers.append(("Authorization", draw(AM_AUTH)))
    return finish(draw, "alertmanager", "/hooks/am-auth", body, headers)


# --- Generic JSON ---------------------------------------------------------------------------

JSON_SOURCES = ["json", "json", "json-auth", "json-auth", "limited"]
JSON_TOKENS = [JSON_TOKEN] * 6 + [JSON_TOKEN[:-1], "", "x" * 300]
DOCUMENTS = rarely(HOSTILE, dicts(SHORT_TEXT, HOSTILE, max_size=4))
HEADER_OR_UUID = rarely(HEADER_VALUE, uuids)


def json_request(draw: Draw) -> Request:
    body = encoded(draw, draw(DOCUMENTS))
    headers = content_type(draw(JSON_TYPE))
    source = draw.pick(JSON_SOURCES)
    if source == "json-auth":
        if not draw.one_in(15):
            headers.append(("Authorization", f"Bearer {draw.pick(JSON_TOKENS)}"))
        for name in ("X-Event-Type", "Idempotency-Key"):
            if not draw.one_in(10):
                headers.append((name, draw(HEADER_OR_UUID)))
    return finish(draw, "json", f"/hooks/{source}", body, headers)


ORDER_IDS = rarely(TEXT, lambda draw: f"o-{draw.integer(0, 10**9)}")
ORDER_KINDS = rarely(pick(["Paid", "", "shipped"]), pick(["created", "paid", "refunded"]))
TOTALS = rarely(SCALARS, lambda draw: min(abs(draw(leaf("floats"))), 1e300))
CUSTOMER_IDS = one_of(INTEGERS, TEXT)
ITEMS = lists(fixed_dicts({"sku": TEXT, "qty": INTEGERS}), max_size=2)
KEPT_HEADERS = lists(tuples(pick(["X-Request-Id", "X-Trace"]), HEADER_VALUE), max_size=2)


def order_request(draw: Draw) -> Request:
    customer = corrupt(draw, {"id": draw(CUSTOMER_IDS), "name": draw(TEXT)}, ["id", "name"])
    doc = {"id": draw(ORDER_IDS), "kind": draw(ORDER_KINDS), "total": draw(TOTALS), "customer": customer}
    doc["items"] = draw(ITEMS)
    body = encoded(draw, corrupt(draw, doc, list(doc)))
    headers = content_type(draw(JSON_TYPE)) + draw(KEPT_HEADERS)
    return finish(draw, "json", "/hooks/orders", body, headers)


# --- CloudEvents ----------------------------------------------------------------------------

EXTENSION_NAMES = one_of(
    pick(["traceparent", "dataschema", "comexampleext", "x1", "a" * 20]),
    pick(["hooklinesource", "hooklineheaders", "data_base64", "Upper", "x" * 21, "", "é"]),
)
ATTRIBUTE_VALUE = weighted((6, PLAIN), (3, TEXT), (1, HOSTILE))
SPECVERSIONS = rarely(pick(["0.3", "1", ""]), just("1.0"))
OPTIONAL_ATTRIBUTES = ["time", "subject", "dedupekey", "partitionkey", "resolves"]
EVENT_IDS = rarely(ATTRIBUTE_VALUE, uuids)
CE_MODES = ["binary", "structured", "batch"]
BATCH_SIZES = [1, 2, 3, MAX_BATCH_EVENTS, 0, MAX_BATCH_EVENTS + 1, 50]
STRUCTURED_TYPE = rarely(CONTENT_TYPE, just("application/cloudevents+json"))
BATCH_TYPE = rarely(CONTENT_TYPE, just("application/cloudevents-batch+json"))


def cloudevent(draw: Draw) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": draw(SPECVERSIONS),
        "id": draw(EVENT_IDS),
        "source": draw(ATTRIBUTE_VALUE),
        "type": draw(ATTRIBUTE_VALUE),
    }
    for _ in range(draw.integer(0, 3)):
        event[draw.pick(OPTIONAL_ATTRIBUTES)] = draw(ATTRIBUTE_VALUE)
    if draw.one_in(4):
        event[draw(EXTENSION_NAMES)] = draw(ATTRIBUTE_VALUE)
    if not draw.one_in(4):
        event["data"] = draw(DOCUMENTS)
    if draw.one_in(6):
        event["datacontenttype"] = draw(JSON_TYPE)
    return event


def percent_encoded(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe=" !#$&'()*+,/:;=?@[]~")


def cloudevents_request(draw: Draw) -> Request:
    mode = draw.pick(CE_MODES)
    headers: list[tuple[str, HeaderValue]] = []
    if mode == "structured":
        event = cloudevent(draw)
        body = encoded(draw, corrupt(draw, event, list(event)))
        headers += content_type(draw(STRUCTURED_TYPE))
    elif mode == "batch":
        size = draw.pick(BATCH_SIZES)
        events = [cloudevent(draw) for _ in range(min(size, 3))]
        batch: Any = (events * size)[:size]
        if draw.one_in(10):
            batch = draw(HOSTILE)
        body = encoded(draw, batch)
        headers += content_type(draw(BATCH_TYPE))
    else:
        event = cloudevent(draw)
        data = event.pop("data", None)
        event.pop("datacontenttype", None)
        for name, value in event.items():
            text = value if isinstance(value, str) else dump(value)
            if draw.one_in(15):
                headers.append((f"ce-{name}", draw(HEADER_VALUE)))
            else:
                headers.append((f"ce-{name}", percent_encoded(text) if draw.one_in(2) else text))
        body = encoded(draw, data) if data is not None else b""
        headers += content_type(draw(JSON_TYPE))
    return finish(draw, "cloudevents", "/hooks/events", body, headers)


# --- GitHub ---------------------------------------------------------------------------------

GITHUB_EVENTS = rarely(HEADER_VALUE, pick(["push", "pull_request", "ping"]))
GITHUB_SIGNATURES = ["good"] * 8 + ["upper", "other-secret", "other-body", "garbage", "missing"]
FORM = "application/x-www-form-urlencoded"
FORM_TYPE = rarely(CONTENT_TYPE, just(FORM))
GITHUB_JSON_TYPE = rarely(CONTENT_TYPE, just("application/json"))
ODD_FORMS = [b"payload=1&payload=2", b"x=1", b"%%%", b"payload=%FF", b""]


def github_request(draw: Draw) -> Request:
    repository = corrupt(draw, {"full_name": draw(TEXT), "id": draw(INTEGERS)}, ["full_name", "id"])
    doc = {"ref": draw(TEXT), "repository": repository, "sender": {"login": draw(TEXT)}, "extra": draw(HOSTILE)}
    payload = encoded(draw, corrupt(draw, doc, list(doc)))
    form = draw.one_in(4)
    if form:
        body = urlencode({"payload": payload.decode("utf-8", "surrogateescape")}, errors="surrogateescape").encode()
        if draw.one_in(10):
            body = draw.pick(ODD_FORMS)
    else:
        body = payload
    headers = content_type(draw(FORM_TYPE if form else GITHUB_JSON_TYPE))
    headers.append(("X-GitHub-Event", draw(GITHUB_EVENTS)))
    headers.append(("X-GitHub-Delivery", draw(HEADER_OR_UUID)))
    signature = draw.pick(GITHUB_SIGNATURES)
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
    return finish(draw, "github", "/hooks/github", body, headers)


# --- Standard Webhooks ----------------------------------------------------------------------


def whsig(key: bytes, msg_id: bytes, stamp: bytes, body: bytes) -> str:
    return (
        "v1," + base64.b64encode(hmac.new(key, msg_id + b"." + stamp + b"." + body, hashlib.sha256).digest()).decode()
    )


WEBHOOK_TYPES = rarely(HOSTILE, one_of(pick(["invoice.paid", "user.created"]), TEXT))
MESSAGE_IDS = rarely(HEADER_VALUE, lambda draw: f"msg_{draw.integer(0, 2**64):x}")
STAMPS = ["now"] * 10 + ["old", "future", "ancient", "padded", "-1", "1e9", "9" * 12, "9" * 13, "0" * 40]
SW_SIGNATURES = ["good"] * 8 + ["among", "other-versions", "other-key", "other-body", "empty", "missing"]


def standard_webhooks_request(draw: Draw) -> Request:
    doc = {"type": draw(WEBHOOK_TYPES), "data": draw(HOSTILE)}
    body = encoded(draw, corrupt(draw, doc, list(doc)))
    headers = content_type(draw(JSON_TYPE))
    msg_id: HeaderValue = draw(MESSAGE_IDS)
    now = int(time.time())
    stamp: HeaderValue = {
        "now": str(now),
        "old": str(now - 301),
        "future": str(now + 301),
        "ancient": str(now - 10**9),
        "padded": f" {now} ",
    }.get(draw.pick(STAMPS), "")
    if not stamp or draw.one_in(20):
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
    }[draw.pick(SW_SIGNATURES)]
    if draw.one_in(20):
        signature = draw(HEADER_VALUE)
    headers += [("webhook-id", msg_id), ("webhook-timestamp", stamp)]
    if signature is not None:
        headers.append(("webhook-signature", signature))
    return finish(draw, "standard-webhooks", "/hooks/billing", body, headers)


# --- Anything at all ------------------------------------------------------------------------

PATH_NAMES = one_of(
    pick(SOURCE_NAMES),
    lambda draw: quote(draw(SHORT_TEXT).encode("utf-8", "surrogatepass"), safe=""),
    pick(["", "..", "%2e%2e", "am/", "AM", "am%00", "a" * 300, "%ff"]),
)
GARBAGE_BODIES = one_of(BYTES, lambda draw: (draw(BYTES)[: draw.integer(1, 4)] or b"\x00") * 3000)
ANY_TYPE = one_of(CONTENT_TYPE, JSON_TYPE)


def garbage_request(draw: Draw) -> Request:
    """Raw bytes, any content type, any headers, to any source name (configured or not)."""
    headers = content_type(draw(ANY_TYPE)) + draw(EXTRA_HEADERS)
    return finish(draw, "garbage", "/hooks/" + draw(PATH_NAMES), draw(GARBAGE_BODIES), headers)


REQUEST = one_of(
    alertmanager_request,
    json_request,
    order_request,
    cloudevents_request,
    github_request,
    standard_webhooks_request,
    garbage_request,
)


def requests(count: int) -> list[Request]:
    """`count` requests (or a few more), the same on every run of one Hypothesis version."""
    return generate(REQUEST, count)
