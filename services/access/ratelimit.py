"""Token buckets in process: per API token for requests, per client address for failed logins.

A bucket holds up to `burst` requests and refills at `rate` per second; a request finding it
empty is told how long until one is back (the Retry-After of a 429). Buckets live in one
process: several `knobs serve` workers would each allow the limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_KEYS = 10_000
"""Buckets kept before full ones are forgotten: an address scan must not grow memory forever."""


@dataclass
class _Bucket:
    level: float
    at: float
    rate: float
    burst: int

    def full(self, t: float) -> bool:
        return self.level + (t - self.at) * self.rate >= self.burst


class Limiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def _refilled(self, key: str, rate: float, burst: int, t: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_KEYS:
                self._forget(t)
            bucket = self._buckets[key] = _Bucket(level=float(burst), at=t, rate=rate, burst=burst)
        bucket.rate, bucket.burst = rate, burst  # a setting or a token's override may change
        bucket.level = min(float(burst), bucket.level + (t - bucket.at) * rate)
        bucket.at = t
        return bucket

    def _forget(self, t: float) -> None:
        """Full buckets carry no state worth keeping; if none is full, the least recently used half."""
        full = [k for k, b in self._buckets.items() if b.full(t)]
        oldest = sorted(self._buckets, key=lambda k: self._buckets[k].at)[: len(self._buckets) // 2]
        for k in full or oldest:
            del self._buckets[k]

    def wait(self, key: str, rate: float, burst: int) -> float:
        """Seconds until `key` may spend one request (0: now), without spending it."""
        with self._lock:
            bucket = self._refilled(key, rate, burst, self._clock())
            return 0.0 if bucket.level >= 1 else (1 - bucket.level) / rate

    def take(self, key: str, rate: float, burst: int) -> float:
        """Spend one request of `key`'s bucket: 0 when allowed, else the seconds to wait."""
        with self._lock:
            bucket = self._refilled(key, rate, burst, self._clock())
            if bucket.level >= 1:
                bucket.level -= 1
                return 0.0
            return (1 - bucket.level) / rate


def retry_after(seconds: float) -> int:
    """Whole seconds for a Retry-After header, never 0 (a client reading 0 retries at once)."""
    return max(1, math.ceil(seconds))
