"""Facts about an LLM judge grading students' free-form answers, and how far it can be trusted.

A judgement is one (experiment, the runs judged, judge model, settings): its id is a hash of
those, so judging the same runs the same way again is the same fact. Its figures are one
`JudgeReliabilityMeasured` in the stream `judge:<experiment>`, appended in one batch with a
`BenchmarkScored` (`qa_judge_accuracy`) per run, so `knobs rank` can rank on the judge's score
while the reliability figures say what that score is worth.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from events.canonical import canonical_json
from events.models.base import Event, register

JUDGE_BENCHMARK = "qa_judge_accuracy"
"""The benchmark a judge's per-run score is recorded under (higher is better)."""


class JudgeInputRejected(ValueError):
    """An experiment, setting or run the judge cannot use; raised before anything is logged.

    Here, on the floor, so that services catch what the workers raise without importing them.
    """


def judgement_id(experiment: str, runs: list[str], model: str, settings: dict[str, Any]) -> str:
    """The same runs judged by the same model with the same settings are one judgement."""
    identity = canonical_json({"experiment": experiment, "runs": sorted(runs), "model": model,
                               "settings": settings})
    return hashlib.sha256(identity.encode()).hexdigest()[:24]


def judge_stream(experiment: str) -> str:
    return f"judge:{experiment}"


def reliability_key(judgement: str) -> str:
    return f"judge-reliability:{judgement}"


def judge_score_key(judgement: str, run_id: str) -> str:
    return f"judge-score:{judgement}/{run_id}"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KindAgreement(_Frozen):
    """How the judge did on one kind of item (student answers, or a kind of control)."""

    judgements: int = Field(ge=0, description="parsable verdicts")
    agreement: float | None = Field(default=None, description="share equal to exact match")
    judged_yes: float | None = Field(default=None, description="share of verdicts that said yes")


@register
class JudgeReliabilityMeasured(Event):
    """An LLM judge graded an experiment's answers; these figures say how far to trust it.

    `agreement_with_exact_match` and `kappa` (Cohen's) compare each parsable verdict with exact
    match, over student answers and controls (the reference answer itself, and another person's
    value of the attribute), so the figures stay informative when every student is wrong.
    `self_agreement`: the mean, over items, of the share of pairs of repeated samples giving the
    same verdict (an unparsable reply is a verdict of its own). `position_consistency`: the share
    of pairwise comparisons, asked in both orders, whose choice follows the answer, not the
    position. None where there was nothing to compute it from (e.g. kappa when exact match
    and the judge are both constant).
    """

    judgement_id: str = Field(min_length=1)
    experiment: str = Field(min_length=1)
    judge_model: str = Field(min_length=1)
    judge_host: str = Field(description="host:port of the server's base URL (no path, no key)")
    prompt_version: str
    runs: list[str]
    settings: dict[str, Any]
    exact_match: dict[str, float] = Field(default_factory=dict, description="per run, exact match on "
                                          "the items the judge graded: the score beside the judge's")
    items: int = Field(ge=0, description="items graded (student answers and controls)")
    judgements: int = Field(ge=0, description="pointwise requests: items x repeats")
    agreement_with_exact_match: float | None = None
    kappa: float | None = None
    by_kind: dict[str, KindAgreement] = Field(default_factory=dict)
    self_agreement: float | None = None
    position_pairs: int = Field(ge=0)
    position_consistency: float | None = None
    first_position_share: float | None = Field(default=None, description="share of parsable "
                                               "pairwise verdicts choosing the answer shown first")
    unparsable: int = Field(ge=0, description="replies with no clear verdict, pointwise and pairwise")
    seconds: float = Field(ge=0)
    requests: int = Field(ge=0, description="requests sent (cached answers cost none)")
    cached: int = Field(ge=0)
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)

    def stream_id(self) -> str:
        return judge_stream(self.experiment)


__all__ = [
    "JUDGE_BENCHMARK",
    "JudgeInputRejected",
    "JudgeReliabilityMeasured",
    "KindAgreement",
    "judge_score_key",
    "judge_stream",
    "judgement_id",
    "reliability_key",
]
