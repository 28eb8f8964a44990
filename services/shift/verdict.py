"""The verdict on the compatibility hypothesis, from plain numbers: pure statistics, no framework.

The hypothesis: the higher a data set's volatility (the dispersion of its per-example gradient
norms, measured on the model before training on it), the worse the model learns and generalises
it and the more it forgets of the rest. Given, per candidate data set, its volatility and, per
(candidate, seed) fine-tune, its outcomes, each outcome gets:

- the correlation across candidates, Spearman (primary: the claim is about order) and Pearson,
  between volatility and the outcome's mean over seeds;
- a bootstrap interval over seeds: seeds are resampled with replacement (the same resampled
  seeds for every candidate, as a seed's runs share its data order), the candidate means and the
  correlation recomputed; a fixed bootstrap seed, `resamples` resamples, the percentile interval;
- an exact permutation p-value (one-sided) of the Spearman correlation of the candidate
  means: the share of the n! orderings of the candidates' outcomes at least as extreme. The seed
  bootstrap measures training noise only, not which candidates were chosen: when seeds barely
  move the means, its interval shrinks to a point, and a Spearman of -0.1 across five candidates
  would "exclude 0" (measured on the default run). So a side also needs its permutation p at
  most `alpha` (0.05; with five candidates only rho >= 0.9 reaches it, 1/120 for a perfect order);
  alpha=None judges by the interval alone;
- a verdict: `supported` when the Spearman interval excludes 0 on the hypothesised side (higher
  volatility -> higher losses and more forgetting, lower exact match) and the permutation p on
  that side is at most alpha, `contradicted` likewise on the other side, `inconclusive`
  otherwise (an undefined correlation included).

Overall (over the primary outcomes, the answer losses): `supported` when most primary outcomes
are supported and none contradicted, `contradicted` symmetrically, else `inconclusive`.

The curriculum comparison: per order and outcome, the mean over seeds with its bootstrap
interval, and ascending - descending paired by seed, with its interval.

Rows are plain mappings, as workers/jobs/hypothesis.py writes them in its JSON:
{"candidate": ..., "seed": ..., "order": ..., "outcomes": {name: value, ...}}.

    python -m services.shift.verdict RESULT.json      (the output of hypothesis --json; - for stdin)
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
EXACT_PERMUTATIONS_UP_TO = 8  # candidates; above, Monte Carlo permutations
MONTE_CARLO_PERMUTATIONS = 20_000


@dataclass(frozen=True)
class OutcomeSpec:
    """An outcome and the sign the hypothesis predicts for its correlation with volatility."""

    name: str
    direction: int  # +1: rises with volatility (losses, forgetting); -1: falls (exact match)
    primary: bool = True


OUTCOMES: tuple[OutcomeSpec, ...] = (
    OutcomeSpec("learned_loss", +1),
    OutcomeSpec("generalised_loss", +1),
    OutcomeSpec("forgotten_loss", +1),
    OutcomeSpec("learned_exact", -1, primary=False),
    OutcomeSpec("generalised_exact", -1, primary=False),
    OutcomeSpec("forgotten_exact", +1, primary=False),
)


@dataclass
class Correlation:
    outcome: str
    direction: int
    primary: bool
    candidates: int
    seeds: int
    means: dict[str, float]  # candidate -> mean outcome over seeds
    spearman: float | None  # None: undefined (an outcome or predictor constant across candidates)
    pearson: float | None
    spearman_interval: tuple[float, float] | None
    pearson_interval: tuple[float, float] | None
    permutation_p: float | None  # one-sided, in the hypothesised direction
    permutation_p_against: float | None  # one-sided, the other direction
    verdict: str


@dataclass
class OrderMean:
    order: str
    mean: float
    interval: tuple[float, float]
    seeds: int


@dataclass
class CurriculumComparison:
    outcome: str
    orders: list[OrderMean]
    ascending_minus_descending: float | None
    interval: tuple[float, float] | None  # of ascending - descending, paired by seed


@dataclass
class Verdict:
    predictor: str
    correlations: list[Correlation]
    overall: str
    curriculum: list[CurriculumComparison] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- small statistics -----------------------------------------------------------------------------

def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson's r, or None where it is undefined (fewer than two points, a constant side)."""
    if len(x) != len(y):
        raise ValueError(f"pearson: {len(x)} and {len(y)} values")
    n = len(x)
    if n < 2:
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    scale = math.sqrt(sxx * syy)
    if scale == 0 or not math.isfinite(scale) or scale < 1e-300:
        return None
    return max(-1.0, min(1.0, sxy / scale))


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho: Pearson's r of the ranks (ties averaged)."""
    return pearson(ranks(x), ranks(y))


def percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default) of sorted values."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bootstrap_interval(statistic: Any, seeds: int, *, resamples: int, seed: int,
                       level: float) -> tuple[float, float] | None:
    """The percentile interval of `statistic(indices)` over `resamples` resamples of range(seeds)
    with replacement, from random.Random(seed); None where no resample gives a defined value."""
    rng = random.Random(seed)
    values = []
    for _ in range(resamples):
        picked = [rng.randrange(seeds) for _ in range(seeds)]
        value = statistic(picked)
        if value is not None and math.isfinite(value):
            values.append(value)
    if not values:
        return None
    values.sort()
    tail = (1 - level) / 2
    return percentile(values, tail), percentile(values, 1 - tail)


def permutation_p(x: Sequence[float], y: Sequence[float], direction: int, *, seed: int) -> float | None:
    """One-sided p of Spearman's rho: the share of orderings of y whose direction * rho is at
    least the observed one (all n! for n <= EXACT_PERMUTATIONS_UP_TO, else seeded Monte Carlo,
    counting the observed ordering)."""
    observed = spearman(x, y)
    if observed is None:
        return None
    target = direction * observed - 1e-12
    if len(y) <= EXACT_PERMUTATIONS_UP_TO:
        orderings = list(itertools.permutations(y))
        hits = sum(1 for p in orderings if direction * (spearman(x, p) or 0.0) >= target)
        return hits / len(orderings)
    rng = random.Random(seed)
    hits = 1
    shuffled = list(y)
    for _ in range(MONTE_CARLO_PERMUTATIONS):
        rng.shuffle(shuffled)
        hits += direction * (spearman(x, shuffled) or 0.0) >= target
    return hits / (MONTE_CARLO_PERMUTATIONS + 1)


def side(interval: tuple[float, float] | None, direction: int, p_for: float | None = None,
         p_against: float | None = None, alpha: float | None = None) -> str:
    """supported / contradicted / inconclusive, by where the interval lies against 0 and, with
    alpha, whether the permutation p of that side is at most alpha."""
    if interval is None:
        return INCONCLUSIVE
    low, high = interval
    if not (high < 0 or low > 0):
        return INCONCLUSIVE
    hypothesised = (high < 0) == (direction < 0)
    p = p_for if hypothesised else p_against
    if alpha is not None and (p is None or p > alpha):
        return INCONCLUSIVE
    return SUPPORTED if hypothesised else CONTRADICTED


# --- the verdict ----------------------------------------------------------------------------------

def outcome_table(runs: Sequence[Mapping[str, Any]], key: str, outcome: str) -> dict[str, dict[int, float]]:
    """{group (row[key]): {seed: value}} of one outcome; rows whose value is missing are left out."""
    table: dict[str, dict[int, float]] = {}
    for row in runs:
        value = row["outcomes"].get(outcome)
        if value is None or not math.isfinite(float(value)):
            continue
        seeds = table.setdefault(str(row[key]), {})
        if int(row["seed"]) in seeds:
            raise ValueError(f"two rows for {key}={row[key]!r}, seed {row['seed']}")
        seeds[int(row["seed"])] = float(value)
    return table


def _common_seeds(table: Mapping[str, Mapping[int, float]], what: str) -> list[int]:
    seed_sets = {name: set(seeds) for name, seeds in table.items()}
    common = set.intersection(*seed_sets.values()) if seed_sets else set()
    if any(s != common for s in seed_sets.values()):
        raise ValueError(f"{what}: every group needs the same seeds; got "
                         + ", ".join(f"{n}: {sorted(s)}" for n, s in sorted(seed_sets.items())))
    return sorted(common)


def correlate(
    predictor: Mapping[str, float], runs: Sequence[Mapping[str, Any]], spec: OutcomeSpec, *,
    resamples: int = 2000, seed: int = 0, level: float = 0.95, alpha: float | None = 0.05,
) -> Correlation:
    """The correlation across candidates of `predictor` and the outcome's seed mean, its
    bootstrap interval over seeds, permutation p and verdict."""
    table = {name: seeds for name, seeds in outcome_table(runs, "candidate", spec.name).items()
             if name in predictor}
    names = sorted(table)
    seeds = _common_seeds(table, spec.name) if table else []
    x = [float(predictor[name]) for name in names]

    def means(picked: Sequence[int]) -> list[float]:
        return [sum(table[name][seeds[i]] for i in picked) / len(picked) for name in names]

    everything = list(range(len(seeds)))
    observed = means(everything) if seeds else []
    rho = spearman(x, observed) if len(names) >= 3 else None
    r = pearson(x, observed) if len(names) >= 3 else None
    rho_interval = r_interval = None
    if rho is not None:
        rho_interval = bootstrap_interval(lambda p: spearman(x, means(p)), len(seeds),
                                          resamples=resamples, seed=seed, level=level)
    if r is not None:
        r_interval = bootstrap_interval(lambda p: pearson(x, means(p)), len(seeds),
                                        resamples=resamples, seed=seed, level=level)
    p_for = permutation_p(x, observed, spec.direction, seed=seed) if rho is not None else None
    p_against = permutation_p(x, observed, -spec.direction, seed=seed) if rho is not None else None
    return Correlation(
        outcome=spec.name, direction=spec.direction, primary=spec.primary, candidates=len(names),
        seeds=len(seeds), means=dict(zip(names, observed, strict=True)), spearman=rho, pearson=r,
        spearman_interval=rho_interval, pearson_interval=r_interval,
        permutation_p=p_for, permutation_p_against=p_against,
        verdict=side(rho_interval, spec.direction, p_for, p_against, alpha),
    )


def overall(correlations: Sequence[Correlation]) -> str:
    """Over the primary outcomes: most supported and none contradicted, or the reverse."""
    verdicts = [c.verdict for c in correlations if c.primary]
    if not verdicts:
        return INCONCLUSIVE
    supported, contradicted = verdicts.count(SUPPORTED), verdicts.count(CONTRADICTED)
    if supported * 2 > len(verdicts) and not contradicted:
        return SUPPORTED
    if contradicted * 2 > len(verdicts) and not supported:
        return CONTRADICTED
    return INCONCLUSIVE


def compare_orders(
    rows: Sequence[Mapping[str, Any]], outcome: str, *, resamples: int = 2000, seed: int = 0,
    level: float = 0.95,
) -> CurriculumComparison:
    """Per order, the outcome's mean over seeds and its bootstrap interval; ascending -
    descending paired by seed, with its interval."""
    table = outcome_table(rows, "order", outcome)
    orders = []
    for order in sorted(table):
        by_seed = table[order]
        values = [by_seed[s] for s in sorted(by_seed)]
        interval = bootstrap_interval(lambda p, v=values: sum(v[i] for i in p) / len(p), len(values),
                                      resamples=resamples, seed=seed, level=level)
        assert interval is not None
        orders.append(OrderMean(order, sum(values) / len(values), interval, len(values)))
    difference = diff_interval = None
    if "ascending" in table and "descending" in table:
        paired = sorted(set(table["ascending"]) & set(table["descending"]))
        if paired:
            diffs = [table["ascending"][s] - table["descending"][s] for s in paired]
            difference = sum(diffs) / len(diffs)
            diff_interval = bootstrap_interval(lambda p: sum(diffs[i] for i in p) / len(p), len(diffs),
                                               resamples=resamples, seed=seed, level=level)
    return CurriculumComparison(outcome, orders, difference, diff_interval)


def judge(
    predictor: Mapping[str, float],
    runs: Sequence[Mapping[str, Any]],
    curriculum: Sequence[Mapping[str, Any]] = (),
    outcomes: Sequence[OutcomeSpec] = OUTCOMES,
    *,
    predictor_name: str = "volatility",
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    alpha: float | None = 0.05,
) -> Verdict:
    """Every outcome's correlation and verdict, the overall verdict, the curriculum comparison."""
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    if not 0 < level < 1:
        raise ValueError("level must lie between 0 and 1")
    present = {name for row in runs for name in row["outcomes"]}
    specs = [spec for spec in outcomes if spec.name in present]
    correlations = [correlate(predictor, runs, spec, resamples=resamples, seed=seed, level=level,
                              alpha=alpha) for spec in specs]
    comparisons = [compare_orders(curriculum, spec.name, resamples=resamples, seed=seed, level=level)
                   for spec in specs if any(spec.name in row["outcomes"] for row in curriculum)]
    return Verdict(
        predictor=predictor_name, correlations=correlations, overall=overall(correlations),
        curriculum=[c for c in comparisons if c.orders],
        settings={"resamples": resamples, "bootstrap_seed": seed, "level": level,
                  "interval": "percentile, seeds resampled with replacement",
                  "verdict_on": "spearman_interval" + ("" if alpha is None else " and permutation_p"),
                  "alpha": alpha},
    )


def judge_result(result: Mapping[str, Any], predictor: str = "volatility", **options: Any) -> Verdict:
    """The verdict on a hypothesis job's JSON: its `runs` and `curriculum`, against one figure of
    its candidates' pre-training shift (`volatility` by default; any DatasetShift field)."""
    values = {c["name"]: c["shift"][predictor] for c in result.get("candidates", ())}
    if not values and predictor == "volatility":
        values = dict(result["volatility"])
    if not values:
        raise ValueError(f"the result has no candidates with a shift figure {predictor!r}")
    return judge(values, result["runs"], result.get("curriculum", ()), predictor_name=predictor, **options)


# --- the command ----------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.shift.verdict",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("result", help="the JSON of python -m workers.jobs.hypothesis --json ('-': stdin)")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's seed")
    parser.add_argument("--predictor", default="volatility", help="the shift figure to correlate "
                        "(volatility, coherence, total_shift, net_shift, noise_scale, ...)")
    parser.add_argument("--alpha", type=float, default=0.05, help="the permutation p a side needs; "
                        "a negative value: judge by the bootstrap interval alone")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        text = sys.stdin.read() if args.result == "-" else Path(args.result).read_text(encoding="utf-8")
        verdict = judge_result(json.loads(text), predictor=args.predictor, resamples=args.resamples,
                               seed=args.seed, alpha=None if args.alpha < 0 else args.alpha)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(verdict.to_json(), sort_keys=True))
    else:
        print(render(verdict))
    return 0


def render(verdict: Verdict) -> str:
    def num(value: float | None, fmt: str = "+.2f") -> str:
        return "n/a" if value is None else format(value, fmt)

    def span(interval: tuple[float, float] | None) -> str:
        return "n/a" if interval is None else f"[{interval[0]:+.2f}, {interval[1]:+.2f}]"

    lines = [f"overall: {verdict.overall} (predictor: {verdict.predictor})"]
    for c in verdict.correlations:
        lines.append(f"{c.outcome:>18}: spearman {num(c.spearman)} {span(c.spearman_interval)}, "
                     f"pearson {num(c.pearson)} {span(c.pearson_interval)}, "
                     f"perm p {num(c.permutation_p, '.3f')}/{num(c.permutation_p_against, '.3f')}"
                     f" -> {c.verdict}"
                     + ("" if c.primary else " (secondary)"))
    for comparison in verdict.curriculum:
        orders = ", ".join(f"{o.order} {o.mean:.3f}" for o in comparison.orders)
        lines.append(f"curriculum {comparison.outcome}: {orders}; asc - desc "
                     f"{num(comparison.ascending_minus_descending, '+.3f')} {span(comparison.interval)}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
