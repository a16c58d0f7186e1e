"""Asking real servers over HTTP from tests: GET, poll until an answer is right, read metrics."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers or {}), timeout=10
        ) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def poll(fetch: Callable[[], T], until: Callable[[T], bool], timeout: float = 20.0) -> T:
    """Fetch until the answer satisfies `until`; fail with the last answer after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        last: T | OSError
        try:
            last = answer = fetch()
        except OSError as exc:  # not listening yet
            last = exc
        else:
            if until(answer):
                return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s; last answer: {last!r}")
        time.sleep(0.1)  # the polling interval: each round asks the real thing again


def metrics(url: str) -> dict[str, float]:
    """Every sample of a Prometheus text page, by name and labels, parsed by prometheus-client."""
    status, text = get(url)
    assert status == 200, text
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return samples
