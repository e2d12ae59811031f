"""Token-bucket rate limits, in process.

Each `yufu serve` worker process keeps its own buckets (nothing is shared between processes
or stored): with YUFU_WORKERS=N a client that spreads its requests over the workers gets up to
N times the limit. The limits are a guard against a runaway or hostile client, not a quota.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

# Requests per API key (keyed by the key's public prefix, so no database read): scripts/bench
# drives its `single` scenario through ONE operator key at up to ~2,500 requests/s
# (docs/benchmarks.md) and its POS mix through 20 merchant keys (~70/s each). The default sits
# above the fastest single key measured, with room for the runs' +-20%, so that it stops a
# client in a tight loop without ever slowing a busy till or that benchmark.
key_rate_per_s = 4_000.0
key_burst = 8_000
# Failed authentications (401 answers) per client address: 20 at once, then one a second.
# A till retrying a wrong key once a second never trips it; a guesser that ran ~870/s gets 1/s.
failed_auth_rate_per_s = 1.0
failed_auth_burst = 20
# One-time-code requests and attempts per client address (POST /v1/consumer/codes|keys): 10 at
# once, then one every 30 s. A consumer needs two; someone walking phones or codes from one
# address gets a code's worth every minute. (Per phone, the database limits them too.)
code_rate_per_s = 1 / 30
code_burst = 10
# Public merchant lookups (GET /v1/public/merchants, no key) per client address: 30 at once,
# then one a second. A consumer checks a merchant or two; a scraper walking names gets one a
# second.
lookup_rate_per_s = 1.0
lookup_burst = 30
# Buckets kept per limiter; past this the one touched longest ago is forgotten. About 100 bytes
# a bucket: 100,000 keys are ~10 MB per limiter at most.
tracked_keys_max = 100_000


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The edge's limits (api/edge.py). A rate of 0 switches that limit off."""

    key_rate_per_s: float = key_rate_per_s
    key_burst: int = key_burst
    failed_auth_rate_per_s: float = failed_auth_rate_per_s
    failed_auth_burst: int = failed_auth_burst
    code_rate_per_s: float = code_rate_per_s
    code_burst: int = code_burst
    lookup_rate_per_s: float = lookup_rate_per_s
    lookup_burst: int = lookup_burst

    def __post_init__(self) -> None:
        # Refused when the settings are read (yufu serve's start), not at the first request.
        for rate_per_s, burst in ((self.key_rate_per_s, self.key_burst),
                                  (self.failed_auth_rate_per_s, self.failed_auth_burst),
                                  (self.lookup_rate_per_s, self.lookup_burst)):
            if not rate_per_s >= 0 or (rate_per_s > 0 and burst < 1):
                raise ValueError(f"a rate limit needs a rate >= 0 (0: off) and a burst >= 1, "
                                 f"not {rate_per_s}/s with a burst of {burst}")


class Limiter:
    """Token buckets, one per key: a key may spend `burst` tokens at once, and they come back
    at `rate_per_s` (so over any window of t seconds it spends at most burst + rate_per_s * t).
    Thread-safe. Memory is bounded: past `keys_max` keys the bucket touched longest ago is
    forgotten, and that key starts again with a full bucket."""

    def __init__(self, rate_per_s: float, burst: int, keys_max: int = tracked_keys_max,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not (rate_per_s > 0 and burst >= 1 and keys_max >= 1):
            raise ValueError("a limiter needs rate_per_s > 0, burst >= 1 and keys_max >= 1")
        self.rate_per_s, self.burst, self.keys_max = rate_per_s, burst, keys_max
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Spend a token of `key`: None if there was one, else the seconds until there is one
        (and nothing is spent)."""
        with self._lock:
            tokens, now = self._tokens(key)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            buckets = self._buckets
            buckets[key] = (tokens, now)
            buckets.move_to_end(key)
            if len(buckets) > self.keys_max:
                buckets.popitem(last=False)
        return None if allowed else (1.0 - tokens) / self.rate_per_s

    def check(self, key: str) -> float | None:
        """As `hit`, but spends nothing: may `key` spend a token now?"""
        with self._lock:
            tokens, _ = self._tokens(key)
        return None if tokens >= 1.0 else (1.0 - tokens) / self.rate_per_s

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: str) -> tuple[float, float]:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(self.burst), now
        tokens, then = bucket
        return min(float(self.burst), tokens + (now - then) * self.rate_per_s), now


def limiter_or_none(rate_per_s: float, burst: int) -> Limiter | None:
    """A limiter, or None where the rate is 0 (switched off)."""
    return Limiter(rate_per_s, burst) if rate_per_s > 0 else None


def retry_after_header_s(wait_s: float) -> int:
    """Retry-After is whole seconds (RFC 9110); never 0, which invites an immediate retry."""
    return max(1, math.ceil(wait_s))
