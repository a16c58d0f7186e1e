"""TokenBucket (consumers/ratelimit.py) driven by a clock the test moves: no sleeps."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def bucket(rate: float, burst: float) -> tuple[TokenBucket, FakeClock]:
    clock = FakeClock()
    return TokenBucket(rate, burst, clock=clock), clock


def takes(b: TokenBucket, attempts: int) -> int:
    return sum(b.take() for _ in range(attempts))


def test_a_full_burst_passes_then_the_next_is_refused():
    b, _ = bucket(rate=20, burst=40)
    assert takes(b, 40) == 40
    assert not b.take()


def test_it_refills_at_rate():
    b, clock = bucket(rate=20, burst=40)
    takes(b, 40)
    clock.advance(0.049)  # not yet one token
    assert not b.take()
    clock.advance(0.002)
    assert b.take()
    assert not b.take()
    clock.advance(0.5)  # ten tokens
    assert takes(b, 20) == 10


def test_idle_time_never_fills_it_above_burst():
    b, clock = bucket(rate=20, burst=40)
    clock.advance(3600)
    assert takes(b, 100) == 40
    takes(b, 1)
    clock.advance(3600)
    assert takes(b, 100) == 40


rates = st.floats(min_value=0.5, max_value=50)
bursts = st.integers(min_value=1, max_value=50)
# Advances of 0 are common (messages in one instant); long ones let the bucket fill up.
advances = st.one_of(st.just(0.0), st.floats(min_value=0, max_value=0.2), st.floats(min_value=0, max_value=5))
steps = st.lists(st.tuples(advances, st.integers(min_value=0, max_value=8)), max_size=40)


@settings(max_examples=100, deadline=None)
@given(rate=rates, burst=bursts, steps=steps)
def test_no_window_passes_more_than_burst_plus_rate_times_its_length(rate, burst, steps):
    b, clock = bucket(rate, burst)
    passed: list[float] = []  # the clock at each successful take, in order
    for advance, attempts in steps:
        clock.advance(advance)
        passed += [clock.now] * takes(b, attempts)
    # The tightest windows start and end at a success: check all of them.
    for i, start in enumerate(passed):
        for j in range(i, len(passed)):
            assert j - i + 1 <= burst + rate * (passed[j] - start) + 1e-6


@settings(max_examples=50, deadline=None)
@given(rate=rates, burst=bursts, steps=steps)
def test_after_burst_over_rate_seconds_idle_a_whole_burst_passes(rate, burst, steps):
    b, clock = bucket(rate, burst)
    for advance, attempts in steps:
        clock.advance(advance)
        takes(b, attempts)
    clock.advance(burst / rate + 1e-6)
    assert takes(b, burst + 5) == burst
