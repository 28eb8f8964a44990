"""A run's claim: which attempt may train it now, decided by the log alone.

An attempt claims a run by appending its `RunStarted` at the stream version it read, so of two
deliveries that read the same stream only one claim lands (the other gets `ConcurrencyConflict`,
re-reads, and sees the first). The claim lasts while its holder keeps appending to the run's
stream (`RunProgressed`, or `RunLeaseRenewed` when it has nothing else to say) at least once per
lease; a holder silent for longer is taken to be dead and its run may be claimed again. Every
later append of an attempt is made at the stream version it last saw, so a holder that was
overtaken (stalled past its lease) finds out at its next append and stops, writing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from events.models.experiments import TERMINAL_TYPES, RunStarted
from events.store import StoredEvent

CLAIM_TYPE = RunStarted.event_type


class ClaimHeld(Exception):
    """Another attempt holds a live claim on the run: come back in `retry_in_s`."""

    def __init__(self, holder: str, retry_in_s: float) -> None:
        super().__init__(f"attempt {holder} holds the run's claim; retry in {retry_in_s:.1f} s")
        self.holder = holder
        self.retry_in_s = retry_in_s


class ClaimLost(Exception):
    """This attempt no longer holds the run's claim (it ended, or another attempt took it over)."""


@dataclass(frozen=True)
class ClaimState:
    """What one read of a run's stream says about its claim."""

    version: int
    """The stream's version (number of events): the version the next conditional append expects."""
    ended: bool
    holder: str | None
    """The attempt of the latest `RunStarted`, None when no attempt has claimed the run."""
    holder_age_s: float
    """Seconds since the holder's latest event was recorded (inf without a holder)."""

    def live_holder(self, lease_s: float) -> str | None:
        """The holder, while its lease runs."""
        return self.holder if self.holder is not None and self.holder_age_s < lease_s else None


def claim_state(stream: list[StoredEvent], now: datetime | None = None) -> ClaimState:
    holder: str | None = None
    last_seen: str | None = None
    ended = False
    for stored in stream:
        ended = ended or stored.event_type in TERMINAL_TYPES
        attempt = stored.data.get("attempt")
        if stored.event_type == CLAIM_TYPE:
            holder = str(attempt)
        if holder is not None and attempt == holder:
            last_seen = stored.recorded_at
    age = float("inf")
    if last_seen is not None:
        # recorded_at is the writer's UTC clock: the lease must exceed the skew between hosts.
        recorded = datetime.fromisoformat(last_seen.replace("Z", "+00:00"))
        age = max(0.0, ((now or datetime.now(UTC)) - recorded).total_seconds())
    return ClaimState(version=len(stream), ended=ended, holder=holder, holder_age_s=age)
