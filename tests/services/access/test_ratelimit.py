"""Token buckets: a burst, then one request per 1/rate seconds, with the wait to tell the caller."""

from __future__ import annotations

import pytest

from services.access import ratelimit
from services.access.ratelimit import Limiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_burst_then_the_rate_with_the_wait_to_retry() -> None:
    clock = Clock()
    limiter = Limiter(clock)
    # Given a bucket of burst 3 refilling 2 per second: three pass, the fourth waits half a second
    assert [limiter.take("a", 2.0, 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", 2.0, 3) == 0.5 and retry_after(0.5) == 1
    # Another key has its own bucket
    assert limiter.take("b", 2.0, 3) == 0.0
    # When half a second passes, one more passes
    clock.t += 0.5
    assert limiter.wait("a", 2.0, 3) == 0.0  # wait does not spend
    assert limiter.take("a", 2.0, 3) == 0.0 and limiter.take("a", 2.0, 3) > 0
    # And a long pause refills to the burst, never beyond
    clock.t += 60
    assert [limiter.take("a", 2.0, 3) for _ in range(4)][-1] > 0


def test_full_buckets_are_forgotten_when_many_keys_come(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    limiter = Limiter(clock)
    monkeypatch.setattr(ratelimit, "MAX_KEYS", 10)
    # Given an emptied slow bucket (an address that guessed) among many that refill
    limiter.take("guesser", 0.01, 1)
    for i in range(30):
        limiter.take(f"scan-{i}", 1.0, 5)
        clock.t += 1
    # Then memory stays bounded, and the emptied bucket was not the one forgotten
    assert len(limiter._buckets) <= 10
    assert limiter.take("guesser", 0.01, 1) > 0
