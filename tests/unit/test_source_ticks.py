"""The slot a `/ticks` request names, and the token bucket that rate-limits other sources."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.errors import BadRequest, UnsupportedMediaType
from gateway.sources.ratelimit import TokenBucket
from gateway.ticks import slot_of

NOW = datetime(2026, 11, 24, 2, 0, 7, 654321, tzinfo=UTC)
JSON = "application/json"


@pytest.mark.parametrize("body", [b"", b"  ", b"{}"])
def test_without_a_slot_the_tick_is_for_now_truncated_to_the_second(body: bytes) -> None:
    assert slot_of(body, JSON, NOW) == datetime(2026, 11, 24, 2, 0, 7, tzinfo=UTC)


@pytest.mark.parametrize("text", ["2026-11-24T02:00:00Z", "2026-11-24T03:00:00+01:00", "2026-11-24T02:00:00.900Z"])
def test_a_slot_is_read_in_utc_to_the_second(text: str) -> None:
    assert slot_of(f'{{"slot": "{text}"}}'.encode(), JSON, NOW) == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        b'{"slot": "2026-11-24T02:00:00"}',
        b'{"slot": "tomorrow"}',
        b'{"slot": 1700000000}',
        b'{"at": "x"}',
        b"[]",
        b'{"slot": "0001-01-01T00:00:00+01:00"}',
        b'{"slot": "9999-12-31T23:59:59-01:00"}',
    ],
    ids=["no-offset", "not-a-time", "number", "unknown-field", "not-an-object", "before-year-1", "after-9999"],
)
def test_a_bad_slot_is_bad_input(body: bytes) -> None:
    with pytest.raises(BadRequest):
        slot_of(body, JSON, NOW)


def test_a_body_must_be_json() -> None:
    with pytest.raises(UnsupportedMediaType):
        slot_of(b"slot=now", "application/x-www-form-urlencoded", NOW)


def test_the_bucket_allows_its_burst_then_says_how_long_to_wait() -> None:
    now = [100.0]
    bucket = TokenBucket(per_second=0.5, burst=2, clock=lambda: now[0])
    assert [bucket.take(), bucket.take()] == [0, 0]
    assert bucket.take() == 2
    now[0] += 2
    assert bucket.take() == 0
