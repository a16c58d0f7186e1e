"""The relay's small pure parts: its reconnect backoff, its named queries, its metrics."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from cdc import metrics
from cdc.backoff import Backoff
from cdc.log import Batch, Change, Cursor
from cdc.relay import BYTES_PER_MESSAGE, CHANGES_PER_MESSAGE, _chunks
from cdc.routing import RelayedChange, StreamChange
from cdc.sql import QUERIES_FILE, queries, query


def test_backoff_doubles_from_its_start_to_its_cap_within_the_jitter_and_resets():
    random.seed(1)
    backoff = Backoff(start=0.5, cap=4.0, jitter=0.1)
    delays = [backoff.next_delay() for _ in range(6)]
    for delay, nominal in zip(delays, [0.5, 1.0, 2.0, 4.0, 4.0, 4.0], strict=True):
        assert nominal * 0.9 <= delay <= nominal * 1.1
    assert len(set(delays)) == len(delays), "no jitter: every listener would retry in step"
    backoff.reset()
    assert 0.45 <= backoff.next_delay() <= 0.55


def test_the_defaults_start_at_half_a_second_and_stop_at_thirty():
    backoff = Backoff()
    first = backoff.next_delay()
    assert 0.45 <= first <= 0.55
    for _ in range(20):
        last = backoff.next_delay()
    assert 27 <= last <= 33


def test_every_named_query_is_loaded_whole_and_unknown_names_fail():
    names = queries()
    assert set(names) >= {"read_changes", "insert_tick", "mark_relayed", "tick_changes", "prune_events"}
    assert len(names) == QUERIES_FILE.read_text().count("-- name: ")
    assert query("mark_relayed") == "UPDATE cdc.relay SET relayed_tick = %(tick)s, relayed_at = now()"
    assert query("read_changes").endswith("ORDER BY e.id")
    with pytest.raises(KeyError):
        query("no_such_query")


def value(name: str) -> float:
    sample = REGISTRY.get_sample_value(name)
    assert sample is not None, name
    return sample


def test_a_batch_sets_the_lag_from_its_oldest_change_and_counts_a_tick():
    old = datetime.now(UTC) - timedelta(seconds=30)
    changes = [Change(i, 1, "public.article", "insert", {}, None, old + timedelta(seconds=i)) for i in (0, 5)]
    batch = Batch(cursor=Cursor(since="1:1:"), snapshot="1:1:", changes=changes, complete=True)
    metrics.batch_read(batch)
    assert 29 <= value("livefeed_relay_lag_seconds") <= 40
    metrics.batch_read(Batch(cursor=Cursor(since="1:1:"), snapshot="1:1:", changes=[], complete=True))
    assert value("livefeed_relay_lag_seconds") < 1

    ticks, relayed = value("livefeed_relay_ticks_total"), value("livefeed_relay_changes_total")
    metrics.tick_relayed(batch)
    assert value("livefeed_relay_ticks_total") == ticks + 1
    assert value("livefeed_relay_changes_total") == relayed + 2


def test_the_relay_splits_a_group_s_changes_by_count_and_by_bytes():
    def change(n: int, size: int) -> RelayedChange:
        view = StreamChange(id=n, txid=n, tick=1, stream="articles", op="insert", row={"id": n}, old=None)
        return view.as_message("x" * size)

    many = [change(n, 10) for n in range(CHANGES_PER_MESSAGE + 1)]
    assert [len(chunk) for chunk in _chunks(many)] == [CHANGES_PER_MESSAGE, 1]
    large = [change(n, BYTES_PER_MESSAGE // 3) for n in range(7)]
    assert [len(chunk) for chunk in _chunks(large)] == [3, 3, 1]
    huge = [change(1, 2 * BYTES_PER_MESSAGE), change(2, 10)]
    assert [[c["id"] for c in chunk] for chunk in _chunks(huge)] == [[1], [2]]  # never split a change
