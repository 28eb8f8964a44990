"""Diminishing returns along a numeric knob: where does the gain per doubling fall under a threshold?

A curve of mean score against the knob's value (or its cost) is fitted: a saturating power law
a + b * x^-c for size-like knobs (parameters, tokens, width, depth), as scaling laws have it,
and piecewise-linear interpolation for the rest. The knee is the smallest explored value past
which doubling the knob gains less than the threshold, with a bootstrap interval.
"""

from __future__ import annotations

import functools
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from events.models import Direction, Knee
from services.core.errors import BadInput
from services.ranking.analysis.noise import short_number

Per = Literal["doubling", "cost_doubling"]

_SIZE_STEMS = frozenset({
    # model size
    "param", "parameter", "model_size", "model_param", "non_embedding_param",
    "d_model", "embd", "n_embd", "hidden_size", "hidden_dim", "width", "d_ff", "ffn_dim",
    "layer", "depth",
    # data and training length
    "token", "train_token", "training_token", "data_size", "dataset_size", "train_size",
    "example", "train_example", "step", "train_step", "training_step", "iter", "iteration",
    "compute", "flop",
})
_PREFIX = re.compile(r"^(n|num|max|total)_")
_C_GRID = np.geomspace(0.01, 5.0, 60)  # power-law exponents tried for a starting point


def is_size_like(name: str) -> bool:
    """Whether a knob measures size or amount, so that score follows a saturating power law in it.

    Model size (params, d_model, width, n_layer, depth) and data or training length (tokens,
    data_size, steps, compute) are: scaling laws (Kaplan et al. 2020; Hoffmann et al. 2022) fit
    loss = a + b * x^-c in each of them. Not size-like, although they count something:
    repetitions and epochs (repeating data helps less and then hurts: Muennighoff et al. 2023,
    not a saturating power law), batch size (a critical batch size, not saturation), sequence
    length, vocabulary size and head counts. The name is read case-insensitively from its last
    dotted or slashed segment, without an n_/num_/max_/total_ prefix or a plural s, so
    "model.n_params", "num_layers" and "train_tokens" all count.
    """
    stem = re.split(r"[./:]", name.strip().lower())[-1].replace("-", "_")
    stem = _PREFIX.sub("", stem)
    if stem.endswith("s") and not stem.endswith("ss"):
        stem = stem[:-1]
    return stem in _SIZE_STEMS or stem.endswith(("_param", "_token"))


@dataclass(frozen=True)
class CurvePoint:
    """One value of the knob (or its cost) and the scores its runs got (one per seed)."""

    x: float
    scores: tuple[float, ...]


def not_numeric(detail: str) -> Knee:
    """The knee of a categorical knob: there is none to look for."""
    return Knee(status="not_numeric", detail=detail)


@dataclass(frozen=True)
class _Data:
    xs: np.ndarray  # (k,) distinct knob values, ascending
    scores: tuple[np.ndarray, ...]  # k arrays of the scores at each value, sorted

    @property
    def means(self) -> np.ndarray:
        return np.array([s.mean() for s in self.scores])


@dataclass(frozen=True)
class _Fit:
    status: Literal["found", "not_reached", "no_gain"]
    model: str
    value: float | None
    threshold: float | None
    largest: float  # the largest gain per doubling over the searched range
    note: str = ""


def knee(
    points: Sequence[CurvePoint],
    *,
    direction: Direction,
    size_like: bool,
    threshold: float | None = None,
    fraction: float = 0.1,
    per: Per = "doubling",
    seed: int = 0,
    n_boot: int = 200,
    name: str = "",
) -> Knee:
    """Where the gain per doubling of x falls under `threshold` and stays under it.

    Axis: logarithmic when size-like or when max(x) / min(x) >= 10, linear otherwise. Curve:
    for size-like knobs a + b * x^-c (c > 0) fitted to the mean scores with curve_fit, or a +
    b * log2(x) when that fit fails or there are fewer than 4 distinct values; for other knobs
    piecewise-linear interpolation of the means on the axis. The gain per doubling at x is
    the improvement from x to 2x (f(x) - f(2x) when lower is better). An interpolated curve
    says nothing past its last value, so there gains are sought for x up to max(x) / 2 only.
    The threshold is `threshold` when given, else `fraction` times the largest gain per doubling
    over the searched range: "a doubling now buys under a tenth of what the best doubling
    bought". Values x <= 0 are left out (a doubling of 0 is 0).

    "no_gain" when the curve never improves on the smallest value, or when no value's mean
    beats the smallest value's by more than seed noise (a Bonferroni-corrected 95% t
    half-width, from the sd pooled within values, where values were repeated). The interval is
    the 2.5 and 97.5 percentiles of the knee over `n_boot` resamples of the scores within each value (numpy's
    default_rng(seed)), refitted the same way; None when under half of them find a knee.
    `x` is the knob's value, or its cost when `per` is "cost_doubling"; `name` labels the
    detail line.
    """
    if not 0 < fraction < 1:
        raise BadInput(f"fraction must be between 0 and 1, got {fraction}")
    if threshold is not None and not (math.isfinite(threshold) and threshold > 0):
        raise BadInput(f"the knee threshold must be a positive number, got {threshold}")
    if n_boot < 0:
        raise BadInput(f"n_boot must be 0 or more, got {n_boot}")
    data, left_out = _gather(points)
    what = "cost" if per == "cost_doubling" else name or "x"
    of = f" of {what}" if what != "x" else ""
    unit = "cost doubling" if per == "cost_doubling" else "doubling"
    explored = (float(data.xs[0]), float(data.xs[-1])) if len(data.xs) else None
    note = f" ({left_out})" if left_out else ""
    if len(data.xs) < 3:
        return Knee(status="too_few_values", per=per, explored=explored,
                    detail=f"{len(data.xs)} distinct positive value{'s' if len(data.xs) != 1 else ''} "
                           f"of {what}; a knee needs 3 or more{note}")
    assert explored is not None
    ratio = explored[1] / explored[0]
    axis: Literal["log", "linear"] = "log" if size_like or ratio >= 10 else "linear"
    span = f"{short_number(explored[0])}..{short_number(explored[1])}"

    main = _estimate(data, direction, size_like, axis, threshold, fraction)
    common = {"per": per, "axis": axis, "model": main.model, "explored": explored}
    if main.status == "no_gain":
        return Knee(status="no_gain", **common,
                    detail=f"{main.note or 'the score never improves'} as {what} grows over {span}{note}")
    pct = f"{fraction * 100:g}%"
    if main.threshold is None:
        rule = f"{pct} of the largest"
    elif threshold is not None:
        rule = f"{short_number(main.threshold)} (given)"
    else:
        rule = f"{short_number(main.threshold)} ({pct} of the largest, {short_number(main.largest)})"
    if main.status == "not_reached":
        stays = "is not measured" if main.note else f"stays above {rule}"
        return Knee(status="not_reached", threshold=main.threshold, **common,
                    detail=f"gain per {unit} {stays} over the explored range {span}{of}"
                           f"{main.note}; knee not reached{note}")

    assert main.value is not None
    v = short_number(main.value)
    subject = f"a cost of {v}" if per == "cost_doubling" else f"{v} {name}".strip()
    at = f"from the smallest value, {subject}" if main.value == explored[0] else f"at {subject}"
    ci, ci_text = _bootstrap(data, direction, size_like, axis, threshold, fraction, seed, n_boot)
    return Knee(status="found", value=main.value, ci=ci, threshold=main.threshold, **common,
                detail=f"gain per {unit} falls under {rule} {at}; {ci_text}{note}")


def _gather(points: Sequence[CurvePoint]) -> tuple[_Data, str]:
    """Merge points by x, keep x > 0 and finite scores; say what was left out."""
    by_x: dict[float, list[float]] = {}
    dropped_x = 0
    dropped_scores = 0
    for p in points:
        x = float(p.x)
        if not math.isfinite(x):
            raise BadInput(f"a curve point has a non-finite value {p.x!r}")
        finite = [float(s) for s in p.scores if math.isfinite(s)]
        dropped_scores += len(p.scores) - len(finite)
        if x <= 0:
            dropped_x += 1
            continue
        if finite:
            by_x.setdefault(x, []).extend(finite)
    xs = sorted(by_x)
    data = _Data(np.array(xs, dtype=float), tuple(np.sort(np.array(by_x[x])) for x in xs))
    notes = []
    if dropped_x:
        plural = "s" if dropped_x != 1 else ""
        notes.append(f"{dropped_x} point{plural} at x <= 0 left out: a doubling of 0 is 0")
    if dropped_scores:
        notes.append(f"{dropped_scores} non-finite score{'s' if dropped_scores != 1 else ''} left out")
    return data, "; ".join(notes)


def _estimate(
    data: _Data, direction: Direction, size_like: bool, axis: Literal["log", "linear"],
    threshold: float | None, fraction: float,
) -> _Fit:
    """Fit the curve and find the knee: the whole estimator, as the bootstrap repeats it."""
    sign = -1.0 if direction == "lower" else 1.0  # improvement = sign * (f(2x) - f(x))
    means = data.means
    curve, model = _fit(data.xs, means, size_like, axis)
    noise_note = _no_gain_beyond_noise(data, sign)
    lo, hi = float(data.xs[0]), float(data.xs[-1])
    top = hi if model != "interpolation" else hi / 2  # interpolation cannot look past max(x)
    if top < lo:
        return _Fit("not_reached", model, None, threshold, 0.0,
                    " (it spans less than one doubling, so no gain per doubling is measured)")
    grid = np.geomspace(lo, top, 512) if axis == "log" else np.linspace(lo, top, 512)

    def gain(x: np.ndarray) -> np.ndarray:
        return np.asarray(sign * (curve(2 * x) - curve(x)), dtype=float)

    gains = gain(grid)
    largest = float(gains.max())
    on_curve = sign * (curve(grid) - curve(np.array([lo])))
    improves = bool((on_curve > 0).any() or (sign * (means - means[0]) > 0).any())
    if largest <= 0 or not improves:
        return _Fit("no_gain", model, None, None, largest)
    if noise_note:
        return _Fit("no_gain", model, None, None, largest, noise_note)
    thr = threshold if threshold is not None else fraction * largest
    above = np.nonzero(gains >= thr)[0]
    if len(above) == 0:
        return _Fit("found", model, lo, thr, largest)
    last = int(above[-1])
    if last == len(grid) - 1:
        return _Fit("not_reached", model, None, thr, largest)
    a, b = float(grid[last]), float(grid[last + 1])
    try:
        from scipy import optimize  # here: scipy at module level slows every CLI command

        value = optimize.brentq(lambda x: float(gain(np.array([x]))[0]) - thr, a, b, xtol=1e-12 * b)
    except ValueError:  # no sign change on the grid step (a flat stretch exactly at thr)
        value = b
    return _Fit("found", model, float(value), thr, largest)


def _fit(
    xs: np.ndarray, means: np.ndarray, size_like: bool, axis: Literal["log", "linear"]
) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """The fitted curve f(x) (vectorised) and its model name."""
    if size_like:
        if len(xs) >= 4:
            power = _power_law(xs, means)
            if power is not None:
                return power, "power_law"
        slope, intercept = np.polyfit(np.log2(xs), means, 1)
        return (lambda x: intercept + slope * np.log2(x)), "log_linear"
    coords = np.log(xs) if axis == "log" else xs

    def interp(x: np.ndarray) -> np.ndarray:
        return np.asarray(np.interp(np.log(x) if axis == "log" else x, coords, means), dtype=float)

    return interp, "interpolation"


def _power_law(xs: np.ndarray, means: np.ndarray) -> Callable[[np.ndarray], np.ndarray] | None:
    """a + b * x^-c with c > 0, or None when the fit fails.

    x is scaled by its smallest value, so u = x / min(x) >= 1 and the fit is well conditioned
    over many orders of magnitude. Start: for each c on a grid, a and b by linear least squares,
    keeping the best; then curve_fit polishes all three from there (analytic Jacobian).
    """
    x0 = float(xs[0])
    u = xs / x0

    # c = exp(g) keeps c > 0 without bounds, so curve_fit can use MINPACK's fast Levenberg-Marquardt
    def model(u: np.ndarray, a: float, b: float, g: float) -> np.ndarray:
        return a + b * u ** (-math.exp(g))

    def jac(u: np.ndarray, a: float, b: float, g: float) -> np.ndarray:
        c = math.exp(g)
        z = u ** (-c)
        return np.column_stack([np.ones_like(u), z, -b * c * z * np.log(u)])

    # Simple regression of the means on z = u^-c for every c of the grid at once
    z = u[None, :] ** (-_C_GRID[:, None])  # (n_c, k)
    zc = z - z.mean(axis=1, keepdims=True)
    yc = means - means.mean()
    szz = (zc**2).sum(axis=1)
    slope = np.divide(zc @ yc, szz, out=np.zeros_like(szz), where=szz > 0)
    sse = ((yc[None, :] - slope[:, None] * zc) ** 2).sum(axis=1)
    i = int(np.argmin(sse))
    start = (float(means.mean() - slope[i] * z[i].mean()), float(slope[i]), math.log(_C_GRID[i]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from scipy import optimize

            popt, _ = optimize.curve_fit(model, u, means, p0=start, jac=jac, method="lm", maxfev=5000)
    except (RuntimeError, ValueError, ArithmeticError):
        # ArithmeticError: exp(g) overflows when Levenberg-Marquardt wanders to a huge exponent.
        return None
    a, b, g = (float(v) for v in popt)
    c = math.exp(g) if g < 700 else math.inf
    if not all(math.isfinite(v) for v in (a, b, c)):
        return None
    return lambda x: np.asarray(a + b * (np.asarray(x, dtype=float) / x0) ** (-c), dtype=float)


def _no_gain_beyond_noise(data: _Data, sign: float) -> str:
    """A note when no value's mean beats the smallest value's by more than seed noise, else "".

    Only where some value was repeated (the pooled within-value sd needs it). Each of the k - 1
    other values is compared with the first; the half-width t * sd * sqrt(1/n_x + 1/n_min) uses
    a Bonferroni t quantile (0.05 / (k - 1) two-sided), so a flat curve of pure noise is called
    a gain at most 5% of the time rather than nearly a third of the time with eight values.
    """
    df = sum(len(s) - 1 for s in data.scores)
    if df < 1:
        return ""
    sd = math.sqrt(sum(float(((s - s.mean()) ** 2).sum()) for s in data.scores) / df)
    t = _t_quantile(1 - 0.025 / (len(data.scores) - 1), df)
    first = data.scores[0]
    best = 0.0
    for s in data.scores[1:]:
        improvement = sign * (float(s.mean()) - float(first.mean()))
        half = t * sd * math.sqrt(1 / len(s) + 1 / len(first))
        if improvement > half:
            return ""
        best = max(best, improvement)
    return (f"no value beats the smallest by more than seed noise (best improvement {short_number(best)}, "
            f"pooled sd {short_number(sd)}, df {df})")


@functools.lru_cache(maxsize=256)
def _t_quantile(q: float, df: int) -> float:
    """Student t quantiles, cached: the bootstrap asks for the same one hundreds of times."""
    from scipy import stats

    return float(stats.t.ppf(q, df))


def _bootstrap(
    data: _Data, direction: Direction, size_like: bool, axis: Literal["log", "linear"],
    threshold: float | None, fraction: float, seed: int, n_boot: int,
) -> tuple[tuple[float, float] | None, str]:
    """The knee's 95% percentile interval from resampling scores within each value."""
    if not any(len(np.unique(s)) > 1 for s in data.scores):
        return None, "no interval: no value has differing repeated scores to resample"
    if n_boot == 0:
        return None, "no interval: no bootstrap asked for"
    rng = np.random.default_rng(seed)
    # Deviations from each value's mean are widened by sqrt(n / (n - 1)) before resampling: a
    # plain resample of n scores has (n - 1) / n of their variance, a third too little with three
    # seeds (Davison & Hinkley 1997, sec. 3.3, do the same for residuals).
    centres = [float(s.mean()) for s in data.scores]
    widened = [c + math.sqrt(len(s) / (len(s) - 1)) * (s - c) if len(s) > 1 else s
               for s, c in zip(data.scores, centres, strict=True)]
    knees: list[float] = []
    for _ in range(n_boot):
        resampled = tuple(w[rng.integers(0, len(w), len(w))] for w in widened)
        fit = _estimate(_Data(data.xs, resampled), direction, size_like, axis, threshold, fraction)
        if fit.status == "found" and fit.value is not None:
            knees.append(fit.value)
    if 2 * len(knees) < n_boot:
        return None, f"no interval: only {len(knees)} of {n_boot} resamples find a knee"
    lo, hi = (float(v) for v in np.percentile(knees, [2.5, 97.5]))
    return (lo, hi), f"95% CI {short_number(lo)}..{short_number(hi)} ({len(knees)} of {n_boot} resamples)"
