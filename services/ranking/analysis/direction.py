"""Which way a benchmark improves, so that "gain" means better whatever the metric.

Losses, perplexities, error rates and bits go down; accuracies, exact match, F1 and
pass rates go up. A name that says neither is taken as higher-is-better, and every
command that ranks accepts `--lower-is-better` / `--higher-is-better` to say otherwise.
"""

from __future__ import annotations

import re

from events.models import Direction

# Words that mean lower-is-better, anywhere in the name (loss, perplexity, error, latency,
# volatility and forgetting: the training-influence outcomes),
# and short tokens that only count as a whole part of the name ("wer" in "val/wer", not in
# "answer_f1"): parts are separated by _ / . - : or spaces.
_LOWER_WORDS = re.compile(r"loss|perplexity|error|latency|volatility|forgetting", re.IGNORECASE)
_LOWER_TOKENS = re.compile(r"(?:^|[_/.\-: ])(ppl|err|wer|cer|bpb|bpc|bits|nll|mse|mae|rmse)(?:$|[_/.\-: ,])",
                           re.IGNORECASE)


def direction_for(benchmark: str, override: Direction | None = None) -> Direction:
    """`override` when given, else "lower" for loss-like names and "higher" otherwise."""
    if override is not None:
        return override
    lower = _LOWER_WORDS.search(benchmark) or _LOWER_TOKENS.search(benchmark)
    return "lower" if lower else "higher"


def gain(effect: float, direction: Direction) -> float:
    """An effect (value minus baseline) turned into an improvement: positive is better."""
    return -effect if direction == "lower" else effect
