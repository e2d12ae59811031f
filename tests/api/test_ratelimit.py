"""The token bucket (api/ratelimit.py): its arithmetic, on a clock the test moves."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.ratelimit import Limiter, RateLimits, limiter_or_none, retry_after_header_s
from api.settings import rate_limits_from

# Float arithmetic on the refill: a bound may be passed by this much of a token, never by one.
tokens_epsilon = 1e-9


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def _allowed_times(rate_per_s: float, burst: int, gaps_s: list[float]) -> list[float]:
    """Hit one key at the given gaps; the times of the hits allowed."""
    clock = Clock()
    limiter = Limiter(rate_per_s, burst, clock=clock)
    allowed = []
    for gap_s in gaps_s:
        clock.now_s += gap_s
        if limiter.hit("k") is None:
            allowed.append(clock.now_s)
    return allowed


@settings(max_examples=300, deadline=None)
@given(rate_per_s=st.floats(0.1, 1000.0), burst=st.integers(1, 50),
       gaps_s=st.lists(st.one_of(st.just(0.0), st.floats(0.0, 2.0)), max_size=300))
def test_a_key_never_spends_more_than_its_burst_and_its_rate_in_any_window(
        rate_per_s: float, burst: int, gaps_s: list[float]) -> None:
    allowed = _allowed_times(rate_per_s, burst, gaps_s)
    for i, start_s in enumerate(allowed):
        for j in range(i, len(allowed)):
            in_window = j - i + 1
            assert in_window <= burst + rate_per_s * (allowed[j] - start_s) + tokens_epsilon


@settings(max_examples=200, deadline=None)
@given(rate_per_s=st.floats(0.1, 1000.0), burst=st.integers(1, 50),
       spent=st.integers(0, 200))
def test_a_refused_hit_names_the_wait_after_which_the_next_one_is_allowed(
        rate_per_s: float, burst: int, spent: int) -> None:
    clock = Clock()
    limiter = Limiter(rate_per_s, burst, clock=clock)
    allowed = sum(limiter.hit("k") is None for _ in range(burst + spent))
    assert allowed == burst  # all at one instant: exactly the burst
    if spent == 0:
        return
    wait_s = limiter.hit("k")
    assert wait_s is not None and wait_s == pytest.approx(1 / rate_per_s)
    assert limiter.check("k") == wait_s  # checking spends nothing
    clock.now_s += wait_s * 0.99
    assert limiter.hit("k") is not None
    clock.now_s += wait_s * 0.02
    assert limiter.hit("k") is None
    assert limiter.hit("k") is not None


def test_keys_have_their_own_buckets() -> None:
    limiter = Limiter(1.0, 2, clock=Clock())
    assert [limiter.hit("a") for _ in range(3)][:2] == [None, None]
    assert limiter.hit("a") is not None
    assert limiter.hit("b") is None


def test_check_spends_nothing_and_stores_no_key() -> None:
    limiter = Limiter(1.0, 1, clock=Clock())
    assert [limiter.check("a") for _ in range(5)] == [None] * 5
    assert len(limiter) == 0
    assert limiter.hit("a") is None
    assert limiter.check("a") == pytest.approx(1.0)


def test_memory_is_bounded_by_forgetting_the_key_touched_longest_ago() -> None:
    limiter = Limiter(1.0, 1, keys_max=3, clock=Clock())
    for key in "abc":
        assert limiter.hit(key) is None
    assert limiter.hit("a") is not None  # touches "a": now "b" is the oldest
    assert limiter.hit("d") is None
    assert len(limiter) == 3
    assert limiter.hit("b") is None  # forgotten, so a full bucket again
    assert limiter.hit("a") is not None  # kept, and still empty


def test_threads_together_spend_exactly_the_burst() -> None:
    limiter = Limiter(0.001, 1000, clock=Clock())
    allowed = [0] * 8

    def spend(index: int) -> None:
        allowed[index] = sum(limiter.hit("k") is None for _ in range(500))

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(allowed) == 1000


@pytest.mark.parametrize(("wait_s", "header_s"), [(0.0001, 1), (0.5, 1), (1.0, 1), (1.01, 2),
                                                  (59.2, 60)])
def test_retry_after_is_whole_seconds_and_at_least_one(wait_s: float, header_s: int) -> None:
    assert retry_after_header_s(wait_s) == header_s


def test_a_rate_of_zero_switches_a_limit_off_and_bad_limits_are_refused() -> None:
    assert limiter_or_none(0, 10) is None
    assert isinstance(limiter_or_none(5.0, 10), Limiter)
    for rate_per_s, burst, keys_max in [(0.0, 1, 1), (-1.0, 1, 1), (1.0, 0, 1), (1.0, 1, 0)]:
        with pytest.raises(ValueError):
            Limiter(rate_per_s, burst, keys_max)


@pytest.mark.parametrize("env", [{"YUFU_KEY_BURST": "0"}, {"YUFU_FAILED_AUTH_RATE_PER_S": "-1"},
                                 {"YUFU_KEY_RATE_PER_S": "nan"}, {"YUFU_KEY_RATE_PER_S": "fast"}])
def test_bad_limits_are_refused_when_the_settings_are_read(env: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        rate_limits_from(env)


def test_the_limits_come_from_the_environment_with_named_defaults() -> None:
    assert rate_limits_from({}) == RateLimits()
    assert rate_limits_from({"YUFU_KEY_RATE_PER_S": "10", "YUFU_KEY_BURST": "20",
                             "YUFU_FAILED_AUTH_RATE_PER_S": "0",
                             "YUFU_FAILED_AUTH_BURST": "3"}) == RateLimits(10.0, 20, 0.0, 3)
