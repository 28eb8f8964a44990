"""Which way a benchmark improves, so that "gain" means better whatever the metric.

Losses, perplexities, error rates and bits go down; accuracies, exact match, F1 and
pass rates go up. A name that says neither is taken as higher-is-better, and every
command that ranks accepts `--lower-is-better` / `--higher-is-better` to say otherwise.
"""

from __future__ import annotations

import re

from events.models import Direction

_LOWER = re.compile(r"(loss|perplexity|ppl|error|err\b|wer|cer|bpb|bpc|bits|nll|mse|mae|rmse|latency)",
                    re.IGNORECASE)


def direction_for(benchmark: str, override: Direction | None = None) -> Direction:
    """`override` when given, else "lower" for loss-like names and "higher" otherwise."""
    if override is not None:
        return override
    return "lower" if _LOWER.search(benchmark) else "higher"


def gain(effect: float, direction: Direction) -> float:
    """An effect (value minus baseline) turned into an improvement: positive is better."""
    return -effect if direction == "lower" else effect
