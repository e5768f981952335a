"""Loop-local metrics (`LoopCounter`, `LoopHistogram`): the same exposition as prometheus_client's
Counter and Histogram for the same updates, without the `_created` samples."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from hookline.metrics import LoopCounter, LoopHistogram

BUCKETS = (0.001, 0.01, 0.1, 1)
#: On a bound, between bounds, below the first and above the last.
VALUES = (0.0005, 0.001, 0.002, 0.01, 0.05, 0.1, 0.5, 1, 3, 0.01)


def lines(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return sorted(line for line in text.splitlines() if "_created" not in line)


def test_counts_and_observations_are_exposed_as_prometheus_client_would() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    counter = LoopCounter("hookline_test_requests_total", "Requests", ["source", "status"], ours)
    histogram = LoopHistogram("hookline_test_latency_seconds", "Latency", ["source"], ours, buckets=BUCKETS)
    their_counter = Counter("hookline_test_requests_total", "Requests", ["source", "status"], registry=theirs)
    their_histogram = Histogram(
        "hookline_test_latency_seconds", "Latency", ["source"], registry=theirs, buckets=BUCKETS
    )
    for source, status in (("a", 202), ("a", 202), ("b", 503), ("a", 400)):
        counter.labels(source, status).inc()
        their_counter.labels(source, status).inc()
    counter.labels("b", 503).inc(2.5)
    their_counter.labels("b", 503).inc(2.5)
    for i, value in enumerate(VALUES):
        source = "ab"[i % 2]
        histogram.labels(source).observe(value)
        their_histogram.labels(source).observe(value)
    assert lines(ours) == lines(theirs)


def test_metrics_without_labels_are_exposed_from_the_start_and_count_like_prometheus_clients() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    counter = LoopCounter("hookline_test_retries_total", "Retries", [], ours)
    histogram = LoopHistogram("hookline_test_wait_seconds", "Wait", [], ours, buckets=BUCKETS)
    their_counter = Counter("hookline_test_retries_total", "Retries", registry=theirs)
    their_histogram = Histogram("hookline_test_wait_seconds", "Wait", registry=theirs, buckets=BUCKETS)
    assert lines(ours) == lines(theirs)  # zeros before the first count
    for value in VALUES:
        counter.inc()
        their_counter.inc()
        histogram.observe(value)
        their_histogram.observe(value)
    assert lines(ours) == lines(theirs)


def test_a_child_is_made_once_per_label_values() -> None:
    counter = LoopCounter("hookline_test_total", "T", ["source"], CollectorRegistry())
    assert counter.labels("a") is counter.labels("a") is not counter.labels("b")


def test_the_wrong_number_of_labels_is_refused() -> None:
    counter = LoopCounter("hookline_test_total", "T", ["source", "status"], CollectorRegistry())
    with pytest.raises(ValueError, match="takes the labels"):
        counter.labels("a")


def test_a_second_metric_of_the_same_name_is_refused_by_the_registry() -> None:
    registry = CollectorRegistry()
    LoopCounter("hookline_test_total", "T", ["source"], registry)
    with pytest.raises(ValueError, match="Duplicated"):
        LoopCounter("hookline_test_total", "T", ["source"], registry)


def test_what_prometheus_client_refuses_is_refused() -> None:
    counter = LoopCounter("hookline_test_total", "T", ["source"], CollectorRegistry())
    with pytest.raises(ValueError, match="only goes up"):
        counter.labels("a").inc(-1)
    with pytest.raises(ValueError, match="count through labels"):
        counter.inc()
    with pytest.raises(ValueError, match="increasing order"):
        LoopHistogram("hookline_test_seconds", "T", [], CollectorRegistry(), buckets=(1, 0.5))


def test_nan_is_counted_in_no_bucket() -> None:
    registry = CollectorRegistry()
    histogram = LoopHistogram("hookline_test_seconds", "T", [], registry, buckets=BUCKETS)
    histogram.observe(float("nan"))
    histogram.observe(0.05)
    assert "hookline_test_seconds_count 1.0" in generate_latest(registry).decode()
