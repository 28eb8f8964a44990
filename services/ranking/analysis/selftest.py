"""Self-test of the global sensitivity analysis on test functions whose indices are known exactly.

Each function is run as an experiment would be: an `external` ExperimentSpec with `range`
factors is validated and designed (build_design, so SALib's seeded sampler and the mapping from
the unit sample to factor values are the real ones), the function is evaluated on every planned
run's parameters to make Observations, and `analyse_design` computes the indices. The results are
compared with the analytic values, within the tolerances SALib's own test-suite uses:

- Ishigami (a=7, b=0.1), Sobol with second order: S1, ST, S2 within atol=5e-2, rtol=1e-1, as in
  SALib `tests/test_sobol.py` (test_parallel_first_order / test_parallel_second_order) and
  `tests/test_regression.py` (test_regression_sobol).
- Sobol' G function (a = 0, 1, 4.5, 9, 99, 99), Sobol first order only, N = 4096: S1 within
  atol=1e-2, rtol=1e-6, as in SALib `tests/test_sobol.py::test_Sobol_G_using_sobol` (same N);
  ST is held to the same tolerance (SALib does not test ST on G; our own, equally strict, choice).
- Morris on the same G function: mu_star must order the influential factors (analytic ST >= 0.01)
  as their analytic ST does, and every non-influential factor must get mu_star at most 5% of the
  largest (our screening threshold; SALib's Morris tests are regressions, not analytic checks).
  Morris is not checked on Ishigami: with 4 levels on [-pi, pi] its x1 and x2 elementary effects
  nearly tie (SALib's own regression gets mu_star 7.77 vs 7.875), so no ranking is implied there.

"Passed" follows numpy's assert_allclose: |got - expected| <= atol + rtol * |expected|.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from events.models import JSONScalar
from services.experiments.design import Design, build_design, count_runs
from services.experiments.spec import validate_spec
from services.ranking.analysis.gsa import GsaResult, analyse_design
from services.ranking.analysis.ofat import Observation

ISHIGAMI_A = 7.0
ISHIGAMI_B = 0.1
ISHIGAMI_N = 2048
G_A = (0.0, 1.0, 4.5, 9.0, 99.0, 99.0)
G_N = 4096  # SALib's test_Sobol_G_using_sobol uses N = 4096
MORRIS_N = 100
MORRIS_LEVELS = 4
RESAMPLES = 100  # SALib's default; the checks compare indices, not their bootstrap intervals
INFLUENTIAL_ST = 0.01
SCREENED_OUT = 0.05
SALIB_SOBOL_TOL = (5e-2, 1e-1)  # (atol, rtol): SALib tests/test_sobol.py, Ishigami S1/ST/S2
SALIB_SOBOL_G_TOL = (1e-2, 1e-6)  # SALib tests/test_sobol.py::test_Sobol_G_using_sobol, S1
SALIB_ISHIGAMI_SOURCE = "SALib tests/test_sobol.py test_parallel_second_order: atol=5e-2, rtol=1e-1"
SALIB_G_SOURCE = "SALib tests/test_sobol.py test_Sobol_G_using_sobol: atol=1e-2, rtol=1e-6"


@dataclass(frozen=True)
class SelfTestCheck:
    """One comparison of a computed index (or ranking) with its known value."""

    name: str
    expected: float | str
    got: float | str | None
    tolerance: str
    passed: bool
    source: str = ""


# --- test functions and their analytic indices --------------------------------------------------


def ishigami(x1: float, x2: float, x3: float, a: float = ISHIGAMI_A, b: float = ISHIGAMI_B) -> float:
    """Ishigami & Homma (1990): sin(x1) + a sin^2(x2) + b x3^4 sin(x1), inputs uniform on [-pi, pi]."""
    return math.sin(x1) + a * math.sin(x2) ** 2 + b * x3**4 * math.sin(x1)


def ishigami_indices(a: float = ISHIGAMI_A,
                     b: float = ISHIGAMI_B) -> tuple[list[float], list[float], dict[tuple[int, int], float]]:
    """Analytic S1, ST and S2 of Ishigami (Sobol' & Levitan 1999; Saltelli et al. 2000)."""
    pi4, pi8 = math.pi**4, math.pi**8
    v1 = 0.5 * (1 + b * pi4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * pi8 * (1 / 18 - 1 / 50)  # = 8 b^2 pi^8 / 225
    v = v1 + v2 + v13
    s1 = [v1 / v, v2 / v, 0.0]
    st = [(v1 + v13) / v, v2 / v, v13 / v]
    return s1, st, {(0, 1): 0.0, (0, 2): v13 / v, (1, 2): 0.0}


def sobol_g(xs: Sequence[float], a: Sequence[float] = G_A) -> float:
    """Sobol' G function: prod (|4 x_i - 2| + a_i) / (1 + a_i), inputs uniform on [0, 1]."""
    return math.prod((abs(4 * x - 2) + ai) / (1 + ai) for x, ai in zip(xs, a, strict=True))


def sobol_g_indices(a: Sequence[float] = G_A) -> tuple[list[float], list[float]]:
    """Analytic S1 and ST: V_i = 1 / (3 (1 + a_i)^2), V = prod(1 + V_i) - 1."""
    vi = [1 / (3 * (1 + ai) ** 2) for ai in a]
    v = math.prod(1 + x for x in vi) - 1
    s1 = [x / v for x in vi]
    st = [x * math.prod(1 + y for j, y in enumerate(vi) if j != i) / v for i, x in enumerate(vi)]
    return s1, st


# --- running a function as an experiment --------------------------------------------------------


def function_design(name: str, method: str, n: int, bounds: Sequence[tuple[float, float]], seed: int,
                    **design: Any) -> Design:
    """The design of an external experiment varying x1..xD over `bounds`, built as `knobs` builds one.

    Its budget is the design's own size (count_runs), so a self-test is never over budget.
    """
    source = f"selftest {name}"
    raw: dict[str, Any] = {
        "name": f"selftest-{name}",
        "executor": "external",
        "design": {"method": method, "n": n, "seed": seed, **design},
        "factors": {f"x{i + 1}": {"range": [lo, hi]} for i, (lo, hi) in enumerate(bounds)},
        "benchmarks": [name],
        "seeds": [0],
    }
    raw["budget"] = {"max_runs": count_runs(validate_spec(raw, source=source))}
    return build_design(validate_spec(raw, source=source), source=source)


def observe(design: Design, f: Callable[[Sequence[float]], float]) -> list[Observation]:
    """Score every planned run with `f` of its x1..xD, as imported scores would arrive."""
    names = sorted(design.spec.factors, key=lambda n: int(n[1:]))
    return [Observation(run_id=r.run_id, params=r.params, score=f([_float(r.params[n]) for n in names]),
                        seed=r.seed) for r in design.runs]


def _float(v: JSONScalar) -> float:
    assert isinstance(v, int | float) and not isinstance(v, bool)
    return float(v)


# --- the checks ---------------------------------------------------------------------------------


def _close(name: str, expected: float, got: float | None, tol: tuple[float, float],
           source: str) -> SelfTestCheck:
    atol, rtol = tol
    allowed = atol + rtol * abs(expected)
    passed = got is not None and abs(got - expected) <= allowed
    return SelfTestCheck(name=name, expected=expected, got=got, passed=passed, source=source,
                         tolerance=f"±{allowed:.3g} (atol={atol:g}, rtol={rtol:g})")


def _ishigami_checks(seed: int) -> list[SelfTestCheck]:
    bounds = [(-math.pi, math.pi)] * 3
    design = function_design("ishigami", "sobol", ISHIGAMI_N, bounds, seed, calc_second_order=True)
    result = analyse_design(design, observe(design, lambda x: ishigami(*x)), seed=seed,
                            num_resamples=RESAMPLES)
    s1, st, s2 = ishigami_indices()
    names = _by_number(result)
    out = []
    for i, n in enumerate(names):
        out.append(_close(f"sobol ishigami S1[{n}]", s1[i], result.indices[n]["S1"], SALIB_SOBOL_TOL,
                          SALIB_ISHIGAMI_SOURCE))
    for i, n in enumerate(names):
        out.append(_close(f"sobol ishigami ST[{n}]", st[i], result.indices[n]["ST"], SALIB_SOBOL_TOL,
                          SALIB_ISHIGAMI_SOURCE))
    for (i, j), value in s2.items():
        a, b = names[i], names[j]
        out.append(_close(f"sobol ishigami S2[{a},{b}]", value, result.s2[a][b], SALIB_SOBOL_TOL,
                          SALIB_ISHIGAMI_SOURCE))
    return out


def _g_checks(seed: int) -> list[SelfTestCheck]:
    bounds = [(0.0, 1.0)] * len(G_A)
    design = function_design("sobol-g", "sobol", G_N, bounds, seed, calc_second_order=False)
    result = analyse_design(design, observe(design, sobol_g), seed=seed, num_resamples=RESAMPLES)
    s1, st = sobol_g_indices()
    names = _by_number(result)
    out = [_close(f"sobol G S1[{n}]", s1[i], result.indices[n]["S1"], SALIB_SOBOL_G_TOL, SALIB_G_SOURCE)
           for i, n in enumerate(names)]
    out += [_close(f"sobol G ST[{n}]", st[i], result.indices[n]["ST"], SALIB_SOBOL_G_TOL,
                   SALIB_G_SOURCE + " (S1's tolerance, applied to ST too)")
            for i, n in enumerate(names)]
    return out


def _morris_checks(seed: int) -> list[SelfTestCheck]:
    bounds = [(0.0, 1.0)] * len(G_A)
    design = function_design("sobol-g", "morris", MORRIS_N, bounds, seed, levels=MORRIS_LEVELS)
    result = analyse_design(design, observe(design, sobol_g), seed=seed, num_resamples=RESAMPLES)
    _, st = sobol_g_indices()
    names = _by_number(result)
    mu_star = {n: result.indices[n]["mu_star"] or 0.0 for n in names}
    influential = [n for i, n in enumerate(names) if st[i] >= INFLUENTIAL_ST]
    expected = sorted(influential, key=lambda n: -st[names.index(n)])
    got = sorted(influential, key=lambda n: -mu_star[n])
    out = [SelfTestCheck(
        name="morris G mu_star order of influential factors", expected=" > ".join(expected),
        got=" > ".join(got), tolerance=f"same order as analytic ST (factors with ST >= {INFLUENTIAL_ST:g})",
        passed=got == expected, source="analytic ST of the G function",
    )]
    top = max(mu_star.values())
    for i, n in enumerate(names):
        if st[i] >= INFLUENTIAL_ST:
            continue
        ratio = mu_star[n] / top if top > 0 else math.inf
        out.append(SelfTestCheck(
            name=f"morris G mu_star[{n}] / max mu_star (ST={st[i]:.1e})", expected=0.0, got=ratio,
            tolerance=f"<= {SCREENED_OUT:g} (screened out)", passed=ratio <= SCREENED_OUT,
            source="our screening threshold: non-influential factors get a tiny mu_star",
        ))
    return out


def _by_number(result: GsaResult) -> list[str]:
    """x1, x2, ..., x10: the problem sorts names as text, the analytic values are in index order."""
    return sorted(result.names, key=lambda n: int(n[1:]))


def gsa_selftest(seed: int = 0) -> list[SelfTestCheck]:
    """Every check, Sobol on Ishigami, Sobol on G, Morris on G; each says whether it passed."""
    return _ishigami_checks(seed) + _g_checks(seed) + _morris_checks(seed)
