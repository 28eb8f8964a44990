"""Is an effect bigger than run-to-run noise? Verdicts for one-at-a-time, Morris and Sobol rankings.

The noise scale comes, in order of preference, from the spread between seeds of identical
configurations (pooled over every repeated configuration), from the standard errors a
benchmark or paper reported for each run, or from nowhere, in which case the verdict says
"unknown" and why. Each verdict carries its basis in words, with the numbers used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from events.models import NoiseVerdict
from services.core.errors import BadInput
from services.ranking.analysis.ofat import ParameterResult, ValueStats


@dataclass(frozen=True)
class NoiseScale:
    """Seed-to-seed spread of a score: a pooled standard deviation with its degrees of freedom."""

    sd: float
    df: int
    groups: int
    basis: str


def pooled_seed_noise(groups: Sequence[Sequence[float]]) -> NoiseScale | None:
    """Pooled standard deviation over groups of scores that differ only in their seed.

    Each group is one configuration run with several seeds; groups with fewer than two scores
    say nothing about spread and are skipped. The pooled variance is sum((n_i - 1) * s_i^2)
    over sum(n_i - 1), which assumes the spread is the same in every configuration: the usual
    one-way ANOVA error term. None when no group has two scores.
    """
    used = [[float(s) for s in g] for g in groups if len(g) >= 2]
    if not used:
        return None
    ss = 0.0
    df = 0
    for g in used:
        mean = math.fsum(g) / len(g)
        ss += math.fsum((s - mean) ** 2 for s in g)
        df += len(g) - 1
    sd = math.sqrt(ss / df)
    return NoiseScale(
        sd=sd, df=df, groups=len(used),
        basis=f"seed spread: pooled sd {short_number(sd)} from {len(used)} repeated "
              f"configuration{'s' if len(used) != 1 else ''} (df {df})",
    )


def ofat_verdict(
    param: ParameterResult,
    noise: NoiseScale | None,
    stderr: Mapping[str, float] | None = None,
    level: float = 0.95,
) -> NoiseVerdict:
    """Is the parameter's largest effect vs the baseline bigger than noise?

    The value with the largest |effect| is compared with the half-width of a `level` interval
    for a difference of two means:
    - seed noise: t_{level, df} * sd * sqrt(1/n_value + 1/n_base), with the pooled sd and df;
    - otherwise reported standard errors (run_id -> stderr of that run's score, as lm-eval and
      papers give them): a group mean's se is sqrt(mean(se^2) / n) over its runs that report
      one, and the half-width is z_level * sqrt(se_value^2 + se_base^2);
    - otherwise "unknown".
    "indistinguishable" when |effect| <= the half-width.
    """
    if not 0 < level < 1:
        raise BadInput(f"level must be between 0 and 1, got {level}")
    base = next((v for v in param.values if v.is_baseline), None)
    if base is None:
        raise BadInput(f"parameter {param.name!r} has no baseline value to compare effects with")
    others = [v for v in param.values if not v.is_baseline]
    if not others:
        return NoiseVerdict(label="unknown", effect=0.0, basis="only the baseline value was run")
    top = max(others, key=lambda v: abs(v.effect))  # first of equals: values come in a stable order
    effect = abs(top.effect)
    where = (f"largest effect {short_number(top.effect)} at {param.name}={top.value} "
             f"(n {top.n} vs baseline n {base.n})")
    # The largest of k differences against one shared baseline: without a correction a knob
    # with no effect would pass far more often than 1 - level (a baseline mean that is off by
    # chance moves all k effects together). Bonferroni: each difference at 1 - (1 - level) / k.
    k = len(others)
    level = 1 - (1 - level) / k
    pct = f"{level * 100:.4g}%" + (f" (Bonferroni over {k} values)" if k > 1 else "")

    if noise is not None and noise.df >= 1:
        t = _t_quantile(0.5 + level / 2, noise.df)
        half = t * noise.sd * math.sqrt(1 / top.n + 1 / base.n)
        return _verdict(effect, half,
                        f"{noise.basis}; {pct} half-width of a difference {short_number(half)}; {where}")

    se_top = _group_se(top, stderr)
    se_base = _group_se(base, stderr)
    if se_top is not None and se_base is not None:
        z = _z_quantile(0.5 + level / 2)
        half = z * math.hypot(se_top, se_base)
        return _verdict(effect, half, (
            f"reported standard errors: se of the means {short_number(se_top)} "
            f"and {short_number(se_base)} (baseline); "
            f"{pct} half-width of a difference {short_number(half)} (normal); {where}"))

    runs = ("one run per value" if all(v.n == 1 for v in param.values)
            else "no seed spread supplied")
    why = (f"{runs} and no reported standard errors" if not stderr
           else f"{runs} and no reported standard error for "
                + ("the baseline's runs" if se_base is None else f"the runs of {param.name}={top.value}"))
    return NoiseVerdict(label="unknown", effect=effect, noise=None, basis=f"{why}; {where}")


def morris_verdict(
    indices: Mapping[str, float | None], noise: NoiseScale | None, delta: float, *, seeds_per_row: float = 1.0
) -> NoiseVerdict:
    """Is a parameter's mu_star more than noise would give?

    Two tests, either of which makes it "indistinguishable":
    1. mu_star - mu_star_conf <= 0: the bootstrap interval of mu_star reaches 0.
    2. With seed noise of sd s: an elementary effect is (f(x + delta e_i) - f(x)) / delta, where
       delta is the Morris step in the unit hypercube (SALib: num_levels / (2 (num_levels - 1))).
       If f ignores parameter i, both evaluations differ only by independent noise, so the
       effect is N(0, sqrt(2) s / delta), and its absolute value has mean
       E|N(0, sigma)| = sigma sqrt(2 / pi), i.e. mu_star of pure noise = 2 s / (delta sqrt(pi)).
       mu_star <= that + mu_star_conf cannot be told apart from a parameter that does nothing.
       When each analysed output is a mean over `seeds_per_row` seeds, s is divided by its root.
    `noise` of the verdict is the bound mu_star was compared with.
    """
    if seeds_per_row < 1:
        raise BadInput(f"seeds_per_row must be 1 or more, got {seeds_per_row}")
    mu_star = _finite(indices.get("mu_star"))
    conf = _finite(indices.get("mu_star_conf"))
    if mu_star is None:
        return NoiseVerdict(label="unknown", effect=0.0, basis="no mu_star was computed")
    if noise is not None and delta <= 0:
        raise BadInput(f"the Morris step delta must be positive, got {delta}")
    if noise is not None:
        ee_sd = math.sqrt(2) * noise.sd / math.sqrt(seeds_per_row) / delta
        pure = ee_sd * math.sqrt(2 / math.pi)
        bound = pure + (conf or 0.0)
        conf_text = f" + mu_star_conf {short_number(conf)}" if conf is not None else " (no mu_star_conf)"
        basis = (f"{noise.basis}; an elementary effect of pure noise has sd sqrt(2)*sd/delta = "
                 f"{short_number(ee_sd)} (delta {short_number(delta)}), so mu_star of noise is "
                 f"{short_number(pure)}; mu_star {short_number(mu_star)} vs {short_number(pure)}{conf_text} "
                 f"= {short_number(bound)}")
        return _verdict(mu_star, bound, basis)
    if conf is None:
        return NoiseVerdict(label="unknown", effect=mu_star,
                            basis="no mu_star_conf and no seed spread to compare mu_star with")
    return _verdict(mu_star, conf, (
        f"bootstrap: mu_star {short_number(mu_star)} vs its 95% half-width "
        f"mu_star_conf {short_number(conf)}; "
        "no seed spread known, so repeated runs are assumed to agree"))


def sobol_verdict(indices: Mapping[str, float | None], noise_variance_fraction: float | None) -> NoiseVerdict:
    """Is a parameter's total-order index ST more than noise would give?

    A parameter that does nothing gets ST of about the share of output variance that seed
    noise explains, sd^2 / Var(Y) (gsa.GsaResult.noise_variance_fraction): SALib's total-order
    estimator (Jansen's) averages (f(A) - f(AB_i))^2 / (2 Var(Y)), and independent noise on both
    evaluations adds 2 sd^2 to that square whether or not f depends on x_i. The estimate scatters
    around that by up to ST_conf. So "indistinguishable" when ST - ST_conf <= that share: the
    interval reaches 0, or the noise floor when it is known. (Comparing ST alone with the share
    would call half of the parameters that do nothing distinguishable.) `noise` is ST_conf plus
    the share, the bound ST was compared with.
    """
    st = _finite(indices.get("ST"))
    conf = _finite(indices.get("ST_conf"))
    frac = _finite(noise_variance_fraction)
    if st is None:
        return NoiseVerdict(label="unknown", effect=0.0, basis="no ST was computed")
    if conf is None and frac is None:
        return NoiseVerdict(label="unknown", effect=st,
                            basis="no ST_conf and no seed spread to compare ST with")
    bound = (conf or 0.0) + (frac or 0.0)
    conf_text = f"its 95% half-width ST_conf {short_number(conf)}" if conf is not None else "no ST_conf"
    floor = (f"seed noise explains {short_number(frac)} of the output variance, which a parameter that "
             "does nothing gets as ST" if frac is not None else "no seed spread known, so the floor is 0")
    return _verdict(st, bound, f"ST {short_number(st)} vs {conf_text} + the noise floor: {floor}; "
                               f"bound {short_number(bound)}")


def _verdict(effect: float, noise: float, basis: str) -> NoiseVerdict:
    label = "indistinguishable" if effect <= noise else "distinguishable"
    return NoiseVerdict(label=label, effect=effect, noise=noise, basis=basis)


def _group_se(v: ValueStats, stderr: Mapping[str, float] | None) -> float | None:
    """Standard error of a value's mean from its runs' reported ones: sqrt(mean(se^2) / n)."""
    if not stderr:
        return None
    ses = [float(stderr[r]) for r in v.runs if r in stderr and math.isfinite(float(stderr[r]))]
    if not ses:
        return None
    return math.sqrt(math.fsum(s * s for s in ses) / len(ses) / v.n)


def _finite(x: float | None) -> float | None:
    """SALib reports NaN where it could not compute; treat it as missing."""
    return float(x) if x is not None and math.isfinite(x) else None


def short_number(x: float | None) -> str:
    """Three significant figures, compact exponent: 0.0312, 3.2e5, 1e-4."""
    if x is None:
        return "none"
    text = f"{x:.3g}"
    if "e" in text:
        mant, exp = text.split("e")
        text = f"{mant}e{int(exp)}"
    return text


# scipy.stats is imported where it is used: at module level it costs every CLI command ~1.5 s.
def _t_quantile(q: float, df: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(q, df))


def _z_quantile(q: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(q))
